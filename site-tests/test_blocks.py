"""The CPU tier: every `cpu` block on every page runs, in page order, and meets its expectation."""

import pytest

from book import records, registry, runner
from book.contract import inventory

ENTRIES = registry.load()[0]
_seen = set()
CPU_BLOCKS = []
for _b in inventory(ENTRIES).blocks:
    _e = ENTRIES.get(_b.ref or "")
    if _e and _e.tier == "cpu" and (_b.page, _b.ref) not in _seen:
        _seen.add((_b.page, _b.ref))
        CPU_BLOCKS.append((_b.page, _b.ref))


def _run(page, ref, page_runs):
    if (page, ref) in page_runs.done:
        return page_runs.done[(page, ref)]
    entry = ENTRIES[ref]
    for need in entry.needs:
        prior = _run(page, need, page_runs)
        assert not prior.failures, f"{ref} needs {need}, which failed"
    res = runner.run_block(entry, page_runs.workdir(page))
    page_runs.done[(page, ref)] = res
    if not res.failures and records.status(entry) != "fresh":
        records.write(entry, res)
    return res


@pytest.mark.slow
@pytest.mark.parametrize("page,ref", CPU_BLOCKS, ids=[f"{p}::{r}" for p, r in CPU_BLOCKS])
def test_cpu_block(page, ref, page_runs):
    res = _run(page, ref, page_runs)
    assert not res.failures, (
        f"{ref} on {page}: " + "; ".join(res.failures) + "\n--- last lines of output ---\n" + res.tail(40)
    )
