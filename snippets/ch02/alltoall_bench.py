"""Bus bandwidth of all-to-all, the collective of expert parallelism, as nccl-tests counts it.

The companion of collective_bench.py, with its message sizes, timing and table. In an
all-to-all each of the n ranks cuts its send buffer of S bytes into n pieces and sends
piece j to rank j, keeping its own; it receives one piece from every rank. Each rank's
link therefore carries (n-1)/n of S each way, and busbw = algbw * (n-1)/n. Before any
timing, every rank checks that piece i of what it received came from rank i.

    torchrun --nproc-per-node 2 snippets/ch02/alltoall_bench.py --device cpu
    torchrun --nproc-per-node 8 snippets/ch02/alltoall_bench.py --device cuda --max-size 4GiB
"""

import datetime
import json
import os
import sys

import torch
import torch.distributed as dist
from collective_bench import human, parse_args, seconds_per_call


def fail(msg):
    # Every rank sees the same bad input: rank 0 says why, and all of them exit non-zero.
    sys.exit(f"error: {msg}" if os.environ.get("RANK", "0") == "0" else 1)


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
    # A send and a receive buffer of S each.
    args = parse_args(__doc__.splitlines()[0], "send buffer", need=lambda s, n: 2 * s,
                      why=lambda n: "send and receive buffers", fail=fail)
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
