"""Bad input gets a one-line error and a non-zero exit, never a traceback.

Checks that need GPUs (more processes than GPUs) run here on a CPU-only machine with
a stand-in for torch.cuda that reports a given number of devices: the scripts check
the count before they touch a GPU, so the stand-in exercises exactly that check.
"""

import os
import re
import subprocess
import sys
import textwrap

import pytest

from book.registry import REPO

# What torchrun puts in the environment of rank 0 of a 2-process job on one node.
TORCHRUN_2 = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2",
              "GROUP_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29599"}
TORCHRUN_1 = {**TORCHRUN_2, "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1"}

FAKE_CUDA = textwrap.dedent("""
    import os
    n = int(os.environ.get("BOOK_FAKE_GPUS", "0"))
    if n:
        import torch
        torch.cuda.is_available = lambda: True
        torch.cuda.device_count = lambda: n
""")

CASES = [
    # (id, argv, extra environment, fake GPU count, pattern of the error line)
    ("ch01-sizing-negative", ["snippets/ch01/sizing.py", "--batch", "-4"], {}, 0,
     r"^error: --batch must be positive$"),
    ("ch01-sizing-mfu-range", ["snippets/ch01/sizing.py", "--mfu", "1.5"], {}, 0,
     r"^error: --mfu must be in \(0, 1\]"),
    ("ch01-allreduce-more-ranks-than-gpus", ["snippets/ch01/allreduce.py", "--device", "cuda"],
     TORCHRUN_2, 1, r"^error: 2 processes per node but only 1 GPU\(s\) on this node$"),
    ("ch01-allreduce-no-cuda", ["snippets/ch01/allreduce.py", "--device", "cuda"],
     TORCHRUN_2, 0, r"^error: --device cuda was given but this machine has no CUDA GPU$"),
    ("ch02-mfu-unknown-gpu",
     ["snippets/ch02/aicluster/cli.py", "mfu", "--gpu", "v100", "--gpus", "8", "--tokens-per-s", "64000"],
     {}, 0, r"^error: .*v100"),
    ("ch02-mfu-negative-size",
     ["snippets/ch02/aicluster/cli.py", "flops", "--model", "llama2-7b", "--seq-len", "-4096"],
     {}, 0, r"^error: .*-4096"),
    ("ch02-days-negative-gpus",
     ["snippets/ch02/aicluster/cli.py", "days", "--model", "llama2-70b", "--gpus", "-8", "--tokens", "2e12"],
     {}, 0, r"^error: .*-8"),
    ("ch02-matmul-too-big", ["snippets/ch02/matmul_bench.py", "--sizes", "1000000"], {}, 0,
     r"^error: the 1000000x1000000x1000000 product needs [0-9.]+ GiB"),
    ("ch02-matmul-negative", ["snippets/ch02/matmul_bench.py", "--sizes", "-5"], {}, 0,
     r"^error: --sizes must be positive"),
    ("ch02-collectives-more-ranks-than-gpus",
     ["snippets/ch02/collective_bench.py", "--device", "cuda"], TORCHRUN_2, 1,
     r"^error: asked for 2 processes per node but this node has 1 GPU\(s\)$"),
    ("ch02-collectives-message-too-big",
     ["snippets/ch02/collective_bench.py", "--device", "cpu", "--max-size", "1TiB"], TORCHRUN_1, 0,
     r"^error: a 1 TiB message needs [0-9.]+ GiB per rank"),
    ("ch02-collectives-bad-size",
     ["snippets/ch02/collective_bench.py", "--device", "cpu", "--max-size", "4XB"], TORCHRUN_1, 0,
     r"^error: a size must look like"),
    ("ch02-collectives-without-torchrun", ["snippets/ch02/collective_bench.py"], {}, 0,
     r"^error: launch this script with torchrun"),
    ("ch03-ddp-more-processes-than-gpus", ["snippets/ch03/train_ddp.py", "--device", "cuda"],
     TORCHRUN_2, 1, r"^error: 2 processes per node but only 1 GPU\(s\) on this node$"),
    ("ch03-ddp-batch-not-divisible",
     ["snippets/ch03/train_ddp.py", "--global-batch", "10", "--micro-batch", "4"], TORCHRUN_2, 0,
     r"^error: --global-batch 10 is not divisible by world size 2 x --micro-batch 4$"),
    ("ch03-ddp-checkpoint-missing", ["snippets/ch03/train_ddp.py", "--resume-from", "runs/no/such"],
     {}, 0, r"^error: --resume-from runs/no/such does not exist$"),
    ("ch04-fsdp-more-processes-than-gpus", ["snippets/ch04/train_fsdp.py", "--device", "cuda"],
     TORCHRUN_2, 1, r"^error: 2 processes per node but only 1 GPU\(s\) on this node$"),
    ("ch04-fsdp-batch-not-divisible",
     ["snippets/ch04/train_fsdp.py", "--global-batch", "10", "--micro-batch", "4"], TORCHRUN_2, 0,
     r"^error: --global-batch 10 is not divisible by world size 2 x --micro-batch 4$"),
    ("ch04-fsdp-checkpoint-missing", ["snippets/ch04/train_fsdp.py", "--resume-from", "runs/no/such"],
     TORCHRUN_1, 0, r"^error: --resume-from runs/no/such does not exist$"),
    ("ch04-fsdp-hsdp-not-dividing", ["snippets/ch04/train_fsdp.py", "--hsdp", "3"], TORCHRUN_2, 0,
     r"^error: --hsdp 3 does not divide the world size 2$"),
    ("ch04-meta-shard-heads-not-dividing",
     ["snippets/ch04/meta_shard.py", "--d-model", "5120", "--n-head", "48"], TORCHRUN_2, 0,
     r"^error: d_model 5120 is not divisible by n_head 48$"),
    ("ch04-meta-shard-without-torchrun", ["snippets/ch04/meta_shard.py"], {}, 0,
     r"^error: launch this script with torchrun"),
]


