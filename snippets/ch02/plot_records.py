"""Chapter 2's figures, drawn from the verification records of its two benchmarks.

`busbw` plots bus bandwidth against message size, one line per collective and per record
of collective_bench.py or alltoall_bench.py (gloo on CPU, NCCL on GPUs): the colour says
which collective, the line style how many ranks ran it. `roofline` plots the measured matmul
points of matmul_bench.py under their roofs: the copy bandwidth times the arithmetic
intensity, capped by the peak compute (a datasheet value for known GPUs, or
--peak-tflops; on CPU the best measured point). With no matching record the script
draws empty axes with a note, so a fresh clone can always build the figures. Beside the
image it writes the numbers it drew (busbw.json next to busbw.svg).

    python snippets/ch02/plot_records.py busbw --records site-tests/records --out runs/ch02/busbw.svg
    python snippets/ch02/plot_records.py roofline --records site-tests/records --out runs/ch02/roofline.svg
"""  # noqa: E501

import argparse
import fnmatch
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

# The compute roofs are the calculator's table of dense datasheet peaks (aicluster.hardware).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from aicluster.hardware import lookup  # noqa: E402

COLORS = {"all_reduce": "C0", "all_gather": "C1", "reduce_scatter": "C2", "all_to_all": "C3"}
STYLES = ["-", "--", ":", "-."]
# CPU processes dotted; 2, 4 and 8 GPUs solid, dashed and dash-dotted.
RANK_STYLES = {("CPU", 2): ":", ("GPU", 2): "-", ("GPU", 4): "--", ("GPU", 8): "-."}


def parse_args():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--records", default="site-tests/records", help="folder of records")
    common.add_argument("--out", required=True, help="image file (.svg, .png or .pdf)")
    common.add_argument("--block", default=None,
                        help="glob on the records' block names (default: this figure's blocks)")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="figure", required=True)
    sub.add_parser("busbw", parents=[common], help="bus bandwidth against message size")
    roof = sub.add_parser("roofline", parents=[common], help="matmul points under their roofs")
    roof.add_argument("--peak-tflops", type=float, default=None,
                      help="compute roof for every record instead of the datasheet table")
    args = ap.parse_args()
    if not Path(args.records).is_dir():
        sys.exit(f"error: --records {args.records} is not a folder")
    if getattr(args, "peak_tflops", None) is not None and args.peak_tflops <= 0:
        sys.exit("error: --peak-tflops must be positive")
    default = {"busbw": "ch02/bench.sh:collectives-*", "roofline": "ch02/bench.sh:matmul-*"}
    args.block = args.block or default[args.figure]
    return args


def load(folder, pattern, needs):
    """Passing records in a folder whose block matches the glob and whose metrics hold `needs`."""
    found = []
    for f in sorted(Path(folder).glob("*.json")):
        try:
            found.append(json.loads(f.read_text()))
        except (OSError, ValueError):
            continue
    return select(found, pattern, needs)


def select(records, pattern, needs):
    """The records (dicts) whose block matches the glob and whose metrics hold `needs`."""
    return [rec for rec in records
            if isinstance(rec, dict) and fnmatch.fnmatchcase(str(rec.get("block")), pattern)
            and rec.get("status") == "pass" and (rec.get("metrics") or {}).get(needs)]


def where(rec):
    env = rec.get("env") or {}
    return env.get("gpu") or "CPU", env.get("date", "undated")


def human(nbytes):
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:g} {unit}"
    return f"{nbytes:g} B"


def empty(ax, args, xlim, ylim):
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.text(0.5, 0.5, f"no passing records of {args.block!r} yet", ha="center", va="center",
            transform=ax.transAxes, color="gray")


def plot_busbw(ax, records, args):
    lines = 0
    for i, rec in enumerate(records):
        m = rec["metrics"]
        gpu, date = where(rec)
        n, backend = m.get("world_size", "?"), m.get("backend", "?")
        if backend == "nccl" and (rec.get("env") or {}).get("nccl"):
            backend += " " + rec["env"]["nccl"]
        who = f"{n} CPU processes" if gpu == "CPU" else f"{n} x {gpu}"
        who += f", {backend}, {date}"
        style = RANK_STYLES.get(("CPU" if gpu == "CPU" else "GPU", n), STYLES[i % len(STYLES)])
        for name, table in m["busbw_gbps"].items():
            sizes = sorted(table, key=int)
            ax.plot([int(s) for s in sizes], [table[s] for s in sizes], style,
                    color=COLORS.get(name, "C3"), marker=".", label=f"{name}: {who}",
                    gid=f"{rec['block']}|{name}")
            lines += 1
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: human(x)))
    ax.set_xlabel("message size S (nccl-tests convention)")
    ax.set_ylabel("bus bandwidth (GB/s)")
    ax.set_title("Bus bandwidth of collectives")
    return lines


