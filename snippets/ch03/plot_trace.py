"""One profiled DDP step on two GPUs: compute kernels and all-reduces on two lanes.

Reads the record of profile_ddp.py's GPU run from site-tests/records; with no passing
record it draws empty axes with a note, so that a fresh clone builds the figure too.

    python snippets/ch03/plot_trace.py --records site-tests/records --out runs/ch03/trace.svg
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from figure_io import parse_args, passing_record, save  # noqa: E402

BLOCK = "ch03/commands.sh:profile-2gpu"


def main():
    args = parse_args(__doc__)
    rec = passing_record(args.records, BLOCK)
    plt.rcParams["svg.hashsalt"] = "ch03"
    fig, ax = plt.subplots(figsize=(9, 2.4))
    series = []
    if rec:
        m = rec["metrics"]
        for row, (name, color) in enumerate((("compute", "C0"), ("all-reduce", "C1"))):
            spans = [(s / 1e3, (e - s) / 1e3) for s, e in m["lanes"][name]]
            ax.broken_barh(spans, (row - 0.35, 0.7), color=color, gid=f"{BLOCK}|{name}")
            series.append({"gid": f"{BLOCK}|{name}", "x": [s for s, _ in m["lanes"][name]],
                           "y": [e for _, e in m["lanes"][name]]})
        env = rec.get("env", {})
        ax.set_title(f"One DDP step of the {m['preset']} GPT, {m['bucket_cap_mb']:g} MiB buckets, "
                     f"{m['world_size']} x {env.get('gpu', '?')}: {m['hidden_share']:.0%} of the "
                     "all-reduce time under compute", fontsize=9)
    else:
        ax.text(0.5, 0.5, "measurement pending: the two-GPU profile has not been recorded yet",
                ha="center", va="center", transform=ax.transAxes, color="gray")
    ax.set_yticks([0, 1], ["compute kernels", "NCCL all-reduce"])
    ax.set_xlabel("time since the step's first kernel (ms)")
    ax.set_ylim(-0.6, 1.6)
    # Beside the image, the spans it drew (start and end, in microseconds, per lane).
    save(fig, args.out, "trace", BLOCK, bool(rec), series)


if __name__ == "__main__":
    main()
