"""The HTML-order check of shell lines (test_browser.py runs it on the built pages):
planted pages show that it skips what it should, trusts only what the runner ran, and
runs and catches the rest."""

from book import shell_lines
from book.registry import parse_ref, section_text


def _text(key: str) -> str:
    return section_text(*parse_ref(key))


def test_the_plan_skips_gpu_failing_and_script_blocks_and_trusts_only_what_the_runner_ran(entries):
    texts = [
        _text("ch01/commands.sh:setup"),                 # cpu, run by the block runner as shown
        _text("ch03/commands.sh:train-1gpu"),            # gpu:1
        _text("ch03/commands.sh:multinode"),             # multi-node
        _text("ch03/commands.sh:bad-batch-cpu"),         # expected to exit 1
        _text("ch03/train.sbatch"),                      # a script shown as a listing
        _text("ch03/commands.sh:sizes") + " --help",     # differs from what the runner ran
        "python -c 'print(1)'",                          # matches no registered block
    ]
    plan = shell_lines.plan_page("planted", texts, entries)
    assert [b.action for b in plan.blocks] == ["ran", "skip", "skip", "skip", "skip", "run", "run"], plan
    assert plan.must_run


def test_a_page_that_must_run_runs_its_cpu_lines_in_one_shell_and_reports_the_failing_line(entries):
    texts = [
        _text("ch01/commands.sh:setup"),
        "export BOOK_PLANTED=yes",                       # state that later lines see
        'test "$BOOK_PLANTED" = yes',
        _text("ch03/commands.sh:train-1gpu"),            # skipped: it would fail on CPU
        "python snippets/ch03/train_ddp.py --global-batch 7 --micro-batch 4",  # not registered; exits 1
        "python -c 'import sys; sys.exit(0)' 2>&1 | tee planted.log",
    ]
    plan = shell_lines.plan_page("planted", texts, entries)
    failures = shell_lines.run_page(plan, entries, timeout=120)
    lines = [f for f in failures if not f.startswith("---")]
    bad = "python snippets/ch03/train_ddp.py --global-batch 7 --micro-batch 4"
    assert lines == [f"planted: {bad!r} exited 1"], failures


def test_only_builtins_that_change_the_shell_count_as_state():
    state = [". .venv-vllm/bin/activate", "source env.sh", "export A=1", "set -e", "A=1"]
    not_state = [".venv-vllm/bin/python x.py", ".venv-checkov/bin/checkov -d .", "settle", "A=1 python x.py"]
    assert all(shell_lines.STATE.match(ln) for ln in state)
    assert not any(shell_lines.STATE.match(ln) for ln in not_state)
