"""Set training runs side by side from their --metrics-out files: speed and memory per GPU.

Each later run is also given relative to the first, e.g. FSDP2's tokens/s per GPU
as a fraction of DDP's on the same model and batch:

    python snippets/ch04/compare_perf.py runs/ch04/ddp-2gpu.json runs/ch04/fsdp-2gpu.json
"""

import argparse
import json
import sys
from pathlib import Path

COLUMNS = [("world_size", "ranks", "{:>7}"), ("tokens_per_s_per_gpu", "tokens/s/GPU", "{:>14,.0f}"),
           ("mfu", "MFU", "{:>7.3f}"), ("step_ms", "step ms", "{:>9.1f}"),
           ("peak_mem_gib", "peak GiB", "{:>10.2f}"),
           ("state_gib_per_rank", "state GiB", "{:>10.2f}")]
RELATIVE = ("tokens_per_s_per_gpu", "mfu", "step_ms", "peak_mem_gib", "state_gib_per_rank")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="metrics JSON files; the first is the base")
    args = ap.parse_args()
    runs = {}
    for path in args.runs:
        if not path.is_file():
            sys.exit(f"error: {path} does not exist; training scripts write it with --metrics-out")
        runs[path.stem] = json.loads(path.read_text().strip().splitlines()[-1])
    width = max(len(name) for name in runs) + 2
    print("run".ljust(width) + "".join(head.rjust(len(fmt.format(0))) for _, head, fmt in COLUMNS))
    for name, m in runs.items():
        cells = (fmt.format(m[k]) if isinstance(m.get(k), (int, float))
                 else "-".rjust(len(fmt.format(0))) for k, _, fmt in COLUMNS)
        print(name.ljust(width) + "".join(cells))
    base_name, base = next(iter(runs.items()))
    relative = {}
    for name, m in list(runs.items())[1:]:
        relative[name] = {k: round(m[k] / base[k], 4) for k in RELATIVE
                          if isinstance(m.get(k), (int, float)) and base.get(k)}
        shown = ", ".join(f"{k} {v:.2f}x" for k, v in relative[name].items())
        print(f"{name} relative to {base_name}: {shown}")
    keep = ("world_size", "global_batch", *RELATIVE)
    summary = {name: {k: m.get(k) for k in keep} for name, m in runs.items()}
    print(json.dumps({"base": base_name, "runs": summary, "relative": relative}))


if __name__ == "__main__":
    main()
