"""Figure 3.1: the last micro-batch's backward pass against DDP's bucket all-reduces.

The arithmetic of ddp_math.py drawn as a timeline, not a profile. The backward pass lasts
the record's overlap_window_s; each bucket's gradients are ready after its share of the
bytes has been computed, last parameter first; its all-reduce starts then, or when the one
before it ends (one stream), and lasts bytes / bus bandwidth. The last bucket is ready only
when the backward pass ends, so all of it is exposed. With no passing record the script
draws empty axes with a note. Beside the image it writes the spans it drew (NAME.json).

    python snippets/ch03/plot_overlap.py --records site-tests/records --out runs/ch03/overlap.svg
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from figure_io import parse_args, passing_record, save  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

BLOCK = "ch03/commands.sh:ddp-math"
CAPS = ("25", "256")
ZOOM_MS = 20  # the lower panel shows the backward pass's last 20 ms and what follows


def spans(bucket_mib, window_ms, busbw_gbps):
    """(start, end) in ms of each bucket's all-reduce, in the order DDP reduces them."""
    total, done, free, out = sum(bucket_mib), 0.0, 0.0, []
    for mib in bucket_mib:
        done += mib
        ready = window_ms * done / total
        start = max(ready, free)
        free = start + mib * 2**20 / (busbw_gbps * 1e9) * 1e3
        out.append((start, free))
    return out


def draw(ax, lanes, window_ms, gid):
    """The backward bar on the top lane, one lane of all-reduces per cap below it."""
    ax.broken_barh([(0, window_ms)], (-0.35, 0.7), color="C0", gid=gid and f"{BLOCK}|backward")
    for row, (cap, sp) in enumerate(lanes.items(), start=1):
        hidden = [(s, min(e, window_ms) - s) for s, e in sp if s < window_ms]
        exposed = [(max(s, window_ms), e - max(s, window_ms)) for s, e in sp if e > window_ms]
        # Edges as wide as a hairline, so that a 0.2 ms bar still shows on a 150 ms axis.
        ax.broken_barh(hidden, (row - 0.35, 0.7), color="C1", edgecolor="C1", linewidth=0.6,
                       gid=gid and f"{BLOCK}|{cap}")
        ax.broken_barh(exposed, (row - 0.35, 0.7), color="C3", edgecolor="C3", linewidth=0.6)
    ax.axvline(window_ms, color="gray", linestyle="--", linewidth=1)
    ax.set_ylim(len(lanes) + 0.6, -0.6)
    ax.grid(True, axis="x", alpha=0.3)


def main():
    args = parse_args(__doc__)
    rec = passing_record(args.records, BLOCK, needs="bucket_mib")
    plt.rcParams["svg.hashsalt"] = "ch03-overlap"  # the same record gives the same file
    fig, (full, zoom) = plt.subplots(2, 1, figsize=(6, 4.8))
    series = []
    if rec:
        m = rec["metrics"]
        window = m["overlap_window_s"] * 1e3
        lanes = {cap: spans(m["bucket_mib"][cap], window, m["busbw_gbps"]) for cap in CAPS}
        draw(full, lanes, window, gid=True)
        draw(zoom, lanes, window, gid=False)
        labels = ["backward, last\nmicro-batch"] + [
            f"{cap} MiB cap:\n{len(lanes[cap])} all-reduces" for cap in CAPS]
        for ax in (full, zoom):
            ax.set_yticks(range(len(labels)), labels, fontsize=9)
        full.set_xlim(0, window * 1.04)
        zoom.set_xlim(window - ZOOM_MS, window + 7)
        for row, cap in enumerate(CAPS, start=1):
            exposed = lanes[cap][-1][1] - window
            zoom.annotate(f"{m['last_bucket_mib'][cap]:.0f} MiB bucket:\n{exposed:.1f} ms exposed",
                          (lanes[cap][-1][1], row), xytext=(6, 0), textcoords="offset points",
                          va="center", fontsize=8)
        full.set_title(f"{m['preset'].upper()} GPT, 2 GPUs at {m['busbw_gbps']:g} GB/s: "
                       "the arithmetic, not a profile", fontsize=9)
        zoom.set_title(f"The last {ZOOM_MS} ms of the backward pass (dashed: it ends)", fontsize=9)
        series.append({"gid": f"{BLOCK}|backward", "x": [0.0], "y": [window]})
        series += [{"gid": f"{BLOCK}|{cap}", "x": [s for s, _ in sp], "y": [e for _, e in sp]}
                   for cap, sp in lanes.items()]
    else:
        for ax in (full, zoom):
            ax.text(0.5, 0.5, f"no passing record of {BLOCK!r} with bucket sizes yet",
                    ha="center", va="center", transform=ax.transAxes, color="gray")
    full.set_xlabel("ms", fontsize=9)
    zoom.set_xlabel("time since the last micro-batch's backward pass began (ms)", fontsize=9)
    fig.legend(handles=[Patch(color=c, label=t) for c, t in (
        ("C0", "backward compute"), ("C1", "all-reduce under compute"), ("C3", "exposed"))],
        loc="lower center", ncol=3, fontsize=8, frameon=False, bbox_to_anchor=(0.5, -0.05))
    fig.tight_layout()
    # Beside the image, the spans it drew: start (x) and end (y) in ms, per lane.
    save(fig, args.out, "overlap", BLOCK, bool(rec), series)


if __name__ == "__main__":
    main()
