"""Bus bandwidth of all-reduce, all-gather and reduce-scatter, with nccl-tests' conventions.

Launch it with torchrun: one process per GPU with NCCL, or two or more CPU processes
with gloo. For each message size S from --min-size to --max-size (doubling), each
collective runs --warmup untimed and --iters timed calls; the time of a size is the
slowest rank's average. Rank 0 prints algbw = S / time and the bus bandwidth, which
scales algbw by the share of S that each rank's link must carry, so that n ranks can
be compared with the link speed (n = world size, fp32 elements):

    all-reduce      S = the buffer on each rank (input and output)   busbw = algbw * 2(n-1)/n
    all-gather      S = the gathered output; each rank sends S/n      busbw = algbw * (n-1)/n
    reduce-scatter  S = the input on each rank; each keeps S/n        busbw = algbw * (n-1)/n

Sizes are rounded down to a multiple of n * 4 bytes. Each collective is checked for
correct results once before it is timed.

    torchrun --nproc-per-node 2 snippets/ch02/collective_bench.py --device cpu
    torchrun --nproc-per-node 2 snippets/ch02/collective_bench.py --device cuda --max-size 4GiB
"""

import argparse
import datetime
import json
import os
import re
import sys
import time

import torch
import torch.distributed as dist

UNITS = {"": 1, "b": 1, "k": 2**10, "kib": 2**10, "m": 2**20, "mib": 2**20, "g": 2**30,
         "gib": 2**30, "t": 2**40, "tib": 2**40}
# Newer torch renamed the single-tensor forms; use whichever this version has.
ALL_GATHER = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
REDUCE_SCATTER = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor


def size_arg(text):
    m = re.fullmatch(r"\s*(\d+)\s*([a-z]*)\s*", text.lower())
    if not m or m.group(2) not in UNITS:
        sys.exit(f"error: a size must look like 1048576, 64KiB, 4MiB or 4GiB, got {text!r}")
    return int(m.group(1)) * UNITS[m.group(2)]


def human(nbytes):
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:g} {unit}"
    return f"{nbytes} B"


def exit_error(msg):
    sys.exit(f"error: {msg}")


