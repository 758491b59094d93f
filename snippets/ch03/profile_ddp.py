"""Profile one DDP training step and measure how much of its all-reduce hides behind compute.

After a few warm-up steps (DDP rebuilds its buckets after the first), one step runs under
torch.profiler. On GPUs the script takes every kernel of that step from the trace, NCCL's
on one lane and the rest on the other, and reports how much of the all-reduce time ran
while compute kernels were running too. On CPU, gloo's all-reduces and autograd's
backward functions stand in for the two lanes. --trace-out also saves the whole trace for
chrome://tracing or Perfetto.

    torchrun --nproc-per-node 2 snippets/ch03/profile_ddp.py
    torchrun --nproc-per-node 2 snippets/ch03/profile_ddp.py --device cuda --preset 1b --micro-batch 8
"""  # noqa: E501

import argparse
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from data import BigramTokens
from gpt import PRESETS, build
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.profiler import ProfilerActivity, profile


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--preset", choices=list(PRESETS), default="tiny")
    ap.add_argument("--micro-batch", type=int, default=4, help="sequences per rank")
    ap.add_argument("--bucket-cap-mb", type=float, default=256, help="DDP gradient bucket size")
    ap.add_argument("--warmup", type=int, default=3, help="steps before the profiled one")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--trace-out", help="also write the profiler's trace (JSON) here")
    args = ap.parse_args()
    if "RANK" not in os.environ:
        sys.exit("error: launch this script with torchrun, e.g. torchrun --nproc-per-node 2 "
                 + sys.argv[0])
    if min(args.micro_batch, args.warmup) <= 0 or args.bucket_cap_mb <= 0:
        sys.exit("error: --micro-batch, --warmup and --bucket-cap-mb must be positive")
    if args.device == "cuda":
        if not torch.cuda.is_available():
            sys.exit("error: --device cuda was given but this machine has no CUDA GPU")
        per_node, gpus = int(os.environ["LOCAL_WORLD_SIZE"]), torch.cuda.device_count()
        if per_node > gpus:
            sys.exit(f"error: {per_node} processes per node but only {gpus} GPU(s) on this node")
    return args


def merge(intervals, gap):
    """Union of (start, end) intervals, joining those less than `gap` apart."""
    out = []
    for s, e in sorted(intervals):
        if out and s - out[-1][1] <= gap:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out


def overlap(a, b):
    """Total length of the intersection of two sorted, disjoint interval lists."""
    i = j = total = 0
    while i < len(a) and j < len(b):
        total += max(0.0, min(a[i][1], b[j][1]) - max(a[i][0], b[j][0]))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def lanes(prof, cuda):
    """(compute, communication) intervals in microseconds, from the profiled step."""
    compute, comm = [], []
    for ev in prof.events():
        start, end = ev.time_range.start, ev.time_range.end
        if cuda:
            if ev.device_type != torch.autograd.DeviceType.CUDA:
                continue
            (comm if "nccl" in ev.name.lower() else compute).append((start, end))
        elif "all_reduce" in ev.name:
            comm.append((start, end))
        elif ev.name.startswith("autograd::engine::evaluate_function"):
            compute.append((start, end))
    return compute, comm


def step(model, opt, x, y, cuda):
    with torch.autocast(x.device.type, torch.bfloat16, enabled=cuda):
        loss = model(x, y)
    loss.backward()  # DDP all-reduces each bucket as soon as its gradients are ready
    opt.step()
    opt.zero_grad(set_to_none=True)


def main():
    args = parse_args()
    cuda = args.device == "cuda"
    local_rank = int(os.environ["LOCAL_RANK"])
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo", device_id=device if cuda else None)
    rank, world = dist.get_rank(), dist.get_world_size()

    torch.manual_seed(args.seed)
    with device:
        model = build(args.preset)
    cfg = model.cfg
    model = DDP(model, device_ids=[local_rank] if cuda else None,
                bucket_cap_mb=args.bucket_cap_mb, gradient_as_bucket_view=True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=cuda)
    data = BigramTokens(cfg.vocab_size, cfg.seq_len, num_samples=args.micro_batch * world,
                        seed=args.seed)
    mine = [data[i] for i in range(rank * args.micro_batch, (rank + 1) * args.micro_batch)]
    x, y = (torch.stack(t).to(device) for t in zip(*mine, strict=True))

    for _ in range(args.warmup):  # the first step also rebuilds DDP's buckets
        step(model, opt, x, y, cuda)
    if cuda:
        torch.cuda.synchronize()
    dist.barrier()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        step(model, opt, x, y, cuda)
        if cuda:
            torch.cuda.synchronize()
    if args.trace_out and rank == 0:
        Path(args.trace_out).parent.mkdir(parents=True, exist_ok=True)
        prof.export_chrome_trace(args.trace_out)

    compute, comm = lanes(prof, cuda)
    t0 = min(s for s, _ in compute + comm)
    compute = [[s - t0, e - t0] for s, e in merge(compute, gap=2.0)]
    comm = [[s - t0, e - t0] for s, e in merge(comm, gap=0.0)]
    comm_us = sum(e - s for s, e in comm)
    hidden_us = overlap(compute, comm)
    if rank == 0:
        span = max(e for _, e in compute + comm)
        n = model.module.num_params()
        print(f"{world} ranks, {args.device}, {args.preset}: {n / 1e6:.1f}M parameters, "
              f"{args.bucket_cap_mb:g} MiB buckets", flush=True)
        print(f"profiled step: {span / 1e3:.2f} ms, {len(comm)} all-reduce interval(s) "
              f"of {comm_us / 1e3:.2f} ms, {hidden_us / max(comm_us, 1e-9):.0%} of it under "
              f"compute, {(comm_us - hidden_us) / 1e3:.2f} ms exposed", flush=True)
        print(json.dumps({"world_size": world, "device": args.device, "preset": args.preset,
                          "bucket_cap_mb": args.bucket_cap_mb, "step_ms": span / 1e3,
                          "comm_ms": comm_us / 1e3, "hidden_ms": hidden_us / 1e3,
                          "exposed_ms": (comm_us - hidden_us) / 1e3,
                          "hidden_share": hidden_us / max(comm_us, 1e-9),
                          "comm_intervals": len(comm),
                          "lanes": {"compute": [[round(s, 1), round(e, 1)] for s, e in compute],
                                    "all-reduce": [[round(s, 1), round(e, 1)] for s, e in comm]}}))
    del model
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
