"""Sharded checkpoints of an FSDP2 model and its optimizer with torch.distributed.checkpoint (DCP).

Each rank writes only its own shards, in parallel; DCP's metadata file records
which piece of which tensor every file holds, so a run with another number of
ranks can load the checkpoint and DCP reshards it on the way in. train_fsdp.py
calls save() and load(). A checksum of the full state shows that nothing changed;
it gathers everything onto rank 0, which is fine at this chapter's sizes:

    torchrun --nproc-per-node 2 snippets/ch04/train_fsdp.py --ckpt-dir runs/ch04/dcp --save-every 10
    torchrun --nproc-per-node 1 snippets/ch04/train_fsdp.py --resume-from runs/ch04/dcp/step-000010
    torchrun --nproc-per-node 4 snippets/ch04/train_fsdp.py --resume-from runs/ch04/dcp/step-000010
"""

import hashlib
import json
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_state_dict,
    set_state_dict,
)


def step_dir(root, step):
    return Path(root) / f"step-{step:06d}"


def step_of(path):
    return json.loads((Path(path) / "meta.json").read_text())["step"]


def find(source, model_cfg):
    """The checkpoint in `source` (a step folder, or the newest in a folder of them).

    Returns (path or None, None) or (None, why it cannot be used).
    """
    source = Path(source)
    # meta.json is written last, so a folder without it holds an interrupted save.
    if (source / "meta.json").is_file():
        path = source
    else:
        done = sorted(p for p in source.glob("step-*") if (p / "meta.json").is_file())
        if not done:
            return None, None
        path = done[-1]  # zero-padded step numbers sort in order
    saved = json.loads((path / "meta.json").read_text())["model"]
    if saved != model_cfg:
        diff = ", ".join(f"{k} {saved.get(k)} (checkpoint) vs {v} (this run)"
                         for k, v in model_cfg.items() if saved.get(k) != v)
        return None, f"{path} holds a different model: {diff}"
    return path, None


def checksum(model, opt):
    """sha256 of the full, unsharded model and optimizer state: the same on any world size."""
    # A collective: every rank takes part, and with cpu_offload only rank 0 gets the tensors.
    full = StateDictOptions(full_state_dict=True, cpu_offload=True)
    msd, osd = get_state_dict(model, opt, options=full)
    h = hashlib.sha256()
    tensors = sorted(msd.items()) + sorted(
        (f"{name}.{key}", t) for name, s in osd.get("state", {}).items() for key, t in s.items())
    for name, t in tensors:
        h.update(name.encode() + t.detach().reshape(-1).view(torch.uint8).numpy().tobytes())
    digest = [h.hexdigest()[:16]]
    dist.broadcast_object_list(digest, src=0)
    return digest[0]


# --8<-- [start:dcp-save]
def save(model, opt, root, step, meta):
    path = step_dir(root, step)
    # Sharded state dicts: DTensors that point at this rank's shards; nothing is gathered.
    model_sd, optim_sd = get_state_dict(model, opt)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=path)
    digest = checksum(model, opt)
    if dist.get_rank() == 0:  # written last: marks the checkpoint complete
        meta = {**meta, "step": step, "world_size": dist.get_world_size(), "checksum": digest}
        (path / "meta.json").write_text(json.dumps(meta) + "\n")
    dist.barrier()
    return digest
# --8<-- [end:dcp-save]


# --8<-- [start:dcp-load]
def load(model, opt, path):
    # State dicts laid out for this run's mesh; DCP fills them in place, each rank
    # reading the saved pieces that overlap its own shards.
    model_sd, optim_sd = get_state_dict(model, opt)
    state = {"model": model_sd, "optim": optim_sd}
    dcp.load(state, checkpoint_id=path)
    set_state_dict(model, opt, model_state_dict=state["model"], optim_state_dict=state["optim"])
    meta = json.loads((Path(path) / "meta.json").read_text())
    return meta["step"], checksum(model, opt), meta
# --8<-- [end:dcp-load]
