"""Train the chapter's GPT with DistributedDataParallel: on a CPU, one GPU, or many nodes.

The same file runs as a plain Python program (a world of one process) and under
torchrun, with gloo on CPUs and NCCL on GPUs. With --ckpt-dir it saves a checkpoint
every --save-every steps and resumes from the newest one it finds there, which is what
torchrun's --max-restarts relies on.

    python snippets/ch03/train_ddp.py
    torchrun --nproc-per-node 2 snippets/ch03/train_ddp.py
    torchrun --nproc-per-node 8 snippets/ch03/train_ddp.py --device cuda --preset 1b --compile
"""

import argparse
import contextlib
import gc
import json
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist
from data import BigramTokens
from gpt import GPT, PRESETS
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler

SIZES = ("vocab_size", "seq_len", "n_layer", "n_head", "d_model")
# Dense bf16 peak of one GPU, the denominator of MFU; --peak-tflops covers the others.
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--preset", choices=list(PRESETS), default="tiny")
    for name in SIZES:
        ap.add_argument("--" + name.replace("_", "-"), type=int, help="override the preset")
    ap.add_argument("--global-batch", type=int, default=8, help="sequences per step, all ranks")
    ap.add_argument("--micro-batch", type=int, default=4, help="sequences per forward, per rank")
    ap.add_argument("--dtype", choices=["bf16", "fp32"], help="default: bf16 on cuda, fp32 on cpu")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument("--bucket-cap-mb", type=float, default=25, help="DDP gradient bucket size")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--steps", type=int, default=50, help="optimizer steps in total")
    ap.add_argument("--warmup-steps", type=int, default=5, help="steps left out of the timing")
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--num-samples", type=int, default=512, help="sequences in the data set")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ckpt-dir", help="save checkpoints here; resume from the newest one")
    ap.add_argument("--save-every", type=int, default=0, help="steps between checkpoints")
    ap.add_argument("--resume-from", help="a checkpoint file, or a folder to take the newest from")
    ap.add_argument("--crash-at-step", type=int, help="the last rank kills itself at this step")
    ap.add_argument("--metrics-out", help="also write the final metrics to this JSON file")
    ap.add_argument("--peak-tflops", type=float, help="bf16 peak of one GPU, for MFU")
    args = ap.parse_args()
    args.dtype = args.dtype or ("bf16" if args.device == "cuda" else "fp32")
    # torchrun exports the world's shape before we start, so bad input fails before any
    # process group exists; plain `python` is a world of one.
    world = int(os.environ.get("WORLD_SIZE", 1))
    if args.device == "cuda":
        if not torch.cuda.is_available():
            sys.exit("error: --device cuda was given but this machine has no CUDA GPU")
        per_node, gpus = int(os.environ.get("LOCAL_WORLD_SIZE", 1)), torch.cuda.device_count()
        if per_node > gpus:
            sys.exit(f"error: {per_node} processes per node but only {gpus} GPU(s) on this node")
    if min(args.steps, args.micro_batch, args.global_batch, args.log_every) <= 0:
        sys.exit("error: --steps, --micro-batch, --global-batch and --log-every must be positive")
    if args.global_batch % (world * args.micro_batch):
        sys.exit(f"error: --global-batch {args.global_batch} is not divisible by world size "
                 f"{world} x --micro-batch {args.micro_batch}")
    if args.compile and args.bucket_cap_mb < 1:
        sys.exit("error: with --compile, --bucket-cap-mb must be at least 1 (DDP's first bucket)")
    if args.num_samples // world < args.micro_batch:
        sys.exit(f"error: --num-samples {args.num_samples} leaves no full micro-batch per rank")
    if args.save_every and not args.ckpt_dir:
        sys.exit("error: --save-every needs --ckpt-dir")
    if args.resume_from and not os.path.exists(args.resume_from):
        sys.exit(f"error: --resume-from {args.resume_from} does not exist")
    return args, world


# --8<-- [start:checkpoint]
def save_checkpoint(ckpt_dir, step, model, optimizer, cfg, data_pos, keep=2):
    state = {
        "step": step, "config": vars(cfg), "data": data_pos,
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "rng": {"cpu": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() else None},
    }
    path = Path(ckpt_dir) / f"step_{step:06d}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    # A rename is atomic: a crash mid-save leaves the previous checkpoint as the newest.
    os.replace(tmp, path)
    for old in sorted(path.parent.glob("step_*.pt"))[:-keep]:
        old.unlink()


