"""An LLM on a device's CPU: decode tokens/s and weight memory of chapter 3's GPT in fp32
and with int8 weights, repeated, and what the measured bandwidth means for a 7B model.

    python snippets/ch11/edge_llm.py
    python snippets/ch11/edge_llm.py --preset tiny --new-tokens 64 --repeats 7
"""

import argparse
import io
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ch03"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ch02"))
from aicluster.flops import params  # noqa: E402
from aicluster.mfu import MODELS  # noqa: E402
from gpt import PRESETS, build  # noqa: E402


@torch.inference_mode()
def generate(model, prompt: torch.Tensor, new_tokens: int) -> torch.Tensor:
    """Greedy decoding with a KV cache, from the model's own layers: the prompt is one
    forward pass (prefill), then each step feeds one token and appends its keys and
    values, so a step reads every weight once and does 2 FLOPs per weight."""
    c = model.cfg
    cache, ids, start, out = [None] * c.n_layer, prompt, 0, []
    for _ in range(new_tokens):
        b, s = ids.shape
        x = model.tok_emb(ids) + model.pos_emb(torch.arange(start, start + s))
        # --8<-- [start:decode]
        for i, blk in enumerate(model.blocks):
            q, k, v = blk.attn.qkv(blk.ln1(x)).split(c.d_model, dim=2)
            q, k, v = (t.view(b, s, c.n_head, -1).transpose(1, 2) for t in (q, k, v))
            if cache[i] is not None:
                k, v = torch.cat([cache[i][0], k], 2), torch.cat([cache[i][1], v], 2)
            cache[i] = (k, v)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=s > 1)
            # --8<-- [end:decode]
            x = x + blk.attn.proj(y.transpose(1, 2).reshape(b, s, c.d_model))
            x = x + blk.mlp(blk.ln2(x))
        ids = model.head(model.ln_f(x[:, -1])).argmax(-1, keepdim=True)
        out.append(ids)
        start += s
    return torch.cat(out, 1)


def weight_bytes(model) -> int:
    """Bytes of the weights as saved: int8 layers keep packed int8 weights and scales."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.tell()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=list(PRESETS), default="small")
    ap.add_argument("--prompt-tokens", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="a phone core's worth")
    ap.add_argument("--context", type=int, default=4096, help="for the 7B KV-cache budget")
    ap.add_argument("--device", choices=["cpu"], default="cpu", help="edge CPUs only")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    limit = PRESETS[a.preset].seq_len
    if min(a.prompt_tokens, a.new_tokens, a.threads) < 1 or a.repeats < 3:
        sys.exit("error: token counts and --threads must be at least 1, --repeats at least 3")
    if a.prompt_tokens + a.new_tokens > limit:
        sys.exit(f"error: --prompt-tokens + --new-tokens must be at most {limit} for {a.preset}")
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)

    # --8<-- [start:quantize]
    fp32 = build(a.preset).eval()
    with warnings.catch_warnings():  # torch.ao.quantization warns that torchao replaces it
        warnings.simplefilter("ignore")
        int8 = torch.ao.quantization.quantize_dynamic(fp32, {torch.nn.Linear}, torch.qint8)
    # --8<-- [end:quantize]
    prompt = torch.randint(0, fp32.cfg.vocab_size, (1, a.prompt_tokens))
    with torch.inference_mode():  # the cache must not change what the model computes
        full = prompt
        for _ in range(4):
            full = torch.cat([full, fp32(full)[:, -1].argmax(-1, keepdim=True)], 1)
    same = torch.equal(generate(fp32, prompt, 4), full[:, a.prompt_tokens:])
    print(f"{a.preset} GPT, {fp32.num_params() / 1e6:.1f}M parameters (random weights), "
          f"{a.threads} thread(s); KV-cached decoding matches the full forward: {same}")

    models, rates = {"fp32": fp32, "int8": int8}, {"fp32": [], "int8": []}
    for m in models.values():
        generate(m, prompt, 4)  # warm-up
    for r in range(a.repeats):  # interleaved, so that a busy moment hits both
        for name in (["fp32", "int8"] if r % 2 == 0 else ["int8", "fp32"]):
            t = time.perf_counter()
            generate(models[name], prompt, a.new_tokens)
            rates[name].append(a.new_tokens / (time.perf_counter() - t))
    c = fp32.cfg
    kv_kib = 2 * c.n_layer * c.d_model * 4 / 1024  # keys and values, fp32, per token
    # A decode step multiplies by every linear layer's weight once (the LM head too).
    matmul = sum(m.weight.numel() for m in fp32.modules() if isinstance(m, torch.nn.Linear))
    out = {"preset": a.preset, "params": fp32.num_params(), "kv_kib_per_token": kv_kib}
    print(f"{'weights':<8}{'saved MB':>9}{'read/token MB':>15}  decode tokens/s, {a.repeats} "
          f"runs: median (min-max)  GB/s read")
    for name, m in models.items():
        mb, v = weight_bytes(m) / 1e6, np.array(rates[name])
        read_mb = matmul * (4 if name == "fp32" else 1) / 1e6
        gbps = float(np.median(v)) * read_mb / 1e3
        out[name] = {"mb": mb, "read_mb": read_mb, "tokens_per_s": float(np.median(v)),
                     "min": float(v.min()), "max": float(v.max()), "read_gbps": gbps}
        print(f"{name:<8}{mb:>9.1f}{read_mb:>15.1f}  {np.median(v):>8.1f} "
              f"({v.min():.1f}-{v.max():.1f}){gbps:>30.2f}")
    out["speedup"] = out["int8"]["tokens_per_s"] / out["fp32"]["tokens_per_s"]

    m7 = MODELS["llama2-7b"]  # chapter 1's 7B: int4 weights and a bf16 KV cache on the device
    w7 = params(m7)[0] * 0.5
    kv7 = 2 * m7.layers * m7.kv_heads * m7.head_dim * 2 * a.context
    rate7 = out["fp32"]["read_gbps"] * 1e9 / w7
    print(f"7B at int4: {w7 / 1e9:.1f} GB of weights + {kv7 / 2**30:.1f} GiB of KV cache at "
          f"{a.context:,} tokens; at the {out['fp32']['read_gbps']:.2f} GB/s fp32 decoding "
          f"read here: {rate7:.2f} tokens/s")
    out["7b_int4"] = {"weights_gb": w7 / 1e9, "kv_gib": kv7 / 2**30, "tokens_per_s": rate7}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
