"""Chapter 5: bad input is one line, from rank 0, before any process group forms.

The bad-input cases run as rank 0 and as rank 1 of a two-process torchrun job (the
environment torchrun gives each): rank 0 prints the error, rank 1 exits without a word,
and both exit non-zero before any process group forms.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from book.registry import REPO
from test_bad_input import TORCHRUN_2, _assert_one_line_error

SNIPPETS = REPO / "snippets" / "ch05"
GOOD = sorted(SNIPPETS.glob("*.json"))
BAD = sorted((SNIPPETS / "bad").glob("*.json"))
RANK_1 = {**TORCHRUN_2, "RANK": "1", "LOCAL_RANK": "1"}


def _run(argv, env=None, cwd=REPO):
    full = {k: v for k, v in os.environ.items() if k not in TORCHRUN_2}
    full.update({"DS_ACCELERATOR": "cpu", **(env or {})})
    return subprocess.run([sys.executable, *argv], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=300)


# The page runs the bad stage, the misspelt and misplaced keys and a batch that does not
# divide as blocks of its own; these are the cases it does not show.
CASES = [
    ("no-such-config", ["--config", "snippets/ch05/none.json"],
     r"^error: snippets/ch05/none\.json does not exist$"),
    ("batch-not-divisible", ["--global-batch", "8", "--micro-batch", "3"],
     r"^error: --global-batch 8 is not divisible by world size 2 x --micro-batch 3$"),
    ("resume-from-nothing", ["--resume-from", "runs/no/such"],
     r"^error: --resume-from runs/no/such is not a folder$"),
]


@pytest.mark.parametrize("argv, pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(argv, pattern):
    _assert_one_line_error(_run(["snippets/ch05/train_zero.py", *argv], TORCHRUN_2), pattern)


def test_bad_input_prints_once():
    """Rank 1 of the same job sees the same bad flags, exits 1 and prints nothing."""
    quiet = _run(["snippets/ch05/train_zero.py", "--global-batch", "8", "--micro-batch", "3"], RANK_1)
    assert quiet.returncode == 1 and not quiet.stderr.strip(), quiet.stderr[-1000:]


def test_offload_without_a_cpu_adam_op(tmp_path):
    """No compiler to build DeepSpeed's CPU Adam op: refused before any process starts."""
    env = {**TORCHRUN_2, "CXX": str(tmp_path / "no-compiler"),
           "TORCH_EXTENSIONS_DIR": str(tmp_path / "ext")}
    proc = _run(["snippets/ch05/train_zero.py", "--config", "snippets/ch05/zero2_offload.json"], env)
    _assert_one_line_error(proc, r"^error: snippets/ch05/zero2_offload\.json: offload_optimizer "
                                 r"needs DeepSpeed's CPU Adam op, which did not build here")


def test_checkpoint_of_another_model(tmp_path):
    """The trainer reads what it stored beside the checkpoint before DeepSpeed loads anything."""
    step = tmp_path / "ckpt" / "step_000020"
    step.mkdir(parents=True)
    (tmp_path / "ckpt" / "latest").write_text("step_000020")
    model = {"vocab_size": 512, "seq_len": 128, "n_layer": 2, "n_head": 2, "d_model": 128}
    (step / "trainer.json").write_text(json.dumps({"step": 20, "config": model}))
    proc = _run([str(REPO / "snippets/ch05/train_zero.py"), "--config",
                 str(SNIPPETS / "zero2.json"), "--resume-from", "ckpt", "--d-model", "64"],
                TORCHRUN_2, cwd=tmp_path)
    _assert_one_line_error(proc, r"^error: ckpt/step_000020 holds a different model: "
                                 r"d_model 128 \(checkpoint\) vs 64 \(this run\)$")


def test_export_refuses_a_folder_without_checkpoint(tmp_path):
    proc = _run([str(REPO / "snippets/ch05/export_fp32.py"), str(tmp_path)])
    _assert_one_line_error(proc, r"holds no DeepSpeed checkpoint \(no `latest` file\)$")


def test_configs_are_json():
    """The page shows these files and a block puts each through DeepSpeed's parser; each is
    plain JSON as well (DeepSpeed also reads hjson), and the bad ones parse as JSON too, so
    what refuses them is DeepSpeed's parser and not a syntax error."""
    for p in GOOD + BAD:
        json.loads(Path(p).read_text())