def roof_for(rec, peak_flag):
    """Compute roof in TFLOP/s for a record's headline dtype, and where it came from."""
    m, (gpu, _) = rec["metrics"], where(rec)
    if peak_flag:
        return peak_flag, f"{peak_flag:g} TFLOP/s from --peak-tflops"
    best = max(p["tflops"] for p in m["points"])
    if gpu == "CPU":
        return best, "CPU: flat roof = best measured point"
    try:
        peaks = lookup(gpu).tflops
    except ValueError:
        # A GPU the table does not know (an H100 PCIe, say) must not borrow another's peak.
        print(f"warning: no datasheet peak for {gpu!r}; its roof is its best measured point "
              "(pass --peak-tflops)", file=sys.stderr)
        return best, f"{gpu}: flat roof = best measured point"
    if m.get("dtype") not in peaks:
        return best, f"{gpu}: flat roof = best measured point"
    return peaks[m["dtype"]], f"{gpu}: datasheet {peaks[m['dtype']]:g} TFLOP/s {m['dtype']}"


def plot_roofline(ax, records, args):
    notes, lines = [], 0
    for i, rec in enumerate(records):
        m, color = rec["metrics"], f"C{i}"
        peak, note = roof_for(rec, args.peak_tflops)
        gbps = m["copy_gbps"]
        ridge = peak * 1e3 / gbps  # FLOP/byte where memory stops being the limit
        ai = [p["intensity"] for p in m["points"]] + [ridge]
        xs = [min(ai) / 2, ridge, max(ai) * 2]
        roof = [min(peak, x * gbps / 1e3) for x in xs]  # attainable: min(peak, AI x bandwidth)
        ax.plot(xs, roof, color=color, gid=f"{rec['block']}|roof",
                label=f"{where(rec)[0]} roof: {gbps:.0f} GB/s copy, {peak:.3g} TFLOP/s")
        for j, dtype in enumerate(dict.fromkeys(p["dtype"] for p in m["points"])):
            pts = [p for p in m["points"] if p["dtype"] == dtype]
            ax.scatter([p["intensity"] for p in pts], [p["tflops"] for p in pts], color=color,
                       marker="os^Dv"[j % 5], s=18, label=f"{dtype} matmuls",
                       gid=f"{rec['block']}|{dtype}")
        notes.append(note)
        lines += 1
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP per byte of A, B and C)")
    ax.set_ylabel("TFLOP/s")
    ax.set_title("Roofline" + ("\n" + "; ".join(notes) if notes else ""), fontsize=9)
    return lines


def drawn(ax):
    """The series the axes hold, by the gid each was drawn with: what the image shows."""
    series = [{"gid": ln.get_gid(), "x": ln.get_xdata().tolist(), "y": ln.get_ydata().tolist()}
              for ln in ax.get_lines() if ln.get_gid()]
    for c in ax.collections:
        if c.get_gid():
            xy = c.get_offsets().tolist()
            series.append({"gid": c.get_gid(), "x": [p[0] for p in xy], "y": [p[1] for p in xy]})
    return series


def main():
    args = parse_args()
    needs = {"busbw": "busbw_gbps", "roofline": "points"}[args.figure]
    records = load(args.records, args.block, needs)
    plt.rcParams["svg.hashsalt"] = "ch02"  # the same records give the same file
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    draw = plot_busbw if args.figure == "busbw" else plot_roofline
    lines = draw(ax, records, args)
    if records:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    elif args.figure == "busbw":
        empty(ax, args, (2**10, 2**32), (1e-3, 1e3))
    else:
        empty(ax, args, (1, 1e4), (1e-2, 2e3))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight", metadata={"Date": None} if out.suffix == ".svg" else None)
    data = {"figure": args.figure, "records": [r["block"] for r in records], "series": drawn(ax)}
    out.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    print(f"{out}: {len(records)} record(s) matching {args.block!r}, {lines} line(s)")
    print(json.dumps({"figure": str(out), "records": len(records), "lines": lines}))


if __name__ == "__main__":
    main()
