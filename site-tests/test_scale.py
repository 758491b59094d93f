"""The 4- and 8-GPU commands of chapters 2 to 5, run on CPU with gloo at the same process counts.

Each case takes a registered gpu:4 or gpu:8 block's command as the page shows it and
changes only what a CPU needs: `--compile` comes out, and `--device cpu`, the tiny
model's sizes, two steps and small messages are appended, so that argparse still reads
every flag of the GPU command (a misspelt flag fails here) and the batch, mesh and
message-size checks see the GPU run's process count.

Dozens of processes that each import torch would take minutes on two cores, so the
ranks are started the way torchrun starts them, with its environment (RANK, WORLD_SIZE,
MASTER_PORT, ...), but as forks of one interpreter that has imported torch once: this
file, run as a script. torchrun's own flags are read by torchrun's own parser.

A command that differs from a command run here, or from a two-GPU block, only in its
process count and global batch (the 4-GPU training runs, the ZeRO stages on eight, the
profile on eight) is held against that twin instead: the same flags otherwise, and a
batch its ranks divide.

Also here: bad input for the all-to-all benchmark, which only these blocks run on GPUs.
"""

import json
import os
import runpy
import shlex
import signal
import socket
import sys
import time
import traceback
from pathlib import Path

import pytest

from book import registry, runner
from test_bad_input import TORCHRUN_2, _assert_one_line_error, _run, fake_cuda_dir  # noqa: F401

# What each script gets on CPU, appended after the GPU command's own flags (the last wins).
SMALL_MESSAGES = ["--device", "cpu", "--max-size", "8KiB", "--warmup", "1", "--iters", "2"]
TINY_TRAINING = ["--device", "cpu", "--preset", "tiny", "--steps", "2", "--warmup-steps", "1"]
ON_CPU = {
    "snippets/ch02/collective_bench.py": SMALL_MESSAGES,
    "snippets/ch02/alltoall_bench.py": SMALL_MESSAGES,
    "snippets/ch03/train_ddp.py": [*TINY_TRAINING, "--log-every", "1"],
    "snippets/ch04/train_fsdp.py": TINY_TRAINING,
    "snippets/ch04/naive_wrap.py": TINY_TRAINING,
}
# A size the command overrides (the 12B model's) is set back to the tiny preset's.
TINY_SIZES = {"--d-model": "128", "--n-head": "2", "--n-layer": "2", "--seq-len": "128",
              "--vocab-size": "512"}

CASES = [  # (block, what the summary line must hold besides the world size)
    ("ch02/bench.sh:collectives-4gpu", {"correct": True}),
    ("ch02/bench.sh:collectives-8gpu", {"correct": True}),
    ("ch02/bench.sh:collectives-alltoall-4gpu", {"correct": True}),
    ("ch02/bench.sh:collectives-alltoall-8gpu", {"correct": True}),
    ("ch03/commands.sh:train-8gpu", {"grad_accum": 4}),
    ("ch04/commands.sh:fsdp-8gpu", {"mesh": [8]}),
    ("ch04/commands.sh:fsdp-8gpu-naive", {"mesh": [8]}),
    ("ch04/commands.sh:hsdp-8gpu", {"mesh": [2, 4]}),
    ("ch04/commands.sh:fsdp-12b-8gpu", {"mesh": [8], "ac": True}),
]
# Training on CPU costs seconds per rank, so a command that differs from a block run above
# (or from a two-GPU block) only in its process count and global batch is
# checked against that twin instead: same flags otherwise, and a batch its ranks divide.
TWINS = {
    "ch03/commands.sh:train-4gpu": "ch03/commands.sh:train-8gpu",
    "ch03/commands.sh:train-1gpu-x3": "ch03/commands.sh:train-1gpu",
    "ch04/commands.sh:fsdp-4gpu": "ch04/commands.sh:fsdp-8gpu",
    "ch04/commands.sh:fsdp-4gpu-naive": "ch04/commands.sh:fsdp-8gpu-naive",
    "ch05/commands.sh:zero1-8gpu": "ch05/commands.sh:zero1-2gpu",
    "ch05/commands.sh:zero2-8gpu": "ch05/commands.sh:zero2-2gpu",
    "ch05/commands.sh:zero3-8gpu": "ch05/commands.sh:zero3-2gpu",
    "ch05/commands.sh:fsdp2-8gpu": "ch04/commands.sh:fsdp-8gpu",
    "ch03/commands.sh:profile-8gpu": "ch03/commands.sh:profile-2gpu",
}
BEGIN, END = "=== begin ", "=== end "


