"""Put benchmark results side by side: ours (bench.py --out) and `vllm bench serve`'s.

    python snippets/ch06/report.py runs/ch06/bench/ours.json runs/ch06/bench/vllm.json \
        --check vllm:ours --within 0.1
    python snippets/ch06/report.py runs/ch06/gpu/*.json --sweep c

Prints one row per run (median ± half the spread of its repeats) and one JSON line keyed
by each run's label (its file name for vLLM's), with each run's ratio to the first, and
with `--sweep` the smallest concurrency that reaches 90% of the peak output throughput.
"""

import argparse
import json
import sys
from pathlib import Path

# `vllm bench serve --save-result` names -> bench.py names.
VLLM_KEYS = {"request_throughput": "request_throughput", "output_throughput": "output_tokens_per_s",
             "median_ttft_ms": "ttft_p50_ms", "p99_ttft_ms": "ttft_p99_ms",
             "median_itl_ms": "itl_p50_ms", "p99_itl_ms": "itl_p99_ms",
             "median_tpot_ms": "tpot_p50_ms", "median_e2el_ms": "e2e_p50_ms",
             "request_goodput": "goodput", "max_concurrency": "concurrency"}
HEAD = {"request_throughput": "req/s", "output_tokens_per_s": "out tok/s",
        "ttft_p50_ms": "TTFT p50 ms", "ttft_p99_ms": "TTFT p99 ms", "itl_p50_ms": "ITL p50 ms",
        "itl_p99_ms": "ITL p99 ms", "goodput": "goodput/s", "prefix_hit_rate": "prefix hits",
        "spec_acceptance_rate": "accepted"}


def load(path: Path) -> tuple[str, dict]:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        sys.exit(f"error: cannot read {path}: {exc}")
    if "output_tokens_per_s" in raw:  # bench.py
        return raw["label"], raw
    run = {ours: raw[k] for k, ours in VLLM_KEYS.items() if raw.get(k) is not None}
    return path.stem, run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--check", metavar="A:B", help="set run A's request throughput and "
                    "median TTFT against run B's (e.g. vllm-bench:ours)")
    ap.add_argument("--within", type=float, help="with --check: fail if the request "
                    "throughputs differ by more than this share")
    ap.add_argument("--sweep", metavar="PREFIX", help="runs whose label starts with PREFIX "
                    "are a concurrency sweep: find where throughput saturates")
    a = ap.parse_args()
    runs = dict(load(f) for f in a.files)
    names = list(runs)
    shown = [k for k in HEAD if any(k in r for r in runs.values())]
    print(f"{'run':>14}" + "".join(f"{HEAD[k]:>13}" for k in shown))
    for n in names:
        cells = []
        for k in shown:
            v, lo, hi = runs[n].get(k), runs[n].get("min", {}).get(k), runs[n].get("max", {}).get(k)
            cell = ("-" if v is None else f"{v:.0%}" if k.endswith("rate") else
                    f"{v:,.0f}" if v >= 100 else f"{v:,.1f}")
            if lo is not None and hi - lo >= 0.05 * abs(v or 1) and not k.endswith("rate"):
                cell += f"±{(hi - lo) / 2:.0f}" if hi - lo >= 2 else f"±{(hi - lo) / 2:.1f}"
            cells.append(cell)
        print(f"{n:>14}" + "".join(f"{c:>13}" for c in cells))
    summary = {n: runs[n] for n in names}
    base = runs[names[0]]
    summary["ratio"] = {n: {k: round(runs[n][k] / base[k], 4) for k in shown
                            if runs[n].get(k) and base.get(k)} for n in names[1:]}
    if a.sweep:
        sweep = [n for n in names if n.startswith(a.sweep)]
        peak = max(runs[n]["output_tokens_per_s"] for n in sweep)
        sat = next(n for n in sweep if runs[n]["output_tokens_per_s"] >= 0.9 * peak)
        summary["saturation_concurrency"] = runs[sat].get("concurrency")
        summary["peak_output_tokens_per_s"] = peak
        print(f"90% of the peak {peak:,.0f} output tokens/s is reached at concurrency "
              f"{summary['saturation_concurrency']}")
    if a.check:
        x, y = a.check.split(":")
        if x not in runs or y not in runs:
            sys.exit(f"error: --check {a.check}: runs are {', '.join(names)}")
        ratios = {k: runs[x][k] / runs[y][k] for k in ("request_throughput", "ttft_p50_ms")}
        summary["check"] = {k: round(v, 4) for k, v in ratios.items()}
        print(f"{x} / {y}: request throughput x{ratios['request_throughput']:.3f}, "
              f"median TTFT x{ratios['ttft_p50_ms']:.3f}")
        if a.within is not None:
            summary["within"] = int(abs(ratios["request_throughput"] - 1) <= a.within)
            print(f"{'within' if summary['within'] else 'NOT within'} {a.within:.0%}")
    print(json.dumps(summary))
    return 0 if summary.get("within", 1) else 1


if __name__ == "__main__":
    sys.exit(main())
