"""Gather the JSON results of one run's scripts into a table and one summary line.

    python snippets/ch07/collect.py runs/ch07/vllm

Every `NAME.json` in the folder becomes key NAME of the summary. Benchmark results
(chapter 6's bench.py) also become table rows: the median of the repeats and their range.
"""

import argparse
import json
import sys
from pathlib import Path

COLUMNS = [("output_tokens_per_s", "output tok/s", ",.0f"), ("ttft_p50_ms", "TTFT p50 ms", ".1f"),
           ("ttft_p99_ms", "TTFT p99 ms", ".1f"), ("itl_p50_ms", "ITL p50 ms", ".2f"),
           ("itl_p99_ms", "ITL p99 ms", ".2f")]


def cell(r, key, fmt):
    return f"{format(r[key], fmt)} [{format(r['min'][key], fmt)}-{format(r['max'][key], fmt)}]"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    args = ap.parse_args()
    files = sorted(Path(args.folder).glob("*.json"))
    if not files:
        sys.exit(f"error: {args.folder} holds no .json results")
    results = {f.stem: json.loads(f.read_text()) for f in files}
    benches = {k: v for k, v in results.items() if "output_tokens_per_s" in v}
    if benches:
        print(f"{'run':10}" + "".join(f"{title:>26}" for _, title, _ in COLUMNS))
        for name, r in benches.items():
            print(f"{name:10}" + "".join(f"{cell(r, k, fmt):>26}" for k, _, fmt in COLUMNS))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
