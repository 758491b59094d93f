"""train_fsdp.py with the one-line FSDP2 wrap: a single fully_shard on the whole model.

Everything else (model, data, flags, mixed precision, compiled blocks, metrics) is
train_fsdp.py's; only apply_fsdp is swapped for the version below, so the run shows
what per-block groups and prefetching buy:

    torchrun --standalone --nproc-per-node 2 snippets/ch04/naive_wrap.py
    torchrun --standalone --nproc-per-node 2 snippets/ch04/naive_wrap.py --device cuda --preset 1b --compile
"""  # noqa: E501

import os
import sys

import torch
import train_fsdp
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard


# --8<-- [start:naive]
def apply_fsdp_naive(model, mesh, bf16=False, reshard_after_forward=True, offload=False,
                     prefetch=1):
    # One group holds every parameter: one all-gather of the whole model before forward,
    # nothing to overlap it with, and one reduce-scatter after the whole backward.
    kwargs = {"mesh": mesh}
    if bf16:
        kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16,
                                                   reduce_dtype=torch.float32)
    fully_shard(model, **kwargs)
# --8<-- [end:naive]


if __name__ == "__main__":
    if "--offload" in sys.argv or "--no-reshard-after-forward" in sys.argv:
        sys.exit("error: the one-line wrap takes no --offload or --no-reshard-after-forward")
    train_fsdp.apply_fsdp = apply_fsdp_naive
    if os.environ.get("RANK", "0") == "0":
        print("wrap: one fully_shard(model) for the whole model", flush=True)
    train_fsdp.main()
