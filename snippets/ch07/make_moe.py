"""Build a Mixtral-shaped mixture-of-experts model with random weights, as a Hugging Face folder.

    python snippets/ch07/make_moe.py --tokenizer runs/ch06/model --out runs/ch07/moe
    python snippets/ch07/make_moe.py --preset gpu --device cuda --tokenizer runs/ch06/model-gpu \
        --out runs/ch07/moe-gpu

The tokenizer is copied from one of chapter 6's models, so vLLM and SGLang load the
folder like any Mixtral. Random weights route tokens as a fresh router does: the
imbalance measured on it is a baseline, not what a trained model shows.
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

# --8<-- [start:presets]
PRESETS = {  # layers, hidden, heads, kv heads, expert MLP width, experts, experts per token
    "tiny": dict(n_layer=2, d_model=256, n_head=4, n_kv_head=2, d_expert=512,
                 experts=8, top_k=2, ctx=1024),
    "gpu": dict(n_layer=12, d_model=2048, n_head=32, n_kv_head=8, d_expert=4096,
                experts=8, top_k=2, ctx=4096),
}
# --8<-- [end:presets]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "chat_template.jinja", "generation_config.json")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    ap.add_argument("--experts", type=int, help="override the preset's number of experts")
    ap.add_argument("--top-k", type=int, help="override the preset's experts per token")
    ap.add_argument("--tokenizer", default="runs/ch06/model", help="a chapter 6 model folder")
    ap.add_argument("--out", default="runs/ch07/moe")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    p = dict(PRESETS[args.preset])
    p["experts"] = args.experts or p["experts"]
    p["top_k"] = args.top_k or p["top_k"]
    if not 1 <= p["top_k"] <= p["experts"]:
        sys.exit(f"error: --top-k {p['top_k']} must lie between 1 and {p['experts']} experts")
    tok_dir = Path(args.tokenizer)
    if not (tok_dir / "tokenizer.json").exists():
        sys.exit(f"error: {tok_dir} holds no tokenizer.json; train chapter 6's model first")

    import torch
    from transformers import MixtralConfig, MixtralForCausalLM
    from transformers.utils import logging

    logging.disable_progress_bar()  # keep the output to the lines that matter

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda was given but this machine has no CUDA GPU")
    vocab = json.loads((tok_dir / "config.json").read_text())["vocab_size"]
    config = MixtralConfig(
        vocab_size=vocab, hidden_size=p["d_model"], intermediate_size=p["d_expert"],
        num_hidden_layers=p["n_layer"], num_attention_heads=p["n_head"],
        num_key_value_heads=p["n_kv_head"], head_dim=p["d_model"] // p["n_head"],
        num_local_experts=p["experts"], num_experts_per_tok=p["top_k"],
        max_position_embeddings=p["ctx"], rope_theta=10000.0, tie_word_embeddings=False,
        output_router_logits=False, torch_dtype="bfloat16",
    )
    torch.manual_seed(args.seed)
    start = time.time()
    with torch.device(args.device):
        model = MixtralForCausalLM(config).to(torch.bfloat16)
    out = Path(args.out)
    model.save_pretrained(out)
    for name in TOKENIZER_FILES:
        if (tok_dir / name).exists():
            shutil.copy(tok_dir / name, out / name)
    total = sum(t.numel() for t in model.parameters())
    expert = 3 * p["d_model"] * p["d_expert"] * p["n_layer"]  # one expert's weights, all layers
    active = total - (p["experts"] - p["top_k"]) * expert
    print(f"{out}: Mixtral-shaped, {p['n_layer']} layers, {p['experts']} experts "
          f"(top-{p['top_k']}), {total / 1e6:.1f}M parameters, {active / 1e6:.1f}M active "
          f"per token, written in {time.time() - start:.1f} s")
    print(json.dumps({"params": total, "active_params": active, "experts": p["experts"],
                      "top_k": p["top_k"], "layers": p["n_layer"], "hidden": p["d_model"]}))


if __name__ == "__main__":
    main()
