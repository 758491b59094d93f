"""Verification records: well formed, about registered blocks, and honest about freshness."""

import copy
import dataclasses
import json
import shutil

import pytest

from book import checks, records, registry
from book.registry import RECORDS_DIR
from book.runner import Result

RECORD_FILES = sorted(RECORDS_DIR.glob("*.json"))
REQUIRED = {"block", "tier", "status", "wall_s", "exit", "metrics", "runs", "matched", "summary", "output",
            "snippets", "env"}
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


def _copy(key, tmp_path):
    """A copy of a fresh record in a scratch folder, and its entry."""
    src = records.record_path(key)
    dst = records.record_path(key, tmp_path)
    shutil.copy(src, dst)
    return json.loads(dst.read_text())


def _save(rec, tmp_path):
    records.record_path(rec["block"], tmp_path).write_text(json.dumps(rec))


FRESH_GPU = "ch04/commands.sh:fsdp-1gpu"


def test_freshness_follows_the_snippets(entries, tmp_path):
    entry = entries[FRESH_GPU]
    rec = _copy(FRESH_GPU, tmp_path)
    assert records.status(entry, tmp_path) == "fresh"
    rec["snippets"]["ch04/train_fsdp.py"] = "0" * 64
    _save(rec, tmp_path)
    assert records.status(entry, tmp_path) == "stale"


@pytest.mark.parametrize("change", [
    {"expect": "mfu >= 0.99"},  # the example: a raised check against a recorded 0.58
    {"timeout": 900},
    {"tier": "gpu:2"},
    {"repeat": 3},
    {"claim": "a new claim names the block"},
])
def test_freshness_follows_what_the_block_is_checked_against(entries, tmp_path, change):
    entry = entries[FRESH_GPU]
    _copy(FRESH_GPU, tmp_path)
    claims = records.claims_for(entry)
    assert records.status(entry, tmp_path, claims) == "fresh"
    if "expect" in change:
        expect = copy.deepcopy(entry.expect)
        expect["metrics"]["mfu"] = ">= 0.99"
        entry = dataclasses.replace(entry, expect=expect)
    elif "claim" in change:
        claims = claims + [registry.Claim("FSDP2 keeps up with itself", (FRESH_GPU, "mfu"),
                                          (FRESH_GPU, "mfu"), 1.0, RECORDS_DIR)]
    else:
        entry = dataclasses.replace(entry, **change)
    verdict = records.judge(entry, records.load(FRESH_GPU, tmp_path), claims)
    assert verdict.status == "stale" and "checked against has changed" in verdict.reasons[0], verdict


def test_a_record_is_checked_again_against_its_own_evidence(entries, tmp_path):
    """Even with a digest that matches, the stored evidence must pass the current expectation."""
    entry = entries[FRESH_GPU]
    expect = copy.deepcopy(entry.expect)
    expect["metrics"]["mfu"] = ">= 0.99"
    raised = dataclasses.replace(entry, expect=expect)
    rec = _copy(FRESH_GPU, tmp_path)
    rec["checked"] = checks.digest(raised, records.claims_for(entry))
    verdict = records.judge(raised, rec)
    assert verdict.status == "stale" and "metric mfu" in verdict.reasons[0], verdict
    # The lines an output pattern matched are the evidence for it; so is the exit code.
    rec = _copy(FRESH_GPU, tmp_path)
    rec["matched"].pop(next(iter(rec["matched"])))
    assert "keeps no line that matches" in records.judge(entry, rec).reasons[0]
    rec = _copy(FRESH_GPU, tmp_path)
    rec["exit"] = 1
    assert "exit code 1" in records.judge(entry, rec).reasons[0]
    rec = _copy(FRESH_GPU, tmp_path)
    rec["runs"][0]["wall_s"] = entry.timeout + 1
    assert "past its timeout" in records.judge(entry, rec).reasons[0]


def test_a_stale_record_is_neither_quoted_nor_reported_fresh(entries, tmp_path):
    from book.render import MISSING, Renderer

    rec = _copy(FRESH_GPU, tmp_path)
    renderer = Renderer(entries, records_dir=tmp_path)
    assert renderer.metric(FRESH_GPU, "mfu", ".2f") == f"{rec['metrics']['mfu']:.2f}"
    rec["checked"] = "0" * 64
    _save(rec, tmp_path)
    renderer = Renderer(entries, records_dir=tmp_path)
    assert renderer.metric(FRESH_GPU, "mfu", ".2f") == MISSING and FRESH_GPU in renderer.missing
    assert FRESH_GPU in [k for k, _ in records.gpu_report(entries, records_dir=tmp_path)]
    assert FRESH_GPU not in records.fresh_records(entries, records_dir=tmp_path)


def test_gpu_report_lists_missing_records(entries, tmp_path):
    rows = records.gpu_report(entries, records_dir=tmp_path)
    gpu = sorted(k for k, e in entries.items() if e.gpus)
    assert [k for k, _ in rows] == gpu and all(s == "missing" for _, s in rows)


