"""Train the chapter's GPT with DeepSpeed ZeRO: on a CPU, one GPU, or many nodes.

Chapter 3's train_ddp.py with DeepSpeed's engine where DDP was. The ZeRO stage, its
buckets and any offload come from a DeepSpeed JSON config (--config); batch sizes,
precision and learning rate come from the same flags as chapters 3 and 4. With
--ckpt-dir it saves DeepSpeed's sharded checkpoints and resumes from the newest.

    DS_ACCELERATOR=cpu torchrun --nproc-per-node 2 snippets/ch05/train_zero.py
    torchrun --nproc-per-node 8 snippets/ch05/train_zero.py --device cuda --preset 1b \
        --config snippets/ch05/zero3.json --compile
"""

import argparse
import gc
import json
import os
import shutil
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.checkpoint import checkpoint
from torch.utils.data import DataLoader, DistributedSampler

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ch03"))
import deepspeed  # noqa: E402
from data import BigramTokens  # noqa: E402
from deepspeed.checkpoint.constants import UNIVERSAL_CHECKPOINT_INFO  # noqa: E402
from gpt import GPT, PRESETS  # noqa: E402
from zero_config import fail, load_config  # noqa: E402
from zero_math import state_bytes  # noqa: E402

# DeepSpeed 0.19 calls collectives that PyTorch 2.13 marks deprecated, with a warning each step.
warnings.filterwarnings("ignore", category=FutureWarning, module="torch.distributed")
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
    ap.add_argument("--ac", action="store_true", help="activation checkpointing, every block")
    ap.add_argument("--config", default="snippets/ch05/zero2.json", help="DeepSpeed JSON config")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--steps", type=int, default=50, help="optimizer steps in total")
    ap.add_argument("--warmup-steps", type=int, default=5, help="steps left out of the timing")
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--num-samples", type=int, default=512, help="sequences in the data set")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ckpt-dir", help="save checkpoints here; resume from the newest one")
    ap.add_argument("--save-every", type=int, default=0, help="steps between checkpoints")
    ap.add_argument("--resume-from", help="a checkpoint folder (it holds a `latest` file)")
    ap.add_argument("--universal", action="store_true", help="resume from a universal checkpoint")
    ap.add_argument("--metrics-out", help="also write the final metrics to this JSON file")
    ap.add_argument("--peak-tflops", type=float, help="bf16 peak of one GPU, for MFU")
    args = ap.parse_args()
    args.dtype = args.dtype or ("bf16" if args.device == "cuda" else "fp32")
    # torchrun exports the world's shape before we start, so bad input fails before any
    # process group exists; plain `python` is a world of one.
    world = int(os.environ.get("WORLD_SIZE", 1))
    if args.device == "cuda":
        if not torch.cuda.is_available():
            fail("--device cuda was given but this machine has no CUDA GPU")
        per_node, gpus = int(os.environ.get("LOCAL_WORLD_SIZE", 1)), torch.cuda.device_count()
        if per_node > gpus:
            fail(f"{per_node} processes per node but only {gpus} GPU(s) on this node")
    if min(args.steps, args.micro_batch, args.global_batch, args.log_every) <= 0:
        fail("--steps, --micro-batch, --global-batch and --log-every must be positive")
    if args.global_batch % (world * args.micro_batch):
        fail(f"--global-batch {args.global_batch} is not divisible by world size "
                 f"{world} x --micro-batch {args.micro_batch}")
    if args.num_samples // world < args.micro_batch:
        fail(f"--num-samples {args.num_samples} leaves no full micro-batch per rank")
    if args.save_every and not args.ckpt_dir:
        fail("--save-every needs --ckpt-dir")
    if args.resume_from and not os.path.isdir(args.resume_from):
        fail(f"--resume-from {args.resume_from} is not a folder")
    return args, world


# --8<-- [start:ds-config]
def ds_config(args, world):
    """The JSON file, plus the keys this script owns: batch sizes, precision, learning rate."""
    accum = args.global_batch // (world * args.micro_batch)
    cfg = load_config(args.config, args.micro_batch, accum)  # exits on a bad file
    cfg.update(train_batch_size=args.global_batch, gradient_accumulation_steps=accum,
               train_micro_batch_size_per_gpu=args.micro_batch,
               bf16={"enabled": args.dtype == "bf16"})
    cfg["optimizer"]["params"]["lr"] = args.lr
    if args.universal:
        cfg["checkpoint"] = {"load_universal": True}
    return cfg, accum
# --8<-- [end:ds-config]


