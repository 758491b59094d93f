"""Turn a sharded DCP checkpoint into one file of full bf16 weights, and serve a batch from it.

Training writes sharded checkpoints; inference wants one file of plain tensors. DCP's
own converter (torch.distributed.checkpoint.format_utils.dcp_to_torch_save) reads every
shard into full tensors in one process, with no process group. The script keeps the
model's weights, casts them to bf16, saves them, and loads them into a plain GPT built
from the checkpoint's meta.json, as an inference job would.

    torchrun --nproc-per-node 2 snippets/ch04/train_fsdp.py --ckpt-dir runs/ch04/dcp --save-every 10
    python snippets/ch04/export_full.py --ckpt runs/ch04/dcp/step-000050 --out runs/ch04/export/model.pt
"""  # noqa: E501

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ch03"))
from data import BigramTokens  # noqa: E402
from gpt import GPT, GPTConfig  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", required=True, help="a DCP step folder with its meta.json")
    ap.add_argument("--out", required=True, help="the weights file to write")
    args = ap.parse_args()
    meta_path = Path(args.ckpt) / "meta.json"
    if not meta_path.is_file():
        sys.exit(f"error: {args.ckpt} is not a complete DCP checkpoint (no meta.json)")
    meta = json.loads(meta_path.read_text())

    with tempfile.TemporaryDirectory() as tmp:
        full_path = Path(tmp) / "full.pt"
        dcp_to_torch_save(args.ckpt, full_path)  # every shard, gathered into full tensors
        full = torch.load(full_path, weights_only=True)
        full_mib = full_path.stat().st_size / 2**20
        print(f"{args.ckpt}: saved by {meta['world_size']} rank(s) at step {meta['step']}; "
              f"model and AdamW state together {full_mib:.1f} MiB")
    weights = {k: v.to(torch.bfloat16) for k, v in full["model"].items()}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(weights, out)
    print(f"{out}: {len(weights)} tensors in bf16, {out.stat().st_size / 2**20:.1f} MiB")

    model = GPT(GPTConfig(**meta["model"])).to(torch.bfloat16).eval()
    # strict: every key of the model must be in the file and the file must hold no others.
    model.load_state_dict(torch.load(out, weights_only=True), strict=True)
    data = BigramTokens(model.cfg.vocab_size, model.cfg.seq_len, num_samples=8, seed=0)
    x, y = (torch.stack(t) for t in zip(*[data[i] for i in range(8)], strict=True))
    with torch.no_grad():
        loss = model(x, y).item()
    print(f"plain GPT loaded the file; loss on 8 sequences {loss:.4f}")
    print(json.dumps({"step": meta["step"], "tensors": len(weights),
                      "full_mib": full_mib,
                      "weights_mib": out.stat().st_size / 2**20, "loss": loss}))


if __name__ == "__main__":
    main()
