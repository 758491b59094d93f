"""Turn a DeepSpeed ZeRO checkpoint into one fp32 state dict for the plain model.

Gathers the fp32 master weights from every rank's shard with DeepSpeed's zero_to_fp32,
loads them into chapter 3's GPT without DeepSpeed in the loop, and checks the loss on
the batch the trainer evaluated when it saved. Writes a plain PyTorch state dict.

    python snippets/ch05/export_fp32.py runs/ch05/ckpt-3 --out runs/ch05/gpt-fp32.pt
"""

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # zero_to_fp32 draws progress bars otherwise
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ch03"))
from data import BigramTokens  # noqa: E402
from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint  # noqa: E402
from gpt import GPT, GPTConfig  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ckpt_dir", help="a train_zero.py --ckpt-dir folder")
    ap.add_argument("--out", default="runs/ch05/gpt-fp32.pt")
    ap.add_argument("--tol", type=float, default=1e-4, help="largest loss difference accepted")
    args = ap.parse_args()
    latest = Path(args.ckpt_dir) / "latest"
    if not latest.is_file():
        sys.exit(f"error: {args.ckpt_dir} holds no DeepSpeed checkpoint (no `latest` file)")
    tag = latest.read_text().strip()
    meta = json.loads((Path(args.ckpt_dir) / tag / "trainer.json").read_text())

    # --8<-- [start:export]
    state = get_fp32_state_dict_from_zero_checkpoint(args.ckpt_dir, tag)
    model = GPT(GPTConfig(**meta["config"]))  # plain PyTorch: no engine, no process group
    model.load_state_dict(state)  # strict: every key present, no key left over
    # --8<-- [end:export]
    data = BigramTokens(model.cfg.vocab_size, model.cfg.seq_len, num_samples=512, seed=0)
    first = [data[i] for i in range(meta["fixed_batch"]["size"])]  # what the trainer evaluated
    x, y = (torch.stack([s[k] for s in first]) for k in (0, 1))
    with torch.no_grad():
        loss = model(x, y).item()
    saved = meta["fixed_batch"]["loss"]
    n = sum(t.numel() for t in state.values()) - model.tok_emb.weight.numel()  # tied head
    print(f"{args.ckpt_dir}/{tag}: {len(state)} tensors, {n / 1e6:.1f}M parameters in fp32, "
          f"saved from {meta['world_size']} rank(s)")
    print(f"loss on the fixed batch: {loss:.6f} exported, {saved:.6f} in the DeepSpeed run")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out)
    print(f"wrote {args.out}")
    diff = abs(loss - saved)
    print(json.dumps({"tensors": len(state), "loss": loss, "saved_loss": saved,
                      "abs_diff": diff, "match": diff <= args.tol}))
    sys.exit(0 if diff <= args.tol else 1)


if __name__ == "__main__":
    main()
