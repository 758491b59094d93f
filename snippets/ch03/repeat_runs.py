"""Run training commands several times each, in turn, and report median and range per run.

Each --run names a command that prints a JSON line of metrics at the end (train_ddp.py
and train_fsdp.py do). The runs take turns within each repeat, so drift over time falls
on all of them alike. The summary gives, per run, the median, minimum and maximum of
each metric, and each run's median tokens/s per GPU relative to the first run's; a
difference smaller than the ranges is no difference.

    python snippets/ch03/repeat_runs.py --repeats 2 --run small "python snippets/ch03/train_ddp.py --steps 10 --micro-batch 2" --run large "python snippets/ch03/train_ddp.py --steps 10"
"""  # noqa: E501

import argparse
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys

METRICS = ("tokens_per_s_per_gpu", "mfu", "step_ms", "peak_mem_gib")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", nargs=2, action="append", metavar=("NAME", "COMMAND"),
                    required=True, help="a name and a command line, quoted")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--timeout-s", type=int, default=600, help="per run")
    args = ap.parse_args()
    if args.repeats <= 0 or args.timeout_s <= 0:
        sys.exit("error: --repeats and --timeout-s must be positive")
    names = [name for name, _ in args.run]
    if len(set(names)) != len(names):
        sys.exit("error: each --run needs its own name")
    return args


def run_once(name, command, timeout_s):
    # Its own session, so that a run past its time is stopped with all its workers.
    proc = subprocess.Popen(shlex.split(command), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        sys.exit(f"error: run {name} took over {timeout_s} s")
    found = [ln for ln in out.splitlines() if ln.startswith("{") and ln.endswith("}")]
    if proc.returncode != 0 or not found:
        tail = " | ".join(out.strip().splitlines()[-3:])
        sys.exit(f"error: run {name} failed with exit code {proc.returncode}: {tail}")
    return json.loads(found[-1])


def main():
    args = parse_args()
    values = {name: {m: [] for m in METRICS} for name, _ in args.run}
    for r in range(args.repeats):
        for name, command in args.run:
            metrics = run_once(name, command, args.timeout_s)
            for m in METRICS:
                if isinstance(metrics.get(m), (int, float)):
                    values[name][m].append(metrics[m])
            speed = metrics.get("tokens_per_s_per_gpu") or 0
            print(f"repeat {r + 1}/{args.repeats}  {name:<14} {speed:>12,.0f} tokens/s per GPU",
                  flush=True)
    summary = {name: {m: {"median": statistics.median(v), "min": min(v), "max": max(v)}
                      for m, v in by_metric.items() if v} for name, by_metric in values.items()}
    base = next(iter(summary.values())).get("tokens_per_s_per_gpu")
    print(f"\n{'run':<14}{'tokens/s per GPU: median (min-max)':>40}{'vs first':>10}"
          f"{'peak GiB':>10}")
    relative = {}
    for name, s in summary.items():
        t = s.get("tokens_per_s_per_gpu")
        if t and base:
            relative[name] = {"median": t["median"] / base["median"],
                              "min": t["min"] / base["median"], "max": t["max"] / base["median"]}
        cell = f"{t['median']:,.0f} ({t['min']:,.0f}-{t['max']:,.0f})" if t else "-"
        rel = f"{relative[name]['median']:.3f}" if name in relative else "-"
        peak = f"{s['peak_mem_gib']['median']:.1f}" if "peak_mem_gib" in s else "-"
        print(f"{name:<14}{cell:>40}{rel:>10}{peak:>10}")
    print(json.dumps({"repeats": args.repeats, "runs": summary, "relative": relative}))


if __name__ == "__main__":
    main()
