"""Dense matmul throughput and copy bandwidth: the two roofs of a roofline.

For each shape and dtype the script times C = A @ B and reports TFLOP/s and the
arithmetic intensity (FLOPs per byte of A, B and C, each moved once). Square products
are compute-bound; skinny ones (a few rows times a square weight, like a decode step)
are memory-bound. A large device-to-device copy gives the memory roof. The first
--dtype is the headline one: the summary's "tflops" is its best point.

    python snippets/ch02/matmul_bench.py
    python snippets/ch02/matmul_bench.py --device cuda --dtype bf16 fp16 tf32 fp32 --sizes 1024 2048 4096 8192
"""  # noqa: E501

import argparse
import json
import math
import statistics
import sys
import time

import torch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32,
          "tf32": torch.float32}
MAX_SETS = 64


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--dtype", nargs="+", choices=list(DTYPES), default=None,
                    help="default: fp32 bf16 on CPU, bf16 fp16 tf32 fp32 on CUDA")
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024],
                    help="N of the N x N x N products (and of the skinny ones' weight)")
    ap.add_argument("--skinny-rows", type=int, default=16,
                    help="M of the M x N x N products; 0 skips them")
    ap.add_argument("--shape", action="append", default=[], metavar="MxNxK",
                    help="an extra product, e.g. 4096x14336x4096 (repeatable)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed calls per point")
    ap.add_argument("--repeats", type=int, default=7, help="timed batches per point (median)")
    ap.add_argument("--min-ms", type=float, default=10.0, help="shortest timed batch")
    ap.add_argument("--rotate-mib", type=int, default=None,
                    help="random inputs to rotate through (default: 4x the GPU's L2, 64 on CPU)")
    ap.add_argument("--copy-mib", type=int, default=None,
                    help="buffer for the copy bandwidth (default: 2048 on CUDA, 128 on CPU)")
    args = ap.parse_args()
    cuda = args.device == "cuda"
    args.dtype = args.dtype or (["bf16", "fp16", "tf32", "fp32"] if cuda else ["fp32", "bf16"])
    args.copy_mib = args.copy_mib or (2048 if cuda else 128)
    if min(args.sizes) <= 0:
        sys.exit(f"error: --sizes must be positive, got {min(args.sizes)}")
    if min(args.skinny_rows, args.rotate_mib or 0) < 0 or min(args.repeats, args.copy_mib) <= 0:
        sys.exit("error: --skinny-rows and --rotate-mib must be >= 0, --repeats and --copy-mib > 0")
    args.shapes = [("square", n, n, n) for n in args.sizes]
    args.shapes += [("skinny", args.skinny_rows, n, n) for n in args.sizes if args.skinny_rows]
    for s in args.shape:
        dims = s.lower().split("x")
        if len(dims) != 3 or not all(d.isdigit() and int(d) > 0 for d in dims):
            sys.exit(f"error: --shape wants three positive integers like 4096x14336x4096, "
                     f"got {s!r}")
        args.shapes.append(("custom", *map(int, dims)))
    if cuda and not torch.cuda.is_available():
        sys.exit("error: --device cuda was given but this machine has no CUDA GPU")
    if not cuda and "tf32" in args.dtype:
        sys.exit("error: tf32 is a mode of NVIDIA tensor cores; on CPU use fp32 or bf16")
    return args


def free_bytes(device):
    """Memory this process may fill: free HBM on a GPU, MemAvailable on Linux CPUs."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None  # not Linux: no check


def check_fits(args, device, free):
    """Fail before allocating anything if the largest product or the copy cannot fit."""
    if free is None:
        return
    where = f"GPU {device.index}" if device.type == "cuda" else "this machine"
    es = max(DTYPES[d].itemsize for d in args.dtype)
    name, m, n, k = max(args.shapes, key=lambda s: s[1] * s[3] + s[3] * s[2] + s[1] * s[2])
    need = (m * k + k * n + m * n) * es
    if need > 0.9 * free:
        sys.exit(f"error: the {m}x{n}x{k} product needs {need / 2**30:.1f} GiB for A, B and C "
                 f"but {where} has {free / 2**30:.1f} GiB free")
    if 2 * args.copy_mib * 2**20 > 0.9 * free:
        sys.exit(f"error: --copy-mib {args.copy_mib} needs two buffers of that size "
                 f"but {where} has {free / 2**30:.1f} GiB free")


# --8<-- [start:timing]
def measure(fn, calls, device):
    """Seconds for `calls` calls, timed on the device: CUDA events see when kernels ran."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for i in range(calls):
            fn(i)
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    t0 = time.perf_counter()
    for i in range(calls):
        fn(i)
    return time.perf_counter() - t0


