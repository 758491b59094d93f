"""Chapters 3 and 4's scaling figure, drawn from the verification records of the GPU runs.

Left: tokens/s per GPU of each 1B-parameter run, DDP and FSDP2, on one and two GPUs.
Right: the peak memory allocated per GPU, with the part that is training state
(parameters, gradients and AdamW state on the GPU) shaded where the run measured it.
Runs with no passing record are named with "no record", so a fresh clone can always
build the figure. Beside the image it writes the numbers it drew (scaling.json).

    python snippets/ch04/plot_scaling.py --records site-tests/records --out runs/ch04/scaling.svg
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ch03"))
from figure_io import parse_args  # noqa: E402  the two arguments every figure script takes

COMPARE = "ch04/commands.sh:fsdp-vs-ddp-2gpu"
# (label, record of the block, where its numbers sit in the record's metrics)
RUNS = [
    ("DDP, 1 GPU, 32 seq/GPU", "ch03/commands.sh:train-1gpu", None),
    ("DDP, 2 GPUs, 32 seq/GPU", "ch03/commands.sh:train-2gpu", None),
    ("DDP, 2 GPUs, 8 seq/GPU", COMPARE, "runs.ddp-2gpu"),
    ("FSDP2, 2 GPUs, 8 seq/GPU", COMPARE, "runs.fsdp-2gpu"),
    ("FSDP2, 1 GPU", "ch04/commands.sh:fsdp-1gpu", None),
    ("FSDP2, 2 GPUs", "ch04/commands.sh:fsdp-2gpu", None),
    ("FSDP2, one fully_shard(model)", "ch04/commands.sh:fsdp-2gpu-naive", None),
    ("FSDP2, no reshard", "ch04/commands.sh:fsdp-2gpu-noreshard", None),
    ("FSDP2 + checkpointing", "ch04/commands.sh:fsdp-2gpu-ac", None),
    ("FSDP2 + CPU offload", "ch04/commands.sh:fsdp-2gpu-offload", None),
]


def load_records(folder):
    """Passing records by block name."""
    found = {}
    for f in sorted(Path(folder).glob("*.json")):
        try:
            rec = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and rec.get("status") == "pass":
            found[rec.get("block")] = rec
    return found


def numbers(rec, path):
    m = rec.get("metrics") or {}
    for part in (path.split(".") if path else []):
        m = m.get(part) if isinstance(m, dict) else None
    return m if isinstance(m, dict) else None


def main():
    args = parse_args(__doc__)
    records = load_records(args.records)

    rows, gpus, used = [], set(), []
    for label, block, path in RUNS:
        rec = records.get(block)
        m = numbers(rec, path) if rec else None
        if m and m.get("tokens_per_s_per_gpu"):
            gpus.add((rec.get("env") or {}).get("gpu", "GPU"))
            state = m.get("state_gib_per_rank") if m.get("state_device", "cuda") == "cuda" else None
            rows.append((label, m["tokens_per_s_per_gpu"], m.get("peak_mem_gib"), state))
            used.append(block)
        else:
            rows.append((label + " (no record)", 0, None, None))

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True)
    y = range(len(rows))
    gids = [f"{block}|{path or ''}|{label}" for label, block, path in RUNS]
    bars = left.barh(y, [r[1] for r in rows], color="C0")
    for i, r in enumerate(rows):
        if r[1]:
            left.text(r[1], i, f" {r[1]:,.0f}", va="center", fontsize=8)
    left.set_yticks(list(y), [r[0] for r in rows])
    left.invert_yaxis()
    left.set_xlabel("tokens/s per GPU")
    left.set_xlim(0, max([r[1] for r in rows] + [1]) * 1.25)
    peaks = [r[2] or 0 for r in rows]
    mems = right.barh(y, peaks, color="C1", label="peak allocated")
    states = right.barh(y, [r[3] or 0 for r in rows], color="C2", label="training state on the GPU")
    for gid, *parts in zip(gids, bars, mems, states, strict=True):
        for part, what in zip(parts, ("tokens_per_s_per_gpu", "peak_mem_gib", "state_gib_per_rank"),
                              strict=True):
            part.set_gid(f"{gid}|{what}")
    for i, p in enumerate(peaks):
        if p:
            right.text(p, i, f" {p:.1f}", va="center", fontsize=8)
    right.set_xlabel("GiB per GPU")
    right.set_xlim(0, max(peaks + [1]) * 1.25)
    right.legend(loc="lower right", fontsize=8)
    measured = sum(1 for r in rows if r[1])
    where = ", ".join(sorted(gpus)) or "no GPU records yet"
    fig.suptitle(f"1B-parameter GPT, bf16: {where}")
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    # What the image shows, bar by bar: the bars' own widths, under the gid each was drawn with.
    series = [{"gid": p.get_gid(), "value": p.get_width()}
              for ax in (left, right) for p in ax.patches if p.get_gid() and p.get_width()]
    data = {"figure": "scaling", "records": sorted(set(used)), "series": series}
    out.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    print(f"{out}: {measured} record(s) of {len(rows)} runs")


if __name__ == "__main__":
    main()