@pytest.fixture(scope="module")
def fake_cuda_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("fakecuda")
    (d / "sitecustomize.py").write_text(FAKE_CUDA)
    return d


def _run(argv, env, gpus, fake_cuda_dir, cwd=REPO):
    full_env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_2}
    full_env.update(env)
    full_env["PYTHONPATH"] = str(fake_cuda_dir)
    full_env["BOOK_FAKE_GPUS"] = str(gpus)
    return subprocess.run([sys.executable, *argv], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("argv, env, gpus, pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_nonzero(argv, env, gpus, pattern, fake_cuda_dir):
    _assert_one_line_error(_run(argv, env, gpus, fake_cuda_dir), pattern)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, fake_cuda_dir):
    """A chapter 3 checkpoint and a chapter 4 DCP checkpoint of the tiny preset."""
    d = tmp_path_factory.mktemp("ckpt")
    ddp = _run([str(REPO / "snippets/ch03/train_ddp.py"), "--steps", "2", "--ckpt-dir", "ddp",
                "--save-every", "2"], {}, 0, fake_cuda_dir, cwd=d)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    fsdp = _run(["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1",
                 str(REPO / "snippets/ch04/train_fsdp.py"), "--steps", "2", "--ckpt-dir", "dcp",
                 "--save-every", "2"], {}, 0, fake_cuda_dir, cwd=d)
    assert fsdp.returncode == 0, fsdp.stderr[-2000:]
    return d


@pytest.mark.slow
@pytest.mark.parametrize("argv, env, pattern", [
    (["snippets/ch03/train_ddp.py", "--resume-from", "ddp", "--n-layer", "3"], {},
     r"^error: ddp/step_000002\.pt holds a different model: n_layer 2 \(checkpoint\) vs 3 \(this run\)$"),
    (["snippets/ch04/train_fsdp.py", "--resume-from", "dcp", "--d-model", "64"], TORCHRUN_1,
     r"^error: dcp/step-000002 holds a different model: d_model 128 \(checkpoint\) vs 64 \(this run\)$"),
], ids=["ch03-ddp", "ch04-fsdp"])
def test_checkpoint_of_another_model(argv, env, pattern, checkpoints, fake_cuda_dir):
    script, *rest = argv
    proc = _run([str(REPO / script), *rest], env, 0, fake_cuda_dir, cwd=checkpoints)
    _assert_one_line_error(proc, pattern)


def _assert_one_line_error(proc, pattern):
    err = proc.stderr.strip()
    assert proc.returncode != 0, f"exit 0 for bad input; stdout: {proc.stdout[-500:]}"
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines, "no message on stderr"
    assert re.search(pattern, lines[-1]), f"last line {lines[-1]!r} does not match {pattern!r}"
    assert sum("error" in ln.lower() for ln in lines) == 1, f"more than one error line:\n{err}"