def failing_claims(rows) -> list[str]:
    return [f"{c.says}: {value:.3f} < {c.at_least}" for c, value, holds in rows if value is not None and not holds]


def test_claims_about_pairs_of_records_hold(entries):
    """What the text says about two GPU records together (e.g. scaling) holds wherever both are fresh."""
    rows = records.claim_report(entries, registry.load_claims())
    assert rows, "no claims registered"
    assert not failing_claims(rows)


def _synthetic(entry, metrics, lines, records_dir):
    """A passing record of a block with made-up numbers, fresh by every rule."""
    output = "\n".join(lines + [json.dumps(metrics)])
    res = Result(exit=0, output=output, wall_s=60.0, metrics=metrics)
    failures, res.matched = checks.check_output(entry, output)
    res.failures = failures + checks.check_metrics(entry, metrics)
    assert not res.failures, res.failures
    res.summary = checks.summary_line(output)
    records.write(entry, res, records_dir=records_dir, env={"date": "2026-01-01", "gpu": "GPU", "gpu_count": 2})
    assert records.status(entry, records_dir) == "fresh"


TRAIN = {"world_size": 1, "grad_accum": 4, "mfu": 0.58, "peak_mem_gib": 45.0}


def ch03_claims():
    """The claim about chapter 3's two single runs, the one the synthetic records below exercise."""
    return [c for c in registry.load_claims() if c.of[0] == "ch03/commands.sh:train-2gpu"]


def test_a_claim_that_fresh_records_break_fails(entries, tmp_path):
    """Synthetic fresh records where two GPUs keep only half of one GPU's throughput per GPU."""
    one, two = entries["ch03/commands.sh:train-1gpu"], entries["ch03/commands.sh:train-2gpu"]
    _synthetic(one, {**TRAIN, "tokens_per_s_per_gpu": 80000.0},
               ["1 rank(s) on 1 node(s), nccl, bf16, 977.3M parameters"], tmp_path)
    _synthetic(two, {**TRAIN, "world_size": 2, "tokens_per_s_per_gpu": 40000.0},
               ["2 rank(s) on 1 node(s), nccl, bf16, 977.3M parameters"], tmp_path)
    rows = records.claim_report(entries, ch03_claims(), records_dir=tmp_path)
    assert failing_claims(rows) == ["DDP on 2 GPUs keeps at least 95% of one GPU's tokens/s per GPU: 0.500 < 0.95"]
    # At 96% the same claim holds.
    _synthetic(two, {**TRAIN, "world_size": 2, "tokens_per_s_per_gpu": 76800.0},
               ["2 rank(s) on 1 node(s), nccl, bf16, 977.3M parameters"], tmp_path)
    rows = records.claim_report(entries, ch03_claims(), records_dir=tmp_path)
    assert not failing_claims(rows) and [round(v, 2) for _, v, _ in rows] == [0.96]


def test_a_claim_uses_the_medians_of_repeated_runs(entries, tmp_path):
    one, two = entries["ch03/commands.sh:train-1gpu"], entries["ch03/commands.sh:train-2gpu"]
    _synthetic(one, {**TRAIN, "tokens_per_s_per_gpu": 80000.0},
               ["1 rank(s) on 1 node(s), nccl, bf16"], tmp_path)
    _synthetic(two, {**TRAIN, "world_size": 2, "tokens_per_s_per_gpu": 76000.0},
               ["2 rank(s) on 1 node(s), nccl, bf16"], tmp_path)
    rec = records.load(two.key, tmp_path)
    rec["runs"] = [{"exit": 0, "wall_s": 60, "metrics": {**TRAIN, "tokens_per_s_per_gpu": v}}
                   for v in (70000.0, 76000.0, 79000.0)]
    records.record_path(two.key, tmp_path).write_text(json.dumps(rec))
    # The record is for a block that runs once: three runs make it stale, and the claim open.
    [(_, value, _)] = records.claim_report(entries, ch03_claims(), records_dir=tmp_path)
    assert value is None
    two3 = dataclasses.replace(two, repeat=3)
    rec["checked"] = checks.digest(two3, records.claims_for(two))
    records.record_path(two.key, tmp_path).write_text(json.dumps(rec))
    rows = records.claim_report({**entries, two.key: two3}, ch03_claims(), records_dir=tmp_path)
    [(_, value, _)] = rows
    assert value == pytest.approx(76000 / 80000)


def test_a_failing_claim_is_reported(entries, tmp_path):
    claim = registry.Claim(says="two GPUs are twice as fast per GPU",
                           of=("ch03/commands.sh:train-2gpu", "tokens_per_s_per_gpu"),
                           over=("ch03/commands.sh:train-1gpu", "tokens_per_s_per_gpu"),
                           at_least=2.0, source=RECORDS_DIR)
    [(_, value, holds)] = records.claim_report(entries, [claim])
    assert value is None or not holds
    # With no records at all, the claim is open, not failed.
    [(_, value, holds)] = records.claim_report(entries, [claim], records_dir=tmp_path)
    assert value is None and not holds
