"""A first distributed program: every process contributes a tensor, all get the sum.

torchrun starts the processes and tells each one its rank and the world size through
environment variables; init_process_group reads them. The same file runs with gloo
on CPUs and with NCCL on GPUs:

    torchrun --nproc-per-node 2 snippets/ch01/allreduce.py
    torchrun --nproc-per-node 2 snippets/ch01/allreduce.py --device cuda
"""

import argparse
import json
import os
import sys
import time

import torch
import torch.distributed as dist


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--numel", type=int, default=4, help="elements in each rank's tensor")
    args = ap.parse_args()
    if args.numel <= 0:
        sys.exit(f"error: --numel must be positive, got {args.numel}")
    if "RANK" not in os.environ:
        sys.exit("error: launch this script with torchrun, e.g. torchrun --nproc-per-node 2 "
                 + sys.argv[0])
    if args.device == "cuda":
        local_world = int(os.environ["LOCAL_WORLD_SIZE"])
        if not torch.cuda.is_available():
            sys.exit("error: --device cuda was given but this machine has no CUDA GPU")
        if local_world > torch.cuda.device_count():
            sys.exit(f"error: {local_world} processes per node but only "
                     f"{torch.cuda.device_count()} GPU(s) on this node")
    return args


def main():
    args = parse_args()
    # --8<-- [start:core]
    backend = "nccl" if args.device == "cuda" else "gloo"
    dist.init_process_group(backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    if args.device == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")

    # Rank r holds [r+1, r+1, ...]; after the all-reduce every rank holds the sum.
    t = torch.full((args.numel,), float(rank + 1), device=device)
    start = time.perf_counter()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    if args.device == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    expected = world * (world + 1) / 2
    print(f"rank {rank}/{world} on {device}: {t[:4].tolist()} (expected {expected})", flush=True)
    # --8<-- [end:core]

    ok = bool(torch.all(t == expected))
    oks = [None] * world
    dist.all_gather_object(oks, ok)
    if rank == 0:
        print(json.dumps({"world_size": world, "backend": backend, "sum": t[0].item(),
                          "all_ranks_correct": all(oks), "seconds": round(elapsed, 6)}))
    dist.destroy_process_group()
    sys.exit(0 if all(oks) else 1)


if __name__ == "__main__":
    main()
