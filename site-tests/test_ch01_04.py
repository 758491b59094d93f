"""Bad input to the scripts of chapters 1 to 4 not covered by test_bad_input.py: one line, no traceback."""

import pytest

from test_bad_input import TORCHRUN_1, TORCHRUN_2, _assert_one_line_error, _run, fake_cuda_dir  # noqa: F401

CASES = [
    ("ch01-sizing-unknown-gpu", ["snippets/ch01/sizing.py", "--gpu", "h100-pcie"], {}, 0,
     r"^error: unknown GPU 'h100-pcie'"),
    ("ch01-sizing-context", ["snippets/ch01/sizing.py", "--context", "0"], {}, 0,
     r"^error: --context must be positive$"),
    ("ch02-traffic-layout", ["snippets/ch02/aicluster/cli.py", "traffic", "--gpus", "1000"], {}, 0,
     r"^error: --gpus 1000 must be a multiple of --tp x --pp"),
    ("ch02-nccl-env-no-cuda", ["snippets/ch02/nccl_env.py", "--device", "cuda"], {}, 0,
     r"^error: --device cuda was given but this machine has no CUDA GPU$"),
    ("ch02-nccl-env-more-than-gpus", ["snippets/ch02/nccl_env.py", "--device", "cuda", "--nproc", "2"],
     {}, 1, r"^error: --nproc 2 but this machine has 1 GPU\(s\)$"),
    ("ch03-ddp-math-mfu", ["snippets/ch03/ddp_math.py", "--mfu", "2"], {}, 0,
     r"^error: --mfu must be in \(0, 1\]"),
    ("ch03-profile-no-torchrun", ["snippets/ch03/profile_ddp.py"], {}, 0,
     r"^error: launch this script with torchrun"),
    ("ch03-profile-more-ranks-than-gpus", ["snippets/ch03/profile_ddp.py", "--device", "cuda"],
     TORCHRUN_2, 1, r"^error: 2 processes per node but only 1 GPU\(s\) on this node$"),
    ("ch03-comm-hooks-steps", ["snippets/ch03/comm_hooks.py", "--steps", "1"], TORCHRUN_1, 0,
     r"^error: --steps \(at least 3\)"),
    ("ch03-repeat-runs-names", ["snippets/ch03/repeat_runs.py", "--run", "a", "true", "--run", "a",
                                "true"], {}, 0, r"^error: each --run needs its own name$"),
    ("ch04-step-math-ranks", ["snippets/ch04/step_math.py", "--ranks", "0"], {}, 0,
     r"^error: --ranks, --micro-batch, the bandwidths, the peak and the counts must be positive$"),
    ("ch04-export-no-checkpoint", ["snippets/ch04/export_full.py", "--ckpt", "runs/nowhere",
                                   "--out", "runs/nowhere.pt"], {}, 0,
     r"^error: runs/nowhere is not a complete DCP checkpoint"),
    ("ch04-lora-rank", ["snippets/ch04/finetune_lora.py", "--rank-r", "0"], TORCHRUN_1, 0,
     r"^error: --rank-r, --steps, --micro-batch and --max-norm must be positive$"),
]


@pytest.mark.parametrize("argv, env, gpus, pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_nonzero(argv, env, gpus, pattern, fake_cuda_dir):  # noqa: F811
    _assert_one_line_error(_run(argv, env, gpus, fake_cuda_dir), pattern)
