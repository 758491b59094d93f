"""Train the book's serving model: a small Llama on the Python standard library's source.

    python snippets/ch06/train_model.py                          # CPU model, runs/ch06/model
    python snippets/ch06/train_model.py --preset draft --tokenizer runs/ch06/model \
        --out runs/ch06/draft                                    # its draft, same tokenizer
    python snippets/ch06/train_model.py --device cuda --preset gpu --out runs/ch06/model-gpu

Writes a Hugging Face folder (LlamaForCausalLM weights in safetensors, a byte-level BPE
tokenizer with a chat template) that vLLM and SGLang load like any Llama. `--steps 0`
writes random weights and `--config-only` none (vLLM's `--load-format dummy` makes them):
enough for throughput runs, meaningless as text.
"""

import argparse
import ast
import json
import math
import random
import sys
import sysconfig
import time
from pathlib import Path

# --8<-- [start:presets]
# head_dim is 64 everywhere: vLLM's CPU attention rejects smaller heads.
PRESETS = {  # layers, hidden, heads, kv heads, MLP width, vocab, context, steps, batch
    "cpu": dict(n_layer=4, d_model=256, n_head=4, n_kv_head=2, d_ff=768, vocab=8192,
                ctx=128, steps=120, batch=16, lr=3e-3, chars=3_000_000, max_pos=1024),
    "draft": dict(n_layer=1, d_model=128, n_head=2, n_kv_head=1, d_ff=384, vocab=8192,
                  ctx=128, steps=120, batch=16, lr=3e-3, chars=3_000_000, max_pos=1024),
    "gpu": dict(n_layer=12, d_model=768, n_head=12, n_kv_head=4, d_ff=3072, vocab=16384,
                ctx=1024, steps=1400, batch=64, lr=1.5e-3, chars=40_000_000, max_pos=4096),
    "gpu-draft": dict(n_layer=2, d_model=512, n_head=8, n_kv_head=4, d_ff=1536, vocab=16384,
                      ctx=1024, steps=1400, batch=64, lr=2e-3, chars=40_000_000, max_pos=4096),
    "gpu-1b": dict(n_layer=16, d_model=2048, n_head=32, n_kv_head=8, d_ff=5632, vocab=16384,
                   ctx=2048, steps=0, batch=16, lr=3e-4, chars=4_000_000, max_pos=16384),
}
SPECIALS = ["<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
# --8<-- [end:presets]


def corpus(max_chars: int) -> tuple[str, list[str]]:
    """The standard library's .py files, and chat samples made from its docstrings."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts)
    random.Random(0).shuffle(files)  # a cut-off corpus still samples every corner
    text, chats, size = [], [], 0
    for p in files:
        try:
            src = p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        text.append(src)
        size += len(src)
        chats.extend(chat_samples(src, p.stem))
        if size >= max_chars:
            break
    return "\n<|endoftext|>\n".join(text), chats


def chat_samples(src: str, module: str) -> list[str]:
    """'What does json.dumps do?' answered by the first line of its docstring."""
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return []
    out = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            doc = ast.get_docstring(node)
            if doc and len(doc.splitlines()[0]) > 10:
                out.append(f"<|user|>What does {module}.{node.name} do?<|end|>\n"
                           f"<|assistant|>{doc.splitlines()[0].strip()}<|end|>\n")
    return out


def train_tokenizer(text: str, vocab: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    chunks = (text[i : i + 1_000_000] for i in range(0, len(text), 1_000_000))
    tok.train_from_iterator(chunks, trainer=trainer)
    return tok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    ap.add_argument("--out", default="runs/ch06/model")
    ap.add_argument("--tokenizer", help="reuse the tokenizer of this model folder (a draft must)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--steps", type=int, help="optimizer steps (default: the preset's)")
    ap.add_argument("--max-seconds", type=float, default=1e9, help="stop training after this long")
    ap.add_argument("--max-chars", type=int, help="characters of stdlib to read (preset's)")
    ap.add_argument("--chat-share", type=float, default=0.1, help="fraction of chat samples")
    ap.add_argument("--config-only", action="store_true", help="write config and tokenizer, "
                    "no weights (serve with --load-format dummy)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for PyTorch: at this "
                    "size more threads mostly wait on each other, worse on a busy machine")
    ap.add_argument("--seed", type=int, default=0)
    for k in ("n_layer", "d_model", "n_head", "n_kv_head", "d_ff", "ctx", "batch"):
        ap.add_argument("--" + k.replace("_", "-"), type=int)
    args = ap.parse_args()
    cfg = dict(PRESETS[args.preset])
    cfg.update({k: v for k in cfg if (v := getattr(args, k, None)) is not None})
    steps = cfg["steps"] if args.steps is None else args.steps
    if cfg["d_model"] != 64 * cfg["n_head"]:
        sys.exit(f"error: --d-model {cfg['d_model']} must be 64 x --n-head ({cfg['n_head']})")
    if cfg["n_head"] % cfg["n_kv_head"]:
        sys.exit(f"error: --n-head {cfg['n_head']} is not a multiple of --n-kv-head")
    if steps < 0 or cfg["batch"] <= 0 or cfg["ctx"] < 16:
        sys.exit("error: --steps must be >= 0, --batch > 0 and --ctx >= 16")
    if args.tokenizer and not (Path(args.tokenizer) / "tokenizer.json").exists():
        sys.exit(f"error: --tokenizer {args.tokenizer} has no tokenizer.json")

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda was given but this machine has no CUDA GPU")
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    t0 = time.time()
    text, chats = corpus(args.max_chars or cfg["chars"])
    if args.tokenizer:
        tok = PreTrainedTokenizerFast.from_pretrained(args.tokenizer)
    else:
        tok = PreTrainedTokenizerFast(tokenizer_object=train_tokenizer(text, cfg["vocab"]),
                                      bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                      pad_token="<|endoftext|>")
        tok.chat_template = CHAT_TEMPLATE
    ids = torch.tensor(tok(text)["input_ids"], dtype=torch.long)
    chat_ids = [torch.tensor(c) for c in tok(chats)["input_ids"]] or [ids[:8]]
    print(f"corpus: {len(text) / 1e6:.1f}M characters -> {len(ids) / 1e6:.2f}M tokens, "
          f"{len(chats)} chat samples, vocab {len(tok)} ({time.time() - t0:.0f} s)", flush=True)

    # --8<-- [start:model]
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=cfg["d_model"], intermediate_size=cfg["d_ff"],
        num_hidden_layers=cfg["n_layer"], num_attention_heads=cfg["n_head"],
        num_key_value_heads=cfg["n_kv_head"], head_dim=64, max_position_embeddings=cfg["max_pos"],
        rope_theta=10000.0, tie_word_embeddings=True, torch_dtype="bfloat16",
        bos_token_id=tok.bos_token_id, eos_token_id=tok.convert_tokens_to_ids("<|end|>"),
        pad_token_id=tok.pad_token_id)
    # --8<-- [end:model]
    out = Path(args.out)
    if args.config_only:  # for vLLM's --load-format dummy: random weights, nothing to write
        config.save_pretrained(out)
        save_tokenizer(tok, config, out)
        print(f"wrote {out}/ (config and tokenizer only)")
        print(json.dumps({"params_m": None, "steps": 0, "vocab": len(tok), "preset": args.preset}))
        return 0
    model = LlamaForCausalLM(config).to(args.device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.1f}M parameters, {cfg['n_layer']} layers, "
          f"d_model {cfg['d_model']}, {steps} steps of {cfg['batch']} x {cfg['ctx']} tokens",
          flush=True)

    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=0.1,
                            betas=(0.9, 0.95), fused=args.device == "cuda")
    amp = torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.device == "cuda")
    gen = torch.Generator().manual_seed(args.seed)
    n_chat = round(cfg["batch"] * args.chat_share)
    warmup, start, done, loss = max(1, steps // 20), time.time(), 0, torch.tensor(float("nan"))
    model.train()
    for step in range(1, steps + 1):
        x = batch(ids, chat_ids, cfg["batch"], n_chat, cfg["ctx"], gen).to(args.device)
        lr = cfg["lr"] * min(step / warmup, 0.5 * (1 + math.cos(math.pi * step / steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        with amp:
            loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        done = step
        if step % max(1, steps // 10) == 0 or step == steps:
            el = time.time() - start
            print(f"step {step:5d}/{steps}  loss {loss.item():.3f}  "
                  f"{step * cfg['batch'] * cfg['ctx'] / el:,.0f} tokens/s", flush=True)
        if time.time() - start > args.max_seconds:
            print(f"stopping at step {step}: --max-seconds {args.max_seconds:.0f} reached")
            break
    train_s = time.time() - start

    model.to(torch.bfloat16).save_pretrained(out, safe_serialization=True)
    save_tokenizer(tok, config, out)
    size = sum(f.stat().st_size for f in out.iterdir()) / 2**20
    print(f"wrote {out}/ ({size:.1f} MiB)")
    print(json.dumps({"params_m": round(n_params / 1e6, 2), "steps": done,
                      "final_loss": round(loss.item(), 3) if done else None,
                      "tokens_per_s": round(done * cfg["batch"] * cfg["ctx"] / max(train_s, 1e-9)),
                      "train_s": round(train_s, 1), "folder_mib": round(size, 1),
                      "vocab": len(tok), "preset": args.preset}))
    return 0


def save_tokenizer(tok, config, out: Path) -> None:
    tok.save_pretrained(out)
    # vLLM stops at every eos id of generation_config.json: <|end|> for chat, and the
    # document separator for plain completions.
    gcfg = {"bos_token_id": tok.bos_token_id, "pad_token_id": tok.pad_token_id,
            "eos_token_id": [config.eos_token_id, tok.eos_token_id]}
    (out / "generation_config.json").write_text(json.dumps(gcfg, indent=2) + "\n")


def batch(ids, chat_ids, n, n_chat, ctx, gen):
    """n windows of the corpus; the first n_chat are chat samples packed to ctx tokens."""
    import torch

    starts = torch.randint(0, len(ids) - ctx - 1, (n - n_chat,), generator=gen)
    rows = [ids[s : s + ctx] for s in starts.tolist()]
    for _ in range(n_chat):
        row = []
        while len(row) < ctx:
            row.extend(chat_ids[int(torch.randint(len(chat_ids), (1,), generator=gen))].tolist())
        rows.append(torch.tensor(row[:ctx]))
    return torch.stack(rows)


if __name__ == "__main__":
    sys.exit(main())