# --8<-- [start:checkpoint]
def checkpoint_meta(source, cfg):
    """The newest checkpoint's tag and what the trainer stored with it, if it holds this model.

    Read before any process group forms, so a wrong folder costs one line, not a hang.
    """
    latest = Path(source) / "latest"
    if not latest.is_file():
        return None, None
    tag = latest.read_text().strip()
    meta = json.loads((Path(source) / tag / "trainer.json").read_text())
    diff = [f"{k} {meta['config'].get(k)} (checkpoint) vs {v} (this run)"
            for k, v in vars(cfg).items() if meta["config"].get(k) != v]
    if diff:
        fail(f"{Path(source) / tag} holds a different model: " + ", ".join(diff))
    return tag, meta


def save(engine, ckpt_dir, step, cfg, data_pos, fixed, keep=2):
    tag = f"step_{step:06d}"
    with torch.no_grad():  # a loss to compare against once the checkpoint is exported
        fixed_loss = engine(*fixed).item()
    meta = {"step": step, "config": vars(cfg), "data": data_pos, "world_size": engine.world_size,
            "fixed_batch": {"size": len(fixed[0]), "loss": fixed_loss}}
    # Every rank writes its own shard of the optimizer state (and, at stage 3, of the
    # weights); client_state rides along in rank 0's model file.
    engine.save_checkpoint(ckpt_dir, tag=tag, client_state={
        **meta, UNIVERSAL_CHECKPOINT_INFO: {"universal_checkpoint_version": 0.2}})
    if engine.global_rank == 0:
        (Path(ckpt_dir) / tag / "trainer.json").write_text(json.dumps(meta) + "\n")
        for old in sorted(Path(ckpt_dir).glob("step_??????"))[:-keep]:
            shutil.rmtree(old)
# --8<-- [end:checkpoint]


def checkpointed(forward):
    return lambda x: checkpoint(forward, x, use_reentrant=False)


