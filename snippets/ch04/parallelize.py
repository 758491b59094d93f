"""FSDP2 and what composes with it, applied in place to chapter 3's unchanged GPT.

Each technique is one function, applied in a fixed order: activation
checkpointing, then torch.compile, then fully_shard (the torchtitan pattern).
train_fsdp.py switches them on with flags:

    torchrun --nproc-per-node 2 snippets/ch04/train_fsdp.py --ac
    torchrun --nproc-per-node 4 snippets/ch04/train_fsdp.py --hsdp 2
    torchrun --nproc-per-node 2 snippets/ch04/train_fsdp.py --device cuda --dtype bf16 --compile
"""

import torch
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard


# --8<-- [start:hsdp-mesh]
def make_mesh(device_type, world, replicate=None):
    if replicate:  # HSDP: shard within groups of world/R ranks, all-reduce across the R groups
        return init_device_mesh(device_type, (replicate, world // replicate),
                                mesh_dim_names=("replicate", "shard"))
    return init_device_mesh(device_type, (world,), mesh_dim_names=("shard",))
# --8<-- [end:hsdp-mesh]


# --8<-- [start:apply-ac]
def apply_ac(model):
    # Each block keeps only its input and recomputes the rest in backward. Wrapping
    # before fully_shard puts FSDP's hooks outside the wrapper, so the recomputation
    # reuses the parameters that were all-gathered for the block's backward.
    for i, block in enumerate(model.blocks):
        model.blocks[i] = checkpoint_wrapper(block)
# --8<-- [end:apply-ac]


# --8<-- [start:apply-compile]
def apply_compile(model):
    # Per block and before sharding: FSDP's all-gather and reduce-scatter hooks stay
    # outside the compiled graphs, and the blocks, all of one shape, share one graph.
    for i, block in enumerate(model.blocks):
        model.blocks[i] = torch.compile(block, fullgraph=True)
# --8<-- [end:apply-compile]


# --8<-- [start:apply-fsdp]
def apply_fsdp(model, mesh, bf16=False, reshard_after_forward=True, offload=False, prefetch=1):
    kwargs = {"mesh": mesh}
    if bf16:
        # --8<-- [start:mixed-precision]
        # All-gather and compute in bf16, half the bytes of an fp32 all-gather; reduce-scatter
        # gradients in fp32. The sharded parameters that AdamW updates stay fp32.
        kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16,
                                                   reduce_dtype=torch.float32)
        # --8<-- [end:mixed-precision]
    if offload:  # shards, gradients and AdamW state live in pinned CPU memory; the step runs there
        kwargs["offload_policy"] = CPUOffloadPolicy()
    blocks = list(model.blocks)
    for i, block in enumerate(blocks):
        # One group per block: one all-gather and one reduce-scatter each, so block i+1's
        # gather runs while block i computes and only a block or two is ever unsharded.
        # Backward starts with the last block, so resharding it after forward would only
        # force a second all-gather at once; keeping every block (False) saves all the
        # backward all-gathers for the memory of a whole unsharded bf16 model.
        last = i == len(blocks) - 1
        fully_shard(block, reshard_after_forward=reshard_after_forward and not last, **kwargs)
    # The root group takes what no block owns: the embeddings (tied to the head) and the
    # final norm. Left to its default, FSDP keeps the root gathered from forward into backward.
    fully_shard(model, **kwargs)
    if prefetch:
        # By default FSDP issues block i+1's all-gather when the CPU reaches block i+1.
        # Naming it here issues it before block i's kernels are queued, so it overlaps
        # block i's compute even when the CPU is barely ahead of the GPU. Backward
        # gathers the blocks before it in the same way.
        for i, block in enumerate(blocks):
            if i + 1 < len(blocks):
                block.set_modules_to_forward_prefetch(blocks[i + 1:i + 1 + prefetch])
            if i > 0:
                block.set_modules_to_backward_prefetch(blocks[max(0, i - prefetch):i][::-1])
# --8<-- [end:apply-fsdp]
