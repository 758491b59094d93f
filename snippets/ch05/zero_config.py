"""Load a DeepSpeed JSON config and check it with DeepSpeed itself, before any process starts.

DeepSpeed validates most sections strictly (a misspelt key inside `zero_optimization`
is refused), but it ignores a top-level key it does not know, so a misplaced or
misspelt section changes nothing and says nothing. This loader runs DeepSpeed's own
parser over the file, records which top-level keys the parser read, and refuses the
rest. Each problem is one line on stderr and exit status 1.

    python snippets/ch05/zero_config.py snippets/ch05/zero*.json
"""

import argparse
import json
import logging
import os
import sys
import time

import pydantic
from deepspeed.accelerator import get_accelerator
from deepspeed.runtime.config import DeepSpeedConfig
from deepspeed.runtime.tensor_parallel.init_utils import load_ds_config


def fail(message):
    """One line on stderr, from one rank only: every rank sees the same bad input."""
    if os.environ.get("RANK", "0") == "0":
        print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


# --8<-- [start:read-keys]
class ReadKeys(dict):
    """A dict that remembers which keys were looked up; copies share the record."""

    def __init__(self, *args):
        super().__init__(*args)
        self.read = set()

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self.read.add(key)
        return super().__contains__(key)
# --8<-- [end:read-keys]


def cpu_adam_ready(path):
    """Build (or find) DeepSpeed's CPU Adam op, which optimizer offload runs on."""
    start = time.perf_counter()
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    try:
        get_accelerator().create_op_builder("CPUAdamBuilder").load(verbose=False)
    except Exception as exc:  # a missing compiler, ninja or header, each its own exception
        why = str(exc).strip().splitlines()[0].split(": ")[0]
        fail(f"{path}: offload_optimizer needs DeepSpeed's CPU Adam op, which did not build "
             f"here ({why}); building it takes a C++ compiler and ninja")
    return time.perf_counter() - start


# --8<-- [start:load]
def load_config(path, micro_batch=1, accum=1):
    """The config as a dict, after DeepSpeed's own parser has accepted every key in it."""
    if not os.path.isfile(path):
        fail(f"{path} does not exist")
    try:
        cfg = load_ds_config(path)  # DeepSpeed's loader: hjson, duplicate keys refused
    except ValueError as exc:
        fail(f"{path}: {str(exc).splitlines()[0]}")
    if "optimizer" not in cfg:
        fail(f"{path}: no optimizer section; this trainer builds AdamW from the config")
    # DeepSpeed checks batch sizes against the world it sees; with no process group yet
    # that is a world of one, so the check runs on one rank's share of the batch.
    probe = ReadKeys({**cfg, "train_batch_size": micro_batch * accum,
                      "train_micro_batch_size_per_gpu": micro_batch,
                      "gradient_accumulation_steps": accum})
    try:
        DeepSpeedConfig(probe)
    except pydantic.ValidationError as exc:  # a sub-section refused a key or a value
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        fail(f"{path}: {exc.title} {where}={err.get('input')!r}: {err['msg']}")
    except (AssertionError, ValueError, KeyError, TypeError) as exc:
        fail(f"{path}: {str(exc).strip().splitlines()[0] or type(exc).__name__}")
    unread = sorted(set(cfg) - probe.read)
    if unread:
        fail(f"{path}: DeepSpeed reads no top-level key {', '.join(map(repr, unread))}")
    zero = cfg.get("zero_optimization", {})
    offload = zero.get("offload_optimizer", {}).get("device", "none")
    if offload != "none" and not cfg["optimizer"].get("params", {}).get("torch_adam"):
        seconds = cpu_adam_ready(path)
        if os.environ.get("RANK", "0") == "0":
            print(f"CPU Adam op ready in {seconds:.1f} s", flush=True)
        cfg_timings[path] = seconds
    return cfg


cfg_timings = {}  # seconds each offload config waited for the CPU Adam op
# --8<-- [end:load]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="+")
    args = ap.parse_args()
    for path in args.configs:
        cfg = load_config(path)
        zero = cfg.get("zero_optimization", {})
        extras = sorted(k for k in zero if k != "stage")
        print(f"{path}: ZeRO stage {zero.get('stage', 0)}, optimizer {cfg['optimizer']['type']}"
              f"{'; ' + ', '.join(extras) if extras else ''}")
    print(json.dumps({"configs": len(args.configs),
                      "cpu_adam_s": round(max(cfg_timings.values(), default=0.0), 1)}))


if __name__ == "__main__":
    main()
