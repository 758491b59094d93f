"""Chapter 11's figure, drawn from the records of the in-process experiments: test
accuracy per round (median over seeds, shaded from min to max) for FedAvg, FedProx and
FedAdam on IID and Dirichlet splits, and for FedAvg with DP noise.

    python snippets/ch11/plot_rounds.py --records site-tests/records --out runs/ch11/rounds.svg
"""

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PANELS = [("ch11/commands.sh:strategies", "Strategy and data split"),
          ("ch11/commands.sh:dp", "FedAvg with clipping and Gaussian noise (IID)")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", default="site-tests/records")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if not Path(args.records).is_dir():
        sys.exit(f"error: --records {args.records} is not a folder")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    found, drawn, series = 0, [], []
    for ax, (block, title) in zip(axes, PANELS, strict=True):
        path = Path(args.records) / (block.replace("/", "-").replace(":", "-") + ".json")
        rec = json.loads(path.read_text()) if path.exists() else {}
        m = rec.get("metrics") or {}
        if m.get("runs"):
            drawn.append(block)
        for i, (name, run) in enumerate((m.get("runs") or {}).items()):
            x = list(range(len(run["median"])))
            ax.plot(x, run["median"], color=f"C{i}", label=run.get("label", name),
                    gid=f"{block}|{name}")
            ax.fill_between(x, run["min"], run["max"], color=f"C{i}", alpha=0.2)
            series.append({"gid": f"{block}|{name}", "x": x, "y": run["median"]})
            found += 1
        ax.set_title(title + ("" if m else " (no record)"), fontsize=10)
        ax.set_xlabel("round")
        ax.grid(alpha=0.3)
        if m:
            ax.legend(fontsize=8, loc="lower right")
    axes[0].set_ylabel("test accuracy (median, min to max over seeds)")
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    # Beside the image, the median curves it drew, one per run of each record.
    data = {"figure": "rounds", "records": drawn, "series": series}
    Path(args.out).with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    print(f"{args.out}: {found} curve(s) from {len(PANELS)} record(s)")


if __name__ == "__main__":
    main()
