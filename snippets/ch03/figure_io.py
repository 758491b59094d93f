"""What the chapter's figure scripts share: their two arguments, the record each draws,
and the image written with the data it drew beside it (NAME.json), which the site build
reads to check that a figure shows only fresh records."""

import argparse
import json
import sys
from pathlib import Path


def parse_args(doc: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--records", default="site-tests/records", help="folder of records")
    ap.add_argument("--out", required=True, help="image file (.svg, .png or .pdf)")
    args = ap.parse_args()
    if not Path(args.records).is_dir():
        sys.exit(f"error: --records {args.records} is not a folder")
    return args


def passing_record(folder: str, block: str, needs: str | None = None) -> dict | None:
    """The last passing record of `block` in `folder` (whose metrics hold `needs`, if given)."""
    rec = None
    for f in sorted(Path(folder).glob("*.json")):
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if (isinstance(data, dict) and data.get("block") == block and data.get("status") == "pass"
                and (needs is None or needs in (data.get("metrics") or {}))):
            rec = data
    return rec


def save(fig, out: str, name: str, block: str, drawn: bool, series: list) -> Path:
    """Write the image and, beside it, the spans it drew; say which record it drew."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight", metadata={"Date": None} if out.suffix == ".svg" else None)
    data = {"figure": name, "records": [block] if drawn else [], "series": series}
    out.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    print(f"{out}: {'1 record' if drawn else 'no record'}")
    return out
