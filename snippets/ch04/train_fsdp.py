"""Train chapter 3's GPT with FSDP2: parameters, gradients and AdamW state sharded over ranks.

The model is built unchanged; activation checkpointing, torch.compile and
fully_shard are then applied as separate steps (parallelize.py). Gloo on CPU,
NCCL on GPUs:

    torchrun --nproc-per-node 2 snippets/ch04/train_fsdp.py
    torchrun --nproc-per-node 2 snippets/ch04/train_fsdp.py --ac
    torchrun --nproc-per-node 4 snippets/ch04/train_fsdp.py --hsdp 2
    torchrun --nproc-per-node 2 snippets/ch04/train_fsdp.py --ckpt-dir runs/ch04/dcp --save-every 10
    torchrun --nproc-per-node 1 snippets/ch04/train_fsdp.py --resume-from runs/ch04/dcp/step-000010
    torchrun --nproc-per-node 2 snippets/ch04/train_fsdp.py --device cuda --dtype bf16 --compile
"""

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

import dcp_checkpoint
import torch
import torch.distributed as dist
from memory_math import saved_activations, state_bytes
from parallelize import apply_ac, apply_compile, apply_fsdp, make_mesh

# Chapter 3's model and data, unchanged, so FSDP's numbers compare like with like with DDP's.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ch03"))
from data import BigramTokens  # noqa: E402
from gpt import PRESETS, build  # noqa: E402

PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense, per GPU
SIZES = ("n_layer", "d_model", "n_head", "seq_len", "vocab_size")


def fail(msg):
    # Every rank sees the same bad input: rank 0 says why, and all of them exit non-zero.
    sys.exit(f"error: {msg}" if os.environ.get("RANK", "0") == "0" else 1)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = ap.add_argument
    add("--device", choices=["cpu", "cuda"], default="cpu")
    add("--preset", choices=list(PRESETS), default="tiny")
    for name in SIZES:
        add("--" + name.replace("_", "-"), type=int, help="override the preset")
    add("--global-batch", type=int, default=8, help="sequences per step, all ranks")
    add("--micro-batch", type=int, default=4, help="sequences per forward, per rank")
    add("--dtype", choices=["bf16", "fp32"], help="default: bf16 on cuda, fp32 on cpu")
    add("--compile", action="store_true", help="torch.compile each block")
    add("--lr", type=float, default=1e-3)
    add("--steps", type=int, default=50, help="optimizer steps in total")
    add("--warmup-steps", type=int, default=5, help="steps left out of the timing")
    add("--num-samples", type=int, default=512, help="sequences in the data set")
    add("--seed", type=int, default=0)
    add("--ckpt-dir", help="save sharded (DCP) checkpoints here; resume from the newest one")
    add("--save-every", type=int, default=0, help="steps between checkpoints")
    add("--resume-from", help="a checkpoint (step-N folder), or a folder to take the newest from")
    add("--metrics-out", help="also write the final metrics to this JSON file")
    add("--peak-tflops", type=float, help="bf16 peak of one GPU, for MFU")
    add("--reshard-after-forward", action=argparse.BooleanOptionalAction, default=True,
        help="free gathered block parameters after forward, gather them again in backward")
    add("--mp", action=argparse.BooleanOptionalAction, default=True,
        help="with --dtype bf16, FSDP's MixedPrecisionPolicy; off: fp32 gathers and autocast")
    add("--offload", action="store_true", help="keep the sharded state in CPU memory (GPU only)")
    add("--ac", action="store_true", help="activation checkpointing, one region per block")
    add("--hsdp", type=int, metavar="R", help="HSDP: replicate R ways, shard world/R ways")
    add("--prefetch", type=int, default=1, help="blocks to all-gather ahead (0: FSDP's own)")
    args = ap.parse_args()
    args.dtype = args.dtype or ("bf16" if args.device == "cuda" else "fp32")
    if "RANK" not in os.environ:
        fail("launch this script with torchrun, e.g. torchrun --nproc-per-node 2 " + sys.argv[0])
    world, local_world = int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_WORLD_SIZE"])
    if min(args.steps, args.global_batch, args.micro_batch) <= 0 or args.prefetch < 0:
        fail("--steps, --global-batch and --micro-batch must be positive, --prefetch not negative")
    if args.global_batch % (world * args.micro_batch):
        fail(f"--global-batch {args.global_batch} is not divisible by world size {world} "
             f"x --micro-batch {args.micro_batch}")
    if args.hsdp is not None and (args.hsdp < 1 or world % args.hsdp):
        fail(f"--hsdp {args.hsdp} does not divide the world size {world}")
    if args.device == "cuda" and not torch.cuda.is_available():
        fail("--device cuda was given but this machine has no CUDA GPU")
    gpus = torch.cuda.device_count() if args.device == "cuda" else 0
    if args.device == "cuda" and local_world > gpus:
        fail(f"{local_world} processes per node but only {gpus} GPU(s) on this node")
    if args.device == "cpu" and args.offload:
        fail("--offload moves sharded state from GPU to CPU memory; on --device cpu it is there")
    cfg = dict(vars(PRESETS[args.preset]))
    cfg.update({k: getattr(args, k) for k in SIZES if getattr(args, k) is not None})
    if cfg["d_model"] % cfg["n_head"]:
        fail(f"d_model {cfg['d_model']} is not divisible by n_head {cfg['n_head']}")
    if args.save_every and not args.ckpt_dir:
        fail("--save-every needs --ckpt-dir")
    if args.resume_from and not os.path.exists(args.resume_from):
        fail(f"--resume-from {args.resume_from} does not exist")
    args.resume = None
    if args.resume_from or args.ckpt_dir:
        path, problem = dcp_checkpoint.find(args.resume_from or args.ckpt_dir, cfg)
        if problem:
            fail(problem)
        if args.resume_from and not path:
            fail(f"--resume-from {args.resume_from} holds no complete checkpoint")
        if path and dcp_checkpoint.step_of(path) >= args.steps:
            fail(f"{path} is at step {dcp_checkpoint.step_of(path)}; raise --steps to train on")
        args.resume = path
    return args, cfg