def seconds_per_call(fn, device, args):
    for i in range(args.warmup):  # cuBLAS/oneDNN pick kernels and allocate workspaces here
        fn(i)
    # Batch enough calls that launch overhead and timer resolution are small against them.
    once = max(measure(fn, 1, device), 1e-7)
    calls = min(10_000, max(1, math.ceil(args.min_ms / 1e3 / once)))
    batches = [measure(fn, calls, device) / calls for _ in range(args.repeats)]
    return statistics.median(batches)
# --8<-- [end:timing]


def bench_dtype(name, args, device, free):
    dtype = DTYPES[name]
    if device.type == "cuda":
        # TF32 is fp32 storage with tensor-core math; "highest" keeps true fp32.
        torch.set_float32_matmul_precision("high" if name == "tf32" else "highest")
    # One random pool per dtype; each product rotates through disjoint (A, B) pairs cut
    # from it, so small shapes read memory rather than finding their inputs in cache.
    largest = max(m * k + k * n for _, m, n, k in args.shapes)
    biggest_c = max(m * n for _, m, n, _ in args.shapes)
    pool_elems = max(largest, args.rotate_bytes // dtype.itemsize)
    if free is not None:
        pool_elems = max(largest, min(pool_elems, int(0.8 * free) // dtype.itemsize - biggest_c))
    pool = torch.randn(pool_elems, device=device, dtype=dtype)
    points = []
    for shape, m, n, k in args.shapes:
        per = m * k + k * n
        starts = [i * per for i in range(max(1, min(MAX_SETS, pool_elems // per)))]
        sets = [(pool[s:s + m * k].view(m, k), pool[s + m * k:s + per].view(k, n)) for s in starts]
        c = torch.empty(m, n, device=device, dtype=dtype)

        def call(i, sets=sets, c=c):
            a, b = sets[i % len(sets)]
            torch.matmul(a, b, out=c)

        sec = seconds_per_call(call, device, args)
        flops = 2 * m * n * k
        intensity = flops / ((m * k + k * n + m * n) * dtype.itemsize)
        p = {"shape": shape, "m": m, "n": n, "k": k, "dtype": name, "ms": sec * 1e3,
             "tflops": flops / sec / 1e12, "intensity": intensity}
        print(f"{name:5} {shape:7} {f'{m}x{n}x{k}':>17} {p['ms']:10.4f} ms "
              f"{p['tflops']:9.3f} TFLOP/s {intensity:8.1f} FLOP/byte", flush=True)
        points.append(p)
        del c, sets
    del pool
    return points


def copy_gbps(args, device):
    src = torch.randn(args.copy_mib * 2**20 // 4, device=device)
    dst = torch.empty_like(src)
    sec = seconds_per_call(lambda i: dst.copy_(src), device, args)
    return 2 * src.numel() * 4 / sec / 1e9  # a copy reads every byte once and writes it once


def main():
    args = parse_args()
    torch.manual_seed(0)
    device = torch.device(args.device, 0) if args.device == "cuda" else torch.device("cpu")
    free = free_bytes(device)
    check_fits(args, device, free)
    if args.rotate_mib is not None:
        args.rotate_bytes = args.rotate_mib * 2**20
    elif device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        args.rotate_bytes = 4 * getattr(props, "L2_cache_size", 50 * 2**20)
    else:
        args.rotate_bytes = 64 * 2**20
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    print(f"device {device} ({gpu or f'CPU, {torch.get_num_threads()} threads'}), "
          f"dtypes {' '.join(args.dtype)}, torch {torch.__version__}", flush=True)
    gbps = copy_gbps(args, device)
    print(f"copy  {args.copy_mib} MiB: {gbps:.1f} GB/s (bytes read + written)", flush=True)
    points = []
    for name in args.dtype:
        points += bench_dtype(name, args, device, free)
    head = args.dtype[0]
    best = {d: max(p["tflops"] for p in points if p["dtype"] == d) for d in args.dtype}
    print(f"best {head}: {best[head]:.2f} TFLOP/s; memory roof {gbps:.0f} GB/s; ridge at "
          f"{best[head] * 1e3 / gbps:.0f} FLOP/byte", flush=True)
    print(json.dumps({"device": device.type, "gpu": gpu, "dtype": head, "tflops": best[head],
                      "tflops_by_dtype": best, "copy_gbps": gbps, "points": points}))


if __name__ == "__main__":
    main()
