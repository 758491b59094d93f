"""A collective that some rank never joins, or joins with the wrong shape, and how it fails.

Every rank all-reduces a tensor. With --fault missing-rank the last rank is busy
elsewhere (a stuck data loader, a slow disk) and never arrives; with --fault wrong-shape
it arrives with one element too many. A short process-group timeout turns the hang into
an error, and TORCH_DISTRIBUTED_DEBUG=DETAIL names the rank and the mismatch.

    torchrun --nproc-per-node 2 snippets/ch03/hang_demo.py --fault missing-rank --timeout 10
    TORCH_DISTRIBUTED_DEBUG=DETAIL torchrun --nproc-per-node 2 snippets/ch03/hang_demo.py --fault missing-rank --timeout 10
    TORCH_DISTRIBUTED_DEBUG=DETAIL torchrun --nproc-per-node 2 snippets/ch03/hang_demo.py --fault wrong-shape
    TORCH_NCCL_ASYNC_ERROR_HANDLING=1 torchrun --nproc-per-node 2 snippets/ch03/hang_demo.py --device cuda --fault missing-rank --timeout 20
"""  # noqa: E501

import argparse
import json
import os
import sys
import time
from datetime import timedelta

import torch
import torch.distributed as dist


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--fault", choices=["none", "missing-rank", "wrong-shape"], default="none")
    ap.add_argument("--timeout", type=float, default=30,
                    help="seconds a collective may wait before the process group gives up")
    ap.add_argument("--stall", type=float, default=120,
                    help="seconds the missing rank spends elsewhere")
    ap.add_argument("--numel", type=int, default=1024)
    args = ap.parse_args()
    if "RANK" not in os.environ:
        sys.exit("error: launch this script with torchrun, e.g. torchrun --nproc-per-node 2 "
                 + sys.argv[0])
    if args.timeout <= 0 or args.numel <= 0:
        sys.exit("error: --timeout and --numel must be positive")
    if args.device == "cuda":
        if not torch.cuda.is_available():
            sys.exit("error: --device cuda was given but this machine has no CUDA GPU")
        per_node, gpus = int(os.environ["LOCAL_WORLD_SIZE"]), torch.cuda.device_count()
        if per_node > gpus:
            sys.exit(f"error: {per_node} processes per node but only {gpus} GPU(s) on this node")
    return args


def main():
    args = parse_args()
    cuda = args.device == "cuda"
    device = torch.device("cuda", int(os.environ["LOCAL_RANK"])) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    # --8<-- [start:timeout]
    # The timeout bounds every collective of this group: gloo raises when it expires; on
    # NCCL a watchdog thread notices, aborts the communicator and ends the process.
    # device_id creates NCCL's communicator now, so the wait happens in the all-reduce.
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(seconds=args.timeout),
                            device_id=device if cuda else None)
    # --8<-- [end:timeout]
    rank, world = dist.get_rank(), dist.get_world_size()
    # A first collective that every rank joins, as the steps before a real hang would be.
    # NCCL also connects the ranks' channels on a group's first collective, and that
    # happens on the host: a rank missing from it would stall the caller before the
    # watchdog has any work to time.
    dist.all_reduce(torch.zeros(1, device=device))
    x = torch.full((args.numel,), float(rank + 1), device=device)
    if args.fault == "missing-rank" and rank == world - 1:
        print(f"rank {rank}: busy elsewhere for {args.stall:.0f} s, not at the all-reduce",
              flush=True)
        time.sleep(args.stall)
    if args.fault == "wrong-shape" and rank == world - 1:
        x = torch.ones(args.numel + 1, device=device)
    print(f"rank {rank}: entering all_reduce of {x.numel()} elements "
          f"(timeout {args.timeout:.0f} s)", flush=True)
    start = time.perf_counter()
    dist.all_reduce(x)
    # NCCL only queues the all-reduce; reading the result waits for it.
    total = x[0].item()
    elapsed = time.perf_counter() - start
    print(f"rank {rank}: all-reduce done in {elapsed:.3f} s, element 0 = {total}", flush=True)
    if rank == 0:
        print(json.dumps({"world_size": world, "fault": args.fault, "sum": total,
                          "ok": total == world * (world + 1) / 2, "seconds": round(elapsed, 4)}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