def parse_args(description, buffer="message", need=lambda s, n: s * (n + 1) // n,
               why=lambda n: f"all-gather: S + S/{n}", fail=exit_error):
    """The flags of both benchmarks and their checks; `need(S, n)` is the bytes per rank of
    the largest S, `why(n)` says what they are, and `fail` reports bad input."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="cpu uses gloo, cuda uses NCCL")
    ap.add_argument("--min-size", default="1KiB", help=f"smallest {buffer} S (binary units)")
    ap.add_argument("--max-size", default="4MiB", help=f"largest {buffer} S (binary units)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--timeout-s", type=int, default=120, help="process-group timeout")
    args = ap.parse_args()
    if "RANK" not in os.environ or "LOCAL_WORLD_SIZE" not in os.environ:
        fail("launch this script with torchrun, e.g. torchrun --nproc-per-node 2 " + sys.argv[0])
    try:
        lo, hi = size_arg(args.min_size), size_arg(args.max_size)
    except SystemExit as exc:  # size_arg's one-line reason, reported through fail
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
    # Check before any allocation.
    bytes_needed = need(args.sizes[-1], world)
    if args.device == "cuda":
        free = torch.cuda.mem_get_info(int(os.environ["LOCAL_RANK"]))[0]
        where = f"GPU {os.environ['LOCAL_RANK']} has"
    else:
        free = available_ram() // local_world
        where = f"each of {local_world} processes has"
    if bytes_needed > 0.9 * free:
        fail(f"a {human(args.sizes[-1])} message needs {bytes_needed / 2**30:.2f} GiB per rank "
             f"({why(world)}) but {where} {free / 2**30:.2f} GiB free")
    return args


def available_ram():
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


# --8<-- [start:busbw]
BUS_FACTOR = {"all_reduce": lambda n: 2 * (n - 1) / n,
              "all_gather": lambda n: (n - 1) / n,
              "reduce_scatter": lambda n: (n - 1) / n}


def collective(name, size, n, device):
    """A call of the collective on a message of `size` bytes, as nccl-tests counts it."""
    numel = size // 4
    if name == "all_reduce":
        buf = torch.ones(numel, device=device)
        return lambda: dist.all_reduce(buf)
    if name == "all_gather":
        inp, out = torch.ones(numel // n, device=device), torch.empty(numel, device=device)
        return lambda: ALL_GATHER(out, inp)
    inp, out = torch.ones(numel, device=device), torch.empty(numel // n, device=device)
    return lambda: REDUCE_SCATTER(out, inp)


def seconds_per_call(call, device, warmup, iters):
    for _ in range(warmup):
        call()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    dist.barrier()  # start the clocks together
    t0 = time.perf_counter()
    for _ in range(iters):
        call()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t = torch.tensor([(time.perf_counter() - t0) / iters], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)  # a collective ends when its slowest rank does
    return t.item()
# --8<-- [end:busbw]


def check(rank, n, device):
    """Each collective once on known values; the names of those wrong on some rank."""
    chunk, total = 256, n * (n + 1) / 2
    parts = torch.arange(1, n + 1, device=device, dtype=torch.float32).repeat_interleave(chunk)
    x = torch.full((n * chunk,), rank + 1.0, device=device)
    dist.all_reduce(x)  # every element becomes 1 + 2 + ... + n
    ok = [torch.equal(x, torch.full_like(x, total))]
    out = torch.empty(n * chunk, device=device)
    ALL_GATHER(out, torch.full((chunk,), rank + 1.0, device=device))
    ok.append(torch.equal(out, parts))  # part r comes from rank r, which sent r + 1
    out = torch.empty(chunk, device=device)
    REDUCE_SCATTER(out, parts * (rank + 1))  # part j on rank q holds (j + 1)(q + 1)
    ok.append(torch.equal(out, torch.full_like(out, (rank + 1) * total)))
    ok = torch.tensor(ok, dtype=torch.int32, device=device)
    dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    return [name for name, good in zip(BUS_FACTOR, ok.tolist(), strict=True) if not good]


def main():
    args = parse_args(__doc__.splitlines()[0])
    local_rank = int(os.environ["LOCAL_RANK"])
    if args.device == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device,
                                timeout=datetime.timedelta(seconds=args.timeout_s))
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=args.timeout_s))
    rank, n, backend = dist.get_rank(), dist.get_world_size(), dist.get_backend()
    say = print if rank == 0 else (lambda *a, **k: None)
    say(f"{backend}, {n} ranks on {device.type}, fp32, {args.iters} timed calls after "
        f"{args.warmup} warm-up", flush=True)
    failed = check(rank, n, device)
    if failed:
        say(f"error: {', '.join(failed)} returned wrong values", file=sys.stderr)
        dist.destroy_process_group()
        sys.exit(1)
    say(f"all_reduce, all_gather and reduce_scatter return correct values on all {n} ranks")
    tables = {"time_us": {}, "algbw_gbps": {}, "busbw_gbps": {}}
    for name in BUS_FACTOR:
        say(f"\n{name}\n{'size':>10} {'time us':>12} {'algbw GB/s':>11} {'busbw GB/s':>11}",
            flush=True)
        for key in tables:
            tables[key][name] = {}
        for size in args.sizes:
            call = collective(name, size, n, device)
            sec = seconds_per_call(call, device, args.warmup, args.iters)
            algbw = size / sec / 1e9
            busbw = algbw * BUS_FACTOR[name](n)
            tables["time_us"][name][str(size)] = sec * 1e6
            tables["algbw_gbps"][name][str(size)] = algbw
            tables["busbw_gbps"][name][str(size)] = busbw
            say(f"{human(size):>10} {sec * 1e6:12.1f} {algbw:11.3f} {busbw:11.3f}", flush=True)
    dist.destroy_process_group()
    peak = {name: max(t.values()) for name, t in tables["busbw_gbps"].items()}
    say(json.dumps({"world_size": n, "backend": backend, "device": device.type, "dtype": "float32",
                    "iters": args.iters, "correct": True, "sizes": args.sizes,
                    "peak_busbw_gbps": peak, **tables}))


if __name__ == "__main__":
    main()
