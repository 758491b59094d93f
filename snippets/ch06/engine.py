"""A teaching inference engine: the book's Llama weights, a slot KV cache, ragged batches.

One `step` runs the new tokens of several requests together, as vLLM does: a request in
prefill brings its whole prompt (or a chunk of it), a request in decode brings one token.
The projections and MLP see all tokens at once; attention reads each request's own slot
of the cache. Rewinding a request is setting its length back, which is all speculative
decoding needs. The real engines add paged blocks, CUDA graphs and fused kernels.
"""

import torch
import torch.nn.functional as F
from transformers import LlamaForCausalLM
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb
from transformers.utils import logging as hf_logging


def load(path: str, device: str = "cpu") -> LlamaForCausalLM:
    # One thread: for steps this small, more CPU threads mostly wait on each other.
    torch.set_num_threads(1)
    hf_logging.disable_progress_bar()
    torch.manual_seed(0)
    return LlamaForCausalLM.from_pretrained(path, dtype=torch.float32).eval().to(device)


# --8<-- [start:engine]
class Engine:
    def __init__(self, model: LlamaForCausalLM, slots: int, max_len: int):
        c = model.config
        self.model, self.body = model, model.model
        self.dev = next(model.parameters()).device
        self.heads, self.kv_heads = c.num_attention_heads, c.num_key_value_heads
        self.hd = c.head_dim
        # [layer, key/value, slot, kv head, position, head dim]: preallocated, like vLLM's pool
        self.cache = torch.zeros(c.num_hidden_layers, 2, slots, self.kv_heads, max_len, self.hd,
                                 device=self.dev)

    @torch.inference_mode()
    def step(self, work: list[tuple[int, list[int], int]]) -> list[list[int]]:
        """work: (slot, new token ids, position of the first). Returns greedy next tokens
        after every new token of every request."""
        ids = torch.tensor([t for _, toks, _ in work for t in toks], device=self.dev)
        pos = torch.tensor([p + i for _, toks, p in work for i in range(len(toks))],
                           device=self.dev)
        x = self.body.embed_tokens(ids)[None]
        cos, sin = self.body.rotary_emb(x, pos[None])
        for li, layer in enumerate(self.body.layers):
            att, h = layer.self_attn, layer.input_layernorm(x)
            q = att.q_proj(h).view(1, -1, self.heads, self.hd).transpose(1, 2)
            k = att.k_proj(h).view(1, -1, self.kv_heads, self.hd).transpose(1, 2)
            v = att.v_proj(h).view(1, -1, self.kv_heads, self.hd).transpose(1, 2)
            q, k = apply_rotary_pos_emb(q, k, cos, sin)
            outs, i = [], 0
            for slot, toks, p in work:  # write this request's K and V, attend to its history
                n, kv = len(toks), self.cache[li, :, slot]
                kv[0, :, p : p + n], kv[1, :, p : p + n] = k[0, :, i : i + n], v[0, :, i : i + n]
                causal = (torch.arange(p + n, device=self.dev)[None, :]
                          <= torch.arange(p, p + n, device=self.dev)[:, None])
                outs.append(F.scaled_dot_product_attention(
                    q[0, :, i : i + n], kv[0, :, : p + n], kv[1, :, : p + n],
                    attn_mask=causal, enable_gqa=True))
                i += n
            o = torch.cat(outs, dim=1).transpose(0, 1).reshape(1, -1, self.heads * self.hd)
            x = x + att.o_proj(o)
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        logits = self.model.lm_head(self.body.norm(x[0]))
        nxt, out, i = logits.argmax(-1).tolist(), [], 0
        for _, toks, _ in work:
            out.append(nxt[i : i + len(toks)])
            i += len(toks)
        return out
# --8<-- [end:engine]


def generate(engine: Engine, prompt: list[int], n: int, slot: int = 0) -> list[int]:
    """Greedy decoding of one request with the KV cache: prefill once, then one token a step."""
    nxt = engine.step([(slot, prompt, 0)])[0][-1]
    out = [nxt]
    while len(out) < n:
        out.append(engine.step([(slot, [out[-1]], len(prompt) + len(out) - 1)])[0][-1])
    return out