def on_cpu(command: str) -> list[str]:
    """The CPU form of one torchrun line of a GPU block, as an argument list."""
    argv = shlex.split(command)
    assert argv[0] == "torchrun", command
    script = next(a for a in argv if a.endswith(".py"))
    argv = [a for a in argv if a != "--compile"] + ON_CPU[script]
    return argv + [x for flag, value in TINY_SIZES.items() if flag in argv for x in (flag, value)]


# --- the launcher: this file run as a script -----------------------------------------------


def _ranks(argv: list[str], timeout: float) -> int:
    """torchrun's job for one command: start its ranks, wait, and stop them all on a failure."""
    from torch.distributed.run import get_args_parser

    args = get_args_parser().parse_args(argv[1:])
    n = int(args.nproc_per_node)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sys.stdout.flush()
    pids = []
    for rank in range(n):
        pid = os.fork()
        if pid == 0:
            os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(n),
                              LOCAL_WORLD_SIZE=str(n), GROUP_RANK="0", GROUP_WORLD_SIZE="1",
                              ROLE_RANK=str(rank), ROLE_WORLD_SIZE=str(n), MASTER_ADDR="127.0.0.1",
                              MASTER_PORT=str(port), TORCHELASTIC_RESTART_COUNT="0")
            sys.argv = [args.training_script, *args.training_script_args]
            sys.path[0] = str(Path(args.training_script).parent)
            code = 0
            try:
                runpy.run_path(args.training_script, run_name="__main__")
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (print(exc.code, file=sys.stderr) or 1)
            except BaseException:
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code or 0)
        pids.append(pid)
    codes, deadline, grace = {}, time.monotonic() + timeout, None
    while len(codes) < n:
        for p in pids:
            if p not in codes:
                done, status = os.waitpid(p, os.WNOHANG)
                if done:
                    codes[p] = os.waitstatus_to_exitcode(status)
        now = time.monotonic()
        if grace is None and any(codes.values()):
            grace = now + 5  # as torchrun does, give the other ranks a moment, then stop them
        if len(codes) < n and (now > deadline or (grace and now > grace)):
            if now > deadline:
                print(f"timed out after {timeout:.0f} s", flush=True)
            for p in pids:
                if p not in codes:
                    os.kill(p, signal.SIGKILL)
                    os.waitpid(p, 0)
                    codes[p] = -signal.SIGKILL
        time.sleep(0.05)
    failed = [c for c in codes.values() if c]
    return next((c for c in failed if c > 0), abs(failed[0])) if failed else 0


def _launch(spec: Path) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"  # what torchrun sets for more than one process
    import threading

    import torch  # noqa: F401  # what every rank imports, once, before any fork
    import torch._dynamo  # noqa: F401  # fully_shard and DDP import it on first use
    import torch.distributed.checkpoint  # noqa: F401
    import torch.distributed.fsdp  # noqa: F401
    import torch.nn.parallel  # noqa: F401

    assert threading.active_count() == 1, "no threads may run when the ranks fork"
    for key, argv in json.loads(spec.read_text()):
        print(f"{BEGIN}{key}: {shlex.join(argv)}", flush=True)
        code = _ranks(argv, timeout=120)
        print(f"{END}{key}: exit {code}", flush=True)


# --- the tests -----------------------------------------------------------------------------


def test_every_4_and_8_gpu_training_block_is_run_here_or_has_a_twin():
    entries = registry.load()[0]
    big = {k for k, e in entries.items() if e.gpus in (4, 8) and not k.startswith("ch06/")}
    assert big <= {key for key, _ in CASES} | set(TWINS)
    assert not big & set(TWINS) & {key for key, _ in CASES}


def _flags(argv: list[str]) -> tuple[int, int | None, dict]:
    """(processes, global batch, every other option but where a trace goes) of a torchrun line."""
    n, batch, rest, i = None, None, {}, 1
    while i < len(argv):
        a = argv[i]
        value = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else None
        if a == "--nproc-per-node":
            n = int(value)
        elif a == "--global-batch":
            batch = int(value)
        elif a != "--trace-out":
            rest[a] = value
        i += 2 if value is not None else 1
    return n, batch, rest


