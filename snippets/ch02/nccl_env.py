"""All-reduce bus bandwidth under NCCL's tuning variables, one at a time, repeated.

Runs collective_bench.py under torchrun once per setting and repeat, taking the
settings in turn within each repeat so that drift over time (clocks, temperature, other
jobs) falls on all of them alike, and prints the median and range of the all-reduce bus
bandwidth at each size. A difference smaller than the range is no difference.

    python snippets/ch02/nccl_env.py --device cpu --repeats 1
    python snippets/ch02/nccl_env.py --device cuda --repeats 3
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path

import torch

BENCH = Path(__file__).with_name("collective_bench.py")
# One variable changed per setting; NCCL's own documentation says what each one does.
SETTINGS = {
    "default": {},
    "min_nchannels_32": {"NCCL_MIN_NCHANNELS": "32"},
    "proto_simple": {"NCCL_PROTO": "Simple"},
    "buffsize_16m": {"NCCL_BUFFSIZE": str(16 * 2**20)},
}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--nproc", type=int, default=2, help="processes (GPUs) on this machine")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    ap.add_argument("--min-size", help="default 1GiB on cuda, 1MiB on cpu")
    ap.add_argument("--max-size", help="default 4GiB on cuda, 4MiB on cpu")
    ap.add_argument("--timeout-s", type=int, default=300, help="per run of the benchmark")
    args = ap.parse_args()
    if min(args.nproc, args.repeats, args.timeout_s) <= 0:
        sys.exit("error: --nproc, --repeats and --timeout-s must be positive")
    if args.device == "cuda":
        if not torch.cuda.is_available():
            sys.exit("error: --device cuda was given but this machine has no CUDA GPU")
        if args.nproc > torch.cuda.device_count():
            sys.exit(f"error: --nproc {args.nproc} but this machine has "
                     f"{torch.cuda.device_count()} GPU(s)")
    big = args.device == "cuda"
    args.min_size = args.min_size or ("1GiB" if big else "1MiB")
    args.max_size = args.max_size or ("4GiB" if big else "4MiB")
    return args


def run_once(args, env_extra):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           str(args.nproc), str(BENCH), "--device", args.device, "--min-size", args.min_size,
           "--max-size", args.max_size]
    # Its own session, so that a run past its time is stopped with all its workers.
    proc = subprocess.Popen(cmd, env={**os.environ, **env_extra}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=args.timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        sys.exit(f"error: a run with {env_extra or 'no variables'} took over {args.timeout_s} s")
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (err or out).strip().splitlines()[-3:]
        sys.exit(f"error: collective_bench.py failed with {env_extra or 'no variables'}: "
                 + " | ".join(tail))
    return json.loads(lines[-1])["busbw_gbps"]["all_reduce"]


def main():
    args = parse_args()
    runs = {name: {} for name in args.settings}
    for r in range(args.repeats):
        for name in args.settings:
            busbw = run_once(args, SETTINGS[name])
            for size, gbps in busbw.items():
                runs[name].setdefault(size, []).append(gbps)
            shown = ", ".join(f"{int(s) / 2**20:g} MiB {v:.1f}" for s, v in busbw.items())
            print(f"repeat {r + 1}/{args.repeats}  {name:<17} all-reduce busbw GB/s: {shown}",
                  flush=True)
    sizes = list(next(iter(runs.values())))
    print(f"\nall-reduce bus bandwidth, GB/s: median (min-max) of {args.repeats} run(s)")
    print(f"{'setting':<18}" + "".join(f"{int(s) / 2**20:>18g} MiB" for s in sizes))
    summary = {}
    for name, by_size in runs.items():
        summary[name] = {s: {"median": statistics.median(v), "min": min(v), "max": max(v)}
                         for s, v in by_size.items()}
        cells = "".join(f"{c['median']:>11.1f} ({c['min']:.1f}-{c['max']:.1f})"[-22:].rjust(22)
                        for c in summary[name].values())
        print(f"{name:<18}{cells}")
    print(json.dumps({"device": args.device, "nproc": args.nproc, "repeats": args.repeats,
                      "sizes": sizes, "busbw": summary}))


if __name__ == "__main__":
    main()
