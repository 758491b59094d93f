"""Verification records: well formed, about registered blocks, and honest about freshness."""

import json

import pytest

from book import records
from book.registry import RECORDS_DIR

RECORD_FILES = sorted(RECORDS_DIR.glob("*.json"))
REQUIRED = {"block", "tier", "status", "wall_s", "metrics", "output", "snippets", "env"}
ENV_REQUIRED = {"date", "python", "gpu", "gpu_count", "cuda", "nccl", "versions"}


@pytest.mark.parametrize("path", RECORD_FILES, ids=lambda p: p.name)
def test_record_is_well_formed(path, entries):
    rec = json.loads(path.read_text())
    assert REQUIRED <= set(rec), f"missing keys {REQUIRED - set(rec)}"
    assert ENV_REQUIRED <= set(rec["env"]), f"missing env keys {ENV_REQUIRED - set(rec['env'])}"
    assert rec["block"] in entries, f"{rec['block']} is not a registered block"
    assert records.record_path(rec["block"]) == path
    assert rec["status"] in {"pass", "fail"}
    assert rec["tier"] == entries[rec["block"]].tier
    if rec["tier"].startswith("gpu:"):
        need = entries[rec["block"]].gpus
        assert rec["env"]["gpu_count"] >= need and rec["env"]["gpu"], "GPU record made without GPUs"


def test_freshness_follows_the_snippets(entries, tmp_path):
    entry = next(e for e in entries.values() if e.tier == "cpu")
    from book.runner import Result

    records.write(entry, Result(exit=0, output="ok\n{}", wall_s=1.0, metrics={}), records_dir=tmp_path)
    assert records.status(entry, tmp_path) == "fresh"
    rec = json.loads(records.record_path(entry.key, tmp_path).read_text())
    first = next(iter(rec["snippets"]))
    rec["snippets"][first] = "0" * 64
    records.record_path(entry.key, tmp_path).write_text(json.dumps(rec))
    assert records.status(entry, tmp_path) == "stale"


def test_gpu_report_lists_missing_records(entries, tmp_path):
    rows = records.gpu_report(entries, records_dir=tmp_path)
    gpu = sorted(k for k, e in entries.items() if e.gpus)
    assert [k for k, _ in rows] == gpu and all(s == "missing" for _, s in rows)


def test_claims_about_pairs_of_records_hold(entries):
    """What the text says about two GPU records together (e.g. scaling) holds wherever both are fresh."""
    from book import registry

    rows = records.claim_report(entries, registry.load_claims())
    assert rows, "no claims registered"
    for claim, value, holds in rows:
        assert value is None or holds, f"{claim.says}: {value:.3f} < {claim.at_least}"


def test_a_failing_claim_is_reported(entries, tmp_path):
    from book import registry

    claim = registry.Claim(says="two GPUs are twice as fast per GPU",
                           of=("ch03/commands.sh:train-2gpu", "tokens_per_s_per_gpu"),
                           over=("ch03/commands.sh:train-1gpu", "tokens_per_s_per_gpu"),
                           at_least=2.0, source=RECORDS_DIR)
    [(_, value, holds)] = records.claim_report(entries, [claim])
    assert value is None or not holds
    # With no records at all, the claim is open, not failed.
    [(_, value, holds)] = records.claim_report(entries, [claim], records_dir=tmp_path)
    assert value is None and not holds
