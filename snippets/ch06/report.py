"""Put benchmark results side by side: ours (bench.py --out) and `vllm bench serve`'s.

    python snippets/ch06/report.py runs/ch06/bench/ours.json runs/ch06/bench/vllm.json --within 0.10
    python snippets/ch06/report.py runs/ch06/bench/c*.json --sweep

Prints a table and one JSON line keyed by each run's label (its file name for vLLM's),
with the spread of repeated runs, the ratio of each run to the first, and with `--sweep`
the smallest concurrency that reaches 90% of the peak output throughput.
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
SHOWN = ["request_throughput", "output_tokens_per_s", "ttft_p50_ms", "ttft_p99_ms", "itl_p50_ms",
         "itl_p99_ms", "e2e_p50_ms", "goodput"]


def load(path: Path) -> tuple[str, dict]:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        sys.exit(f"error: cannot read {path}: {exc}")
    if "label" in raw:  # bench.py
        return raw["label"], raw
    run = {ours: raw[k] for k, ours in VLLM_KEYS.items() if raw.get(k) is not None}
    return path.stem, run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--within", type=float, help="fail unless throughput and median TTFT "
                    "of every run are within this fraction of the first's")
    ap.add_argument("--sweep", action="store_true", help="the runs are a concurrency sweep")
    a = ap.parse_args()
    runs = dict(load(f) for f in a.files)
    names = list(runs)
    if a.sweep:
        names.sort(key=lambda n: runs[n].get("concurrency", 0))
    print(f"{'':22}" + "".join(f"{n:>16}" for n in names))
    for k in SHOWN:
        row = [runs[n].get(k) for n in names]
        spread = [(runs[n].get("min", {}).get(k), runs[n].get("max", {}).get(k)) for n in names]
        cells = [f"{v:,.1f}" if v is not None else "-" for v in row]
        if any(lo is not None for lo, _ in spread):
            cells = [c + (f" ±{(hi - lo) / 2:,.0f}" if lo is not None and (hi - lo) >= 1 else "")
                     for c, (lo, hi) in zip(cells, spread, strict=True)]
        print(f"{k:22}" + "".join(f"{c:>16}" for c in cells))
    summary = {n: {k: v for k, v in runs[n].items() if k in SHOWN + ["min", "max", "concurrency"]}
               for n in names}
    base = runs[names[0]]
    summary["ratio"] = {n: {k: round(runs[n][k] / base[k], 4) for k in SHOWN
                            if runs[n].get(k) and base.get(k)} for n in names[1:]}
    if a.sweep:
        peak = max(runs[n]["output_tokens_per_s"] for n in names)
        sat = next(n for n in names if runs[n]["output_tokens_per_s"] >= 0.9 * peak)
        summary["saturation_concurrency"] = runs[sat].get("concurrency")
        summary["peak_output_tokens_per_s"] = peak
        print(f"90% of the peak {peak:,.0f} output tokens/s is reached at concurrency "
              f"{summary['saturation_concurrency']}")
    if a.within is not None:
        off = {f"{n}.{k}": r for n, rs in summary["ratio"].items() for k, r in rs.items()
               if k in ("request_throughput", "ttft_p50_ms") and abs(r - 1) > a.within}
        summary["within"] = int(not off)
        far = ", ".join(f"{k} x{v:.2f}" for k, v in off.items())
        print(f"all within {a.within:.0%} of {names[0]}" if not off else
              f"outside {a.within:.0%} of {names[0]}: {far}")
    print(json.dumps(summary))
    return 0 if summary.get("within", 1) else 1


if __name__ == "__main__":
    sys.exit(main())