@pytest.mark.parametrize("key, twin", sorted(TWINS.items()), ids=[k.split(":")[1] for k in sorted(TWINS)])
def test_command_matches_its_twin_but_for_processes_and_batch(key, twin):
    entries = registry.load()[0]
    line, other = (shlex.split(runner.block_text(entries[k]).strip()) for k in (key, twin))
    n, batch, rest = _flags(line)
    _, twin_batch, twin_rest = _flags(other)
    assert n == entries[key].gpus
    assert rest == twin_rest, f"{key} and {twin} differ in more than processes and batch"
    if batch is not None:
        micro = int(rest["--micro-batch"])
        assert batch % (n * micro) == 0, f"{key}: --global-batch {batch} over {n} x {micro}"
        assert twin_batch % (entries[twin].gpus * micro) == 0
        if key.startswith("ch05/"):  # the same sequences per GPU as the two-GPU runs
            assert batch // n == twin_batch // entries[twin].gpus


@pytest.fixture(scope="module")
def cpu_runs(tmp_path_factory):
    """Every case's command on CPU, in one launcher process: {key: (exit code, output)}."""
    d = tmp_path_factory.mktemp("scale")
    (d / "snippets").symlink_to(registry.SNIPPETS)
    entries = registry.load()[0]
    commands = []
    for key, _ in CASES:
        lines = [ln for ln in runner.block_text(entries[key]).splitlines() if ln.strip()]
        assert len(lines) == 1, f"{key}: one command per block"
        commands.append([key, on_cpu(lines[0])])
    (d / "commands.json").write_text(json.dumps(commands))
    res, survivors = runner.run_text(f"python {Path(__file__)} commands.json", d, timeout=600)
    assert not survivors, survivors
    runs, key = {}, None
    for line in res.output.splitlines():
        if line.startswith(BEGIN):
            key, out = line[len(BEGIN):].split(": ", 1)[0], []
        elif line.startswith(END) and key:
            runs[key] = (int(line.rsplit(" ", 1)[1]), "\n".join(out))
            key = None
        elif key:
            out.append(line)
    assert runs, res.tail(40)
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("key, want", CASES, ids=[k.split(":")[1] for k, _ in CASES])
def test_gpu_command_runs_on_cpu_at_its_process_count(key, want, cpu_runs):
    entry = registry.load()[0][key]
    assert key in cpu_runs, f"{key} did not run"
    code, output = cpu_runs[key]
    assert code == 0, "\n".join(output.splitlines()[-30:])
    summary = json.loads(next(ln for ln in reversed(output.splitlines()) if ln.startswith("{")))
    assert summary["world_size"] == entry.gpus
    for name, value in want.items():
        assert summary[name] == value, f"{name}: {summary[name]!r}, expected {value!r}"


ALLTOALL = "snippets/ch02/alltoall_bench.py"
RANK_1 = {**TORCHRUN_2, "RANK": "1", "LOCAL_RANK": "1"}


@pytest.mark.parametrize("argv, env, gpus, pattern", [
    ([ALLTOALL], {}, 0, r"^error: launch this script with torchrun"),
    ([ALLTOALL, "--device", "cuda"], TORCHRUN_2, 1,
     r"^error: asked for 2 processes per node but this node has 1 GPU\(s\)$"),
    ([ALLTOALL, "--max-size", "1TiB"], TORCHRUN_2, 0,
     r"^error: a 1 TiB message needs 2048\.00 GiB per rank \(send and receive buffers\)"),
    ([ALLTOALL, "--max-size", "4 parsecs"], TORCHRUN_2, 0, r"^error: a size must look like"),
], ids=["no-torchrun", "more-ranks-than-gpus", "too-big", "bad-size"])
def test_alltoall_bad_input(argv, env, gpus, pattern, fake_cuda_dir):  # noqa: F811
    _assert_one_line_error(_run(argv, env, gpus, fake_cuda_dir), pattern)


def test_alltoall_bad_input_is_said_once(fake_cuda_dir):  # noqa: F811
    """Rank 1 of the same job sees the same bad flags, exits non-zero and prints nothing."""
    quiet = _run([ALLTOALL, "--max-size", "4 parsecs"], RANK_1, 0, fake_cuda_dir)
    assert quiet.returncode != 0 and not quiet.stderr.strip(), quiet.stderr[-1000:]


if __name__ == "__main__":
    _launch(Path(sys.argv[1]))