def main():
    args, world = parse_args()
    cfg = replace(PRESETS[args.preset], **{k: getattr(args, k) for k in SIZES
                                           if getattr(args, k) is not None})
    if cfg.d_model % cfg.n_head:
        fail(f"d_model {cfg.d_model} is not divisible by n_head {cfg.n_head}")
    source = args.resume_from or args.ckpt_dir
    tag, meta = checkpoint_meta(source, cfg) if source and not args.universal else (None, None)
    if args.resume_from and not (tag or args.universal):
        fail(f"{args.resume_from} holds no DeepSpeed checkpoint (no `latest` file)")
    ds_cfg, accum = ds_config(args, world)

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
        os.environ.setdefault("LOCAL_RANK", "0")  # DeepSpeed's engine insists on it
        dist.init_process_group(backend, device_id=device if cuda else None,
                                store=dist.HashStore(), rank=0, world_size=1)
    rank = dist.get_rank()
    if cuda:
        torch.cuda.set_device(device)
    # --8<-- [end:setup]

    torch.manual_seed(args.seed)  # the same initial weights on every rank
    with device:
        model = GPT(cfg)
    n_params, flops_per_token = model.num_params(), model.flops_per_token()
    if args.ac:
        for block in model.blocks:  # keep each block's input, recompute the rest in backward
            block.forward = checkpointed(block.forward)

    # --8<-- [start:initialize]
    # The engine replaces DDP and the optimizer: it casts the model to bf16, builds AdamW
    # from the config, and partitions whatever the ZeRO stage says to partition.
    engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=model.parameters(),
                                           config=ds_cfg)
    if args.compile:
        engine.compile()
    # --8<-- [end:initialize]
    start, data_pos = 0, {"epoch": 0, "sequences": 0}
    if tag or args.universal:
        path, client = engine.load_checkpoint(source)
        if path is None:
            fail(f"no checkpoint loaded from {source}")
        start, data_pos = client["step"], client["data"]

    # --8<-- [start:sampler]
    data = BigramTokens(cfg.vocab_size, cfg.seq_len, num_samples=args.num_samples, seed=args.seed)
    # Each rank reads its own 1/world of every epoch. drop_last gives all ranks the same
    # number of batches, so none waits in a collective that another never joins.
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

    # The first sequences of the data set, a batch that an exported model can be held to.
    first = [data[i] for i in range(args.micro_batch)]
    fixed = tuple(torch.stack([s[k] for s in first]).to(device) for k in (0, 1))
    # The position is kept in sequences, so a run on another number of ranks resumes too.
    batches = micro_batches(data_pos["epoch"], data_pos["sequences"] // (world * args.micro_batch))
    tokens_per_step = args.global_batch * cfg.seq_len
    steps_per_epoch = len(loader) // accum
    if rank == 0:
        zero = ds_cfg["zero_optimization"]
        offload = [k for k in ("offload_optimizer", "offload_param") if k in zero]
        print(f"{world} rank(s), {backend}, {args.dtype}, ZeRO stage {zero['stage']}"
              f"{' + ' + ', '.join(offload) if offload else ''}, "
              f"{f'{n_params / 1e9:.2f}B' if n_params >= 1e9 else f'{n_params / 1e6:.1f}M'} "
              f"parameters; global batch {args.global_batch} = "
              f"{world} ranks x {args.micro_batch} sequences x {accum} micro-step(s)", flush=True)
        if start:
            print(f"resumed from {source} at step {start}", flush=True)

    timed_from = start + args.warmup_steps  # compilation and warm-up stay out of the timing
    # Count the state once the optimizer has made its moments: in the last warm-up step.
    probe = min(max(timed_from, start + 2), args.steps) - 1
    t0 = t_log = time.perf_counter()
    loss, first_loss, logged, state = None, None, start, {}
    for step in range(start, args.steps):
        # --8<-- [start:train-step]
        loss_sum = torch.zeros((), device=device)
        for _ in range(accum):
            x, y = (t.to(device, non_blocking=True) for t in next(batches))
            # The engine scales the loss by 1/accum in backward and knows which micro-step
            # ends the batch: it reduces gradients there and steps the optimizer there.
            micro_loss = engine(x, y)
            engine.backward(micro_loss)
            loss_sum += micro_loss.detach() / accum
            if step == probe:  # what this rank holds once backward is done
                state = state_bytes(state)
            engine.step()
        # --8<-- [end:train-step]

        done = step + 1
        if done == timed_from:
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        if done % args.log_every == 0 or done == args.steps:
            dist.all_reduce(loss_sum)  # gloo has no AVG: sum, then divide
            loss = loss_sum.item() / world
            first_loss = loss if first_loss is None else first_loss
            if rank == 0:
                now = time.perf_counter()
                ms = (now - t_log) * 1000 / (done - logged)
                print(f"step {done:>5}/{args.steps}  loss {loss:.4f}  {ms:8.1f} ms/step  "
                      f"{tokens_per_step / ms * 1000:12,.0f} tokens/s", flush=True)
                t_log, logged = now, done
        save_due = done == args.steps or (args.save_every and done % args.save_every == 0)
        if args.ckpt_dir and save_due:
            epoch, in_epoch = divmod(done, steps_per_epoch)
            save(engine, args.ckpt_dir, done, cfg,
                 {"epoch": epoch, "sequences": in_epoch * args.global_batch}, fixed)

    # --8<-- [start:metrics]
    if cuda:
        torch.cuda.synchronize()
    elapsed, timed = time.perf_counter() - t0, args.steps - timed_from
    tokens_per_s = tokens_per_step * timed / elapsed if timed > 0 else None
    # MFU: the FLOP/s the model needs at this speed over the GPU's peak (none on CPU).
    gpu = torch.cuda.get_device_name(device) if cuda else "cpu"
    peak = args.peak_tflops * 1e12 if args.peak_tflops else next(
        (flops for name, flops in PEAK_FLOPS.items() if name in gpu), None)
    mfu = tokens_per_s / world * flops_per_token / peak if peak and tokens_per_s else None
    mem = torch.tensor([torch.cuda.max_memory_allocated(device) / 2**30 if cuda else 0.0]
                       + [state.get(k, 0) for k in ("total", "fp32", "bf16", "host")],
                       dtype=torch.float64, device=device)
    dist.all_reduce(mem, op=dist.ReduceOp.MAX)  # the fullest rank is the one that OOMs
    metrics = {
        "world_size": world, "steps": args.steps, "params": n_params,
        "zero_stage": ds_cfg["zero_optimization"]["stage"], "config": args.config,
        "dtype": args.dtype,
        "global_batch": args.global_batch, "micro_batch": args.micro_batch, "grad_accum": accum,
        "tokens_per_s": round(tokens_per_s, 1) if tokens_per_s else None,
        "tokens_per_s_per_gpu": round(tokens_per_s / world, 1) if tokens_per_s else None,
        "mfu": round(mfu, 4) if mfu else None,
        "step_ms": round(elapsed * 1000 / timed, 2) if timed > 0 else None,
        "peak_mem_gib": round(mem[0].item(), 2) if cuda else None,
        "state_bytes_per_rank": dict(zip(("total", "fp32", "bf16", "host"),
                                         map(int, mem[1:].tolist()), strict=True)),
        "state_gib_per_rank": round(mem[1].item() / 2**30, 3),
        "first_loss": first_loss, "final_loss": loss, "start_step": start,
        "model": {k: getattr(cfg, k) for k in SIZES},
    }
    # --8<-- [end:metrics]
    if rank == 0:
        if args.metrics_out:
            Path(args.metrics_out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.metrics_out).write_text(json.dumps(metrics) + "\n")
        print(json.dumps(metrics), flush=True)
    engine.destroy()
    del engine, model
    gc.collect()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