def load_checkpoint(source, cfg):
    """The newest checkpoint in a folder (or a given file), if it holds this model.

    Every rank reads what rank 0 wrote: across nodes, the folder must be shared storage.
    """
    path = Path(source)
    if not path.is_file():
        found = sorted(path.glob("step_*.pt"))  # zero-padded step numbers sort in order
        if not found:
            return None, None
        path = found[-1]
    # mmap: ranks on one node share the page cache instead of each reading a private copy.
    ckpt = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    diff = [f"{k} {ckpt['config'].get(k)} (checkpoint) vs {v} (this run)"
            for k, v in vars(cfg).items() if ckpt["config"].get(k) != v]
    if diff:
        sys.exit(f"error: {path} holds a different model: " + ", ".join(diff))
    return path, ckpt
# --8<-- [end:checkpoint]


def main():
    args, world = parse_args()
    cfg = replace(PRESETS[args.preset], **{k: getattr(args, k) for k in SIZES
                                           if getattr(args, k) is not None})
    if cfg.d_model % cfg.n_head:
        sys.exit(f"error: d_model {cfg.d_model} is not divisible by n_head {cfg.n_head}")
    source = args.resume_from or args.ckpt_dir
    ckpt_path, ckpt = load_checkpoint(source, cfg) if source else (None, None)
    if args.resume_from and not ckpt_path:
        sys.exit(f"error: {args.resume_from} holds no checkpoint (step_*.pt)")

    # --8<-- [start:setup]
    cuda = args.device == "cuda"
    backend = "nccl" if cuda else "gloo"
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if "RANK" in os.environ:
        # torchrun exported RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT; init reads them.
        dist.init_process_group(backend, device_id=device if cuda else None)
    else:
        # Plain `python`: a world of one, its store in memory instead of on a TCP port.
        dist.init_process_group(backend, device_id=device if cuda else None,
                                store=dist.HashStore(), rank=0, world_size=1)
    rank = dist.get_rank()
    if cuda:
        torch.cuda.set_device(device)
    # --8<-- [end:setup]

    torch.manual_seed(args.seed)  # the same initial weights on every rank
    with device:
        model = GPT(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95),
                                  weight_decay=0.1, fused=cuda)
    # --8<-- [start:resume]
    start, data_pos = 0, {"epoch": 0, "batch": 0}
    if ckpt:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["rng"]["cpu"])
        if cuda and ckpt["rng"]["cuda"] is not None:
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"])
        start, data_pos = ckpt["step"], ckpt["data"]
        del ckpt
    # --8<-- [end:resume]

    # --8<-- [start:ddp-wrap]
    raw = model  # the plain module: its state_dict has no DDP or compile prefixes
    if args.compile:
        # Compile, then wrap: inside DDP, TorchDynamo cuts the graph at bucket boundaries
        # so each bucket's all-reduce still starts while backward runs on.
        model = torch.compile(model)
    model = DDP(
        model,
        device_ids=[local_rank] if cuda else None,
        bucket_cap_mb=args.bucket_cap_mb,
        # .grad tensors become views into the all-reduce buckets: one copy of the
        # gradients instead of two, and no copying in and out around each all-reduce.
        gradient_as_bucket_view=True,
        # static_graph=True would gain nothing: every parameter gets a gradient every step.
    )
    # --8<-- [end:ddp-wrap]

    # --8<-- [start:sampler]
    data = BigramTokens(cfg.vocab_size, cfg.seq_len, num_samples=args.num_samples, seed=args.seed)
    # Each rank reads its own 1/world of every epoch. drop_last gives all ranks the same
    # number of batches, so none waits in an all-reduce that another never joins.
    sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True,
                                 seed=args.seed, drop_last=True)
    loader = DataLoader(data, batch_size=args.micro_batch, sampler=sampler, drop_last=True,
                        pin_memory=cuda)

    def micro_batches(epoch, skip):
        # From a saved position on, so a resumed run reads what the first run would have.
        while True:
            sampler.set_epoch(epoch)  # a new shuffle each epoch, the same one on every rank
            for i, batch in enumerate(loader):
                if i >= skip:
                    yield batch
            epoch, skip = epoch + 1, 0
    # --8<-- [end:sampler]

    accum = args.global_batch // (world * args.micro_batch)
    batches = micro_batches(data_pos["epoch"], data_pos["batch"])
    restarts = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", 0))
    tokens_per_step = args.global_batch * cfg.seq_len
    if rank == 0:
        nodes = os.environ.get("GROUP_WORLD_SIZE", 1)
        print(f"{world} rank(s) on {nodes} node(s), {backend}, {args.dtype}, "
              f"{raw.num_params() / 1e6:.1f}M parameters; global batch {args.global_batch} = "
              f"{world} ranks x {args.micro_batch} sequences x {accum} micro-step(s)", flush=True)
        if ckpt_path:
            print(f"resumed from {ckpt_path} at step {start} (restart {restarts})", flush=True)

    timed_from = start + args.warmup_steps  # compilation and warm-up stay out of the timing
    t0 = t_log = time.perf_counter()
    loss, logged = None, start
    for step in range(start, args.steps):
        if step == args.crash_at_step and rank == world - 1 and restarts == 0:
            print(f"rank {rank}: killing itself at step {step}", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        # --8<-- [start:accumulation]
        loss_sum = torch.zeros((), device=device)
        for micro in range(accum):
            x, y = (t.to(device, non_blocking=True) for t in next(batches))
            # All-reduce once per step: on every micro-batch but the last, no_sync() keeps
            # the gradients local and backward only adds them into .grad.
            last = micro == accum - 1
            with (contextlib.nullcontext() if last else model.no_sync()):
                with torch.autocast(device.type, torch.bfloat16, enabled=args.dtype == "bf16"):
                    micro_loss = model(x, y) / accum
                micro_loss.backward()
            loss_sum += micro_loss.detach()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        # --8<-- [end:accumulation]

        done = step + 1
        if done == timed_from:
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        if done % args.log_every == 0 or done == args.steps:
            dist.all_reduce(loss_sum)  # gloo has no AVG: sum, then divide
            loss = loss_sum.item() / world
            if rank == 0:
                now = time.perf_counter()
                ms = (now - t_log) * 1000 / (done - logged)
                print(f"step {done:>5}/{args.steps}  loss {loss:.4f}  {ms:8.1f} ms/step  "
                      f"{tokens_per_step / ms * 1000:12,.0f} tokens/s", flush=True)
                t_log, logged = now, done
        save_due = done == args.steps or (args.save_every and done % args.save_every == 0)
        if args.ckpt_dir and save_due:
            if rank == 0:
                epoch, batch = divmod(done * accum, len(loader))
                save_checkpoint(args.ckpt_dir, done, raw, optimizer, cfg,
                                {"epoch": epoch, "batch": batch})
            dist.barrier()  # no rank runs ahead of a checkpoint that is not yet on disk

    # --8<-- [start:metrics]
    if cuda:
        torch.cuda.synchronize()
    elapsed, timed = time.perf_counter() - t0, args.steps - timed_from
    tokens_per_s = tokens_per_step * timed / elapsed if timed > 0 else None
    # MFU: the FLOP/s the model needs at this speed over the GPU's peak (none on CPU).
    gpu = torch.cuda.get_device_name(device) if cuda else "cpu"
    peak = args.peak_tflops * 1e12 if args.peak_tflops else next(
        (flops for name, flops in PEAK_FLOPS.items() if name in gpu), None)
    mfu = tokens_per_s / world * raw.flops_per_token() / peak if peak and tokens_per_s else None
    mem = torch.tensor(torch.cuda.max_memory_allocated(device) / 2**30 if cuda else 0.0,
                       device=device)
    dist.all_reduce(mem, op=dist.ReduceOp.MAX)  # the fullest rank is the one that OOMs
    metrics = {
        "world_size": world, "steps": args.steps, "params": raw.num_params(),
        "global_batch": args.global_batch, "micro_batch": args.micro_batch, "grad_accum": accum,
        "tokens_per_s": round(tokens_per_s, 1) if tokens_per_s else None,
        "tokens_per_s_per_gpu": round(tokens_per_s / world, 1) if tokens_per_s else None,
        "mfu": round(mfu, 4) if mfu else None,
        "step_ms": round(elapsed * 1000 / timed, 2) if timed > 0 else None,
        "peak_mem_gib": round(mem.item(), 2) if cuda else None,
        "final_loss": loss, "start_step": start, "restarts": restarts,
    }
    # --8<-- [end:metrics]
    if rank == 0:
        if args.metrics_out:
            Path(args.metrics_out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.metrics_out).write_text(json.dumps(metrics) + "\n")
        print(json.dumps(metrics), flush=True)
    # Free DDP and any garbage while the interpreter is whole: what still holds the group
    # at exit can leave gloo's threads tearing down work then, and abort the process.
    del model
    gc.collect()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
