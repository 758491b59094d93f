"""Bus bandwidth of all-to-all, the collective of expert parallelism, as nccl-tests counts it.

The companion of collective_bench.py, with its message sizes, timing and table. In an
all-to-all each of the n ranks cuts its send buffer of S bytes into n pieces and sends
piece j to rank j, keeping its own; it receives one piece from every rank. Each rank's
link therefore carries (n-1)/n of S each way, and busbw = algbw * (n-1)/n. Before any
timing, every rank checks that piece i of what it received came from rank i.

    torchrun --nproc-per-node 2 snippets/ch02/alltoall_bench.py --device cpu
    torchrun --nproc-per-node 8 snippets/ch02/alltoall_bench.py --device cuda --max-size 4GiB
"""

import argparse
import datetime
import json
import os
import sys

import torch
import torch.distributed as dist
from collective_bench import available_ram, human, seconds_per_call, size_arg


def fail(msg):
    # Every rank sees the same bad input: rank 0 says why, and all of them exit non-zero.
    sys.exit(f"error: {msg}" if os.environ.get("RANK", "0") == "0" else 1)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="cpu uses gloo, cuda uses NCCL")
    ap.add_argument("--min-size", default="1KiB", help="smallest send buffer S (binary units)")
    ap.add_argument("--max-size", default="4MiB", help="largest send buffer S (binary units)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--timeout-s", type=int, default=120, help="process-group timeout")
    args = ap.parse_args()
    if "RANK" not in os.environ or "LOCAL_WORLD_SIZE" not in os.environ:
        fail("launch this script with torchrun, e.g. torchrun --nproc-per-node 2 " + sys.argv[0])
    try:
        lo, hi = size_arg(args.min_size), size_arg(args.max_size)
    except SystemExit as exc:  # size_arg's one-line reason, said once
        fail(str(exc).removeprefix("error: "))
    if lo <= 0 or hi < lo or min(args.warmup, args.iters, args.timeout_s) <= 0:
        fail("need 0 < --min-size <= --max-size and positive --warmup, --iters, --timeout-s")
    world, local_world = int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_WORLD_SIZE"])
    if lo < 4 * world:
        fail(f"--min-size must be at least {4 * world} bytes (one fp32 per rank)")
    step, args.sizes, s = 4 * world, [], lo
    while s <= hi:
        args.sizes.append(s // step * step)
        s *= 2
    if args.device == "cuda":
        if not torch.cuda.is_available():
            fail("--device cuda was given but this machine has no CUDA GPU")
        if local_world > torch.cuda.device_count():
            fail(f"asked for {local_world} processes per node but this node has "
                 f"{torch.cuda.device_count()} GPU(s)")
        free = torch.cuda.mem_get_info(int(os.environ["LOCAL_RANK"]))[0]
        where = f"GPU {os.environ['LOCAL_RANK']} has"
    else:
        free = available_ram() // local_world
        where = f"each of {local_world} processes has"
    if 2 * args.sizes[-1] > 0.9 * free:  # a send and a receive buffer of S each
        fail(f"a {human(args.sizes[-1])} message needs {2 * args.sizes[-1] / 2**30:.2f} GiB per "
             f"rank (send and receive buffers) but {where} {free / 2**30:.2f} GiB free")
    return args


# --8<-- [start:alltoall]
def check(rank, n, device, chunk=256):
    """Rank r sends r*n + j to rank j; rank j must hold i*n + j in the piece from rank i."""
    ids = torch.arange(n, device=device, dtype=torch.float32)
    send = (rank * n + ids).repeat_interleave(chunk)
    recv = torch.empty_like(send)
    dist.all_to_all_single(recv, send)
    ok = torch.tensor([int(torch.equal(recv, (ids * n + rank).repeat_interleave(chunk)))],
                      dtype=torch.int32, device=device)
    dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    return bool(ok.item())


def all_to_all(size, device):
    """One all-to-all of a `size`-byte send buffer in equal pieces, as nccl-tests counts it."""
    send = torch.ones(size // 4, device=device)
    recv = torch.empty_like(send)
    return lambda: dist.all_to_all_single(recv, send)
# --8<-- [end:alltoall]


def main():
    args = parse_args()
    local_rank = int(os.environ["LOCAL_RANK"])
    timeout = datetime.timedelta(seconds=args.timeout_s)
    if args.device == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device, timeout=timeout)
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo", timeout=timeout)
    rank, n, backend = dist.get_rank(), dist.get_world_size(), dist.get_backend()
    say = print if rank == 0 else (lambda *a, **k: None)
    say(f"{backend}, {n} ranks on {device.type}, fp32, {args.iters} timed calls after "
        f"{args.warmup} warm-up", flush=True)
    if not check(rank, n, device):
        say("error: all_to_all returned wrong values", file=sys.stderr)
        dist.destroy_process_group()
        sys.exit(1)
    say(f"all_to_all returns correct values on all {n} ranks")
    say(f"\nall_to_all\n{'size':>10} {'time us':>12} {'algbw GB/s':>11} {'busbw GB/s':>11}",
        flush=True)
    tables = {"time_us": {"all_to_all": {}}, "algbw_gbps": {"all_to_all": {}},
              "busbw_gbps": {"all_to_all": {}}}
    for size in args.sizes:
        sec = seconds_per_call(all_to_all(size, device), device, args.warmup, args.iters)
        algbw = size / sec / 1e9
        for key, value in (("time_us", sec * 1e6), ("algbw_gbps", algbw),
                           ("busbw_gbps", algbw * (n - 1) / n)):
            tables[key]["all_to_all"][str(size)] = value
        say(f"{human(size):>10} {sec * 1e6:12.1f} {algbw:11.3f} {algbw * (n - 1) / n:11.3f}",
            flush=True)
    dist.destroy_process_group()
    peak = {"all_to_all": max(tables["busbw_gbps"]["all_to_all"].values())}
    say(json.dumps({"world_size": n, "backend": backend, "device": device.type, "dtype": "float32",
                    "iters": args.iters, "correct": True, "sizes": args.sizes,
                    "peak_busbw_gbps": peak, **tables}))


if __name__ == "__main__":
    main()