def micro_batches(data, step, rank, world, args, device):
    """This rank's micro-batches of a step. Sample i of a step is the same at any world size."""
    per_rank = args.global_batch // world
    for micro in range(per_rank // args.micro_batch):
        first = step * args.global_batch + rank * per_rank + micro * args.micro_batch
        batch = [data[(first + i) % len(data)] for i in range(args.micro_batch)]
        # non_blocking: the copy does not wait for the GPU to finish the previous step.
        yield [torch.stack(t).to(device, non_blocking=True) for t in zip(*batch, strict=True)]


def main():
    args, cfg = parse_args()
    local_rank = int(os.environ["LOCAL_RANK"])
    if args.device == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if args.offload:  # torchrun gives each process one thread; the CPU AdamW step wants more
        torch.set_num_threads(max(1, os.cpu_count() // int(os.environ["LOCAL_WORLD_SIZE"])))

    mesh = make_mesh(device.type, world, args.hsdp)
    torch.manual_seed(args.seed)  # the same weights on every rank before sharding
    with device:
        model = build(args.preset, **{k: cfg[k] for k in SIZES})
    n_params, flops_per_token = model.num_params(), model.flops_per_token()
    if args.ac:
        apply_ac(model)
    if args.compile:
        apply_compile(model)
    mp = args.dtype == "bf16" and args.mp
    apply_fsdp(model, mesh, bf16=mp, reshard_after_forward=args.reshard_after_forward,
               offload=args.offload, prefetch=args.prefetch)
    fused = device.type == "cuda" and not args.offload  # one kernel for the whole step
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95),
                            weight_decay=0.1, fused=fused)
    if rank == 0:
        shape = " x ".join(f"{n} {s}" for n, s in zip(mesh.mesh_dim_names, mesh.shape, strict=True))
        print(f"{n_params / 1e6:.2f}M parameters, mesh ({shape}) on {device.type}, "
              f"reshard_after_forward={args.reshard_after_forward}, mp={mp}, ac={args.ac}, "
              f"offload={args.offload}, compile={args.compile}", flush=True)

    start = 0
    if args.resume:
        start, loaded, saved = dcp_checkpoint.load(model, opt, args.resume)
        if rank == 0:
            same = "matches" if loaded == saved["checksum"] else f"differs from {saved['checksum']}"
            print(f"loaded step {start} from {args.resume} ({saved['world_size']} ranks) "
                  f"onto {world}: checksum {loaded} {same}", flush=True)

    data = BigramTokens(cfg["vocab_size"], cfg["seq_len"], num_samples=args.num_samples,
                        seed=args.seed)
    accum = args.global_batch // (world * args.micro_batch)
    # Without a MixedPrecisionPolicy, bf16 comes from autocast, as in chapter 3's DDP.
    autocast = torch.autocast(device.type, torch.bfloat16, enabled=args.dtype == "bf16" and not mp)
    act_bytes = 0
    if not args.compile:  # a probe of one micro-batch; compiled graphs choose what they keep
        x, y = next(micro_batches(data, start, rank, world, args, device))
        with autocast, saved_activations() as kept:
            probe = model(x, y)
        probe.backward()  # completes FSDP's iteration; the gradients are thrown away
        act_bytes = sum(kept.values())
    skip = min(args.warmup_steps, args.steps - start - 1)
    log_every = max(1, (args.steps - start) // 10)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for step in range(start, args.steps):
        if step - start == skip:  # compilation and allocator warm-up are over: start the clock
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        # --8<-- [start:train-step]
        opt.zero_grad(set_to_none=True)
        loss_sum = torch.zeros((), device=device)
        for x, y in micro_batches(data, step, rank, world, args, device):
            with autocast:
                loss = model(x, y) / accum
            loss.backward()  # reduce-scatters each block's gradients as soon as they are ready
            loss_sum += loss.detach()
        opt.step()  # each rank updates its own shard only
        # --8<-- [end:train-step]
        done = step + 1
        if done % log_every == 0 or done == args.steps:
            dist.all_reduce(loss_sum)
            final_loss = loss_sum.item() / world
            if rank == 0:
                print(f"step {done:>4}/{args.steps}  loss {final_loss:.4f}", flush=True)
        save_due = done == args.steps or (args.save_every and done % args.save_every == 0)
        if args.ckpt_dir and save_due:
            digest = dcp_checkpoint.save(model, opt, args.ckpt_dir, done, {"model": cfg})
            if rank == 0:
                print(f"saved step {done} to {dcp_checkpoint.step_dir(args.ckpt_dir, done)} "
                      f"from {world} rank(s): checksum {digest}", flush=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed, timed = time.perf_counter() - t0, args.steps - start - skip

    sizes = state_bytes(model, opt)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    mem = torch.tensor([*sizes.values(), peak, act_bytes], dtype=torch.float64, device=device)
    dist.all_reduce(mem, op=dist.ReduceOp.MAX)  # the fullest rank is the one that runs out first
    sizes = dict(zip(sizes, (int(v) for v in mem[:3].tolist()), strict=True))
    sizes["total"] = sum(sizes.values())
    tokens_per_s = timed * args.global_batch * cfg["seq_len"] / elapsed
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else ""
    peak_flops = next((f for k, f in PEAK_BF16_FLOPS.items() if k in gpu), None)
    peak_flops = args.peak_tflops * 1e12 if args.peak_tflops else peak_flops
    mfu = round(flops_per_token * tokens_per_s / world / peak_flops, 4) if peak_flops else None
    metrics = {
        "world_size": world, "steps": args.steps, "params": n_params,
        "global_batch": args.global_batch, "micro_batch": args.micro_batch, "grad_accum": accum,
        "tokens_per_s": round(tokens_per_s, 1),
        "tokens_per_s_per_gpu": round(tokens_per_s / world, 1), "mfu": mfu,
        "step_ms": round(1000 * elapsed / timed, 2),
        "peak_mem_gib": round(mem[3].item() / 2**30, 3) if device.type == "cuda" else None,
        "final_loss": round(final_loss, 4), "start_step": start, "mesh": list(mesh.shape),
        "state_bytes_per_rank": sizes, "state_gib_per_rank": round(sizes["total"] / 2**30, 3),
        "state_device": "cpu" if args.offload else device.type,
        "saved_activation_bytes": None if args.compile else int(mem[4].item()),
        "reshard_after_forward": args.reshard_after_forward, "mp": mp, "ac": args.ac,
        "offload": args.offload, "compile": args.compile, "dtype": args.dtype, "model": cfg,
    }
    if args.resume:
        metrics["ckpt_match"] = int(loaded == saved["checksum"])
    if rank == 0:
        unit, scale = ("GiB", 2**30) if sizes["total"] >= 2**30 else ("MiB", 2**20)
        state = ", ".join(f"{k} {v / scale:.2f}" for k, v in sizes.items())
        print(f"state per rank ({unit}, in {metrics['state_device']} memory): {state}", flush=True)
        if not args.compile:
            print(f"activations kept for backward per micro-batch of {args.micro_batch}: "
                  f"{mem[4].item() / 2**20:.2f} MiB", flush=True)
        if device.type == "cuda":
            print(f"peak allocated per GPU: {metrics['peak_mem_gib']:.2f} GiB; beyond the state: "
                  "activations, gathered parameters and communication buffers", flush=True)
        if args.metrics_out:
            Path(args.metrics_out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.metrics_out).write_text(json.dumps(metrics) + "\n")
        print(json.dumps(metrics), flush=True)
    # Free what holds the process groups and FSDP's last collectives while Python is fully
    # alive: left to interpreter exit, gloo's teardown can abort the process.
    del model, opt, mesh
    gc.collect()
    dist.destroy_process_group()
    if args.resume and not metrics["ckpt_match"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
