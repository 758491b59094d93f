"""The block runner: nothing a block starts survives it, no read waits past a deadline,
and `repeat: N` runs a block N times with every run checked."""

import os
import signal
import time
from pathlib import Path

import pytest

from book import records, runner
from book.registry import Entry


def _alive(pattern: str) -> list[int]:
    """PIDs of live processes whose command line contains a pattern."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if pattern in cmd and state not in ("Z", "X"):
            pids.append(int(d.name))
    return pids


@pytest.fixture(autouse=True)
def short_grace(monkeypatch):
    """Leftover processes get one second here instead of five."""
    monkeypatch.setattr(runner, "GRACE_S", 1.0)


@pytest.fixture
def marker():
    """A sleep length no other process on the machine uses, and a clean-up of what is left."""
    seconds = f"{(os.getpid() % 900) + 100}.{int(time.time() * 1000) % 1000:03d}"
    yield seconds
    for pid in _alive(f"sleep {seconds}"):
        os.kill(pid, signal.SIGKILL)


def _entry(**kw) -> Entry:
    spec = {"tier": "cpu", "timeout": 30, "expect": {"exit": 0}} | kw
    return Entry(key="chx/plant.sh:block", source=Path("plant.yml"), **spec)


def test_a_process_that_leaves_the_session_and_clears_its_environment_is_caught(tmp_path, marker):
    """`setsid -f env -i sleep` escapes a process group and the environment token."""
    start = time.monotonic()
    res = runner.run_block(_entry(), tmp_path, text=f"setsid -f env -i sleep {marker} >/dev/null 2>/dev/null")
    assert any("left 1 process(es) running" in f and f"sleep {marker}" in f for f in res.failures), res.failures
    assert not _alive(f"sleep {marker}"), "the escaped process is still running"
    assert time.monotonic() - start < runner.GRACE_S + 10


def test_an_escaped_child_holding_the_output_does_not_hold_the_runner(tmp_path, marker):
    """The child keeps stdout open; the runner returns once its grace is over, not when sleep ends."""
    start = time.monotonic()
    res = runner.run_block(_entry(timeout=20), tmp_path, text=f"setsid -f env -i sleep {marker}\necho done")
    took = time.monotonic() - start
    assert res.exit == 0 and "done" in res.output
    assert any("left 1 process(es) running" in f for f in res.failures), res.failures
    assert took < runner.GRACE_S + 10, f"the runner waited {took:.0f} s"
    assert not _alive(f"sleep {marker}")


def test_a_block_past_its_timeout_is_killed_with_everything_it_started(tmp_path, marker):
    start = time.monotonic()
    text = f"setsid -f sleep {marker}\nsleep {marker}"
    res = runner.run_block(_entry(timeout=3), tmp_path, text=text)
    assert any("timed out after 3 s" in f for f in res.failures), res.failures
    assert time.monotonic() - start < 3 + 10
    assert not _alive(f"sleep {marker}")


def test_every_read_has_a_deadline_even_if_the_launcher_fails(tmp_path, marker, monkeypatch):
    """A launcher that lets a child escape with the pipe and exits: the runner still returns.

    The stand-in launcher starts the block without becoming a subreaper and exits at once;
    the block's child keeps the output pipe open. The environment token finds it afterwards.
    """
    fake = tmp_path / "fake_launch.py"
    fake.write_text(
        "import json, subprocess, sys\n"
        "report = sys.argv[1]\n"
        "cmd = sys.argv[sys.argv.index('--') + 1:]\n"
        "subprocess.Popen(cmd, start_new_session=True)\n"
        "json.dump({'exit': 0, 'timed_out': False, 'survivors': []}, open(report, 'w'))\n"
    )
    monkeypatch.setattr(runner, "LAUNCHER", fake)
    start = time.monotonic()
    res, survivors = runner.run_text(f"sleep {marker}", tmp_path, timeout=60)
    took = time.monotonic() - start
    assert took < runner.DRAIN_S + 10, f"the runner read for {took:.0f} s"
    assert survivors, "the token did not find the escaped process"
    assert not _alive(f"sleep {marker}")


def test_a_clean_block_passes_and_records_its_environment(tmp_path):
    res = runner.run_block(_entry(expect={"output": ["^hello$"]}), tmp_path, text="echo hello")
    assert not res.failures, res.failures
    assert res.matched == {"^hello$": ["hello"]}
    assert res.overrides["NCCL_NVLS_ENABLE"] == "0"


COUNTER = (
    "python -c \"import json, pathlib; p = pathlib.Path('n'); n = int(p.read_text()) + 1 if p.exists() else 1; "
    "p.write_text(str(n)); print(json.dumps({'n': n, 'speed': [10, 30, 20][n - 1], 'name': f'run{n}'}))\""
)


def test_repeat_runs_the_block_n_times_in_one_folder_and_keeps_the_medians(tmp_path, monkeypatch):
    entry = _entry(repeat=3, expect={"metrics": {"speed": ">= 10"}})
    res = runner.run_block(entry, tmp_path, text=COUNTER)
    assert not res.failures, res.failures
    assert [r["metrics"]["n"] for r in res.runs] == [1, 2, 3]
    assert res.metrics == {"n": 2, "speed": 20, "name": "run3"}
    rec_dir = tmp_path / "records"
    monkeypatch.setattr(records.deps, "block_hashes", lambda e: {e.key: "0" * 64})
    records.write(entry, res, records_dir=rec_dir, env={"date": "today"}, claims=[])
    rec = records.load(entry.key, rec_dir)
    assert [r["metrics"]["speed"] for r in rec["runs"]] == [10, 30, 20] and rec["metrics"]["speed"] == 20
    assert records.judge(entry, rec, claims=[]).fresh


def test_repeat_fails_when_any_run_fails(tmp_path):
    entry = _entry(repeat=3, expect={"metrics": {"speed": "< 25"}})
    res = runner.run_block(entry, tmp_path, text=COUNTER)
    assert res.failures == ["run 2 of 3: metric speed = 30, expected < 25"]
    assert len(res.runs) == 2
