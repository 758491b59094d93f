"""A GPT-style decoder whose size is set by flags.

Chapters 3, 4 and 5 train this one definition, so their numbers compare like
with like. The presets run from a sub-million-parameter model that trains on a
laptop CPU in seconds to a ~1B-parameter model that fills an H100.

Run it on its own to print the size of each preset:

    python snippets/ch03/gpt.py
"""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GPTConfig:
    vocab_size: int = 512
    seq_len: int = 128
    n_layer: int = 2
    n_head: int = 2
    d_model: int = 128


# --8<-- [start:presets]
PRESETS = {
    "tiny": GPTConfig(vocab_size=512, seq_len=128, n_layer=2, n_head=2, d_model=128),
    "small": GPTConfig(vocab_size=8192, seq_len=512, n_layer=8, n_head=8, d_model=512),
    "350m": GPTConfig(vocab_size=32768, seq_len=1024, n_layer=24, n_head=16, d_model=1024),
    "1b": GPTConfig(vocab_size=32768, seq_len=2048, n_layer=18, n_head=16, d_model=2048),
}
# --8<-- [end:presets]


class Attention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x):
        b, s, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (t.view(b, s, self.n_head, d // self.n_head).transpose(1, 2) for t in (q, k, v))
        # Flash attention on GPUs; a plain fused kernel on CPU.
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, s, d))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.up = nn.Linear(cfg.d_model, 4 * cfg.d_model, bias=False)
        self.down = nn.Linear(4 * cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x):
        return self.down(F.gelu(self.up(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model, bias=False)
        self.attn = Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model, bias=False)
        self.mlp = MLP(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        if cfg.d_model % cfg.n_head:
            raise ValueError(f"d_model {cfg.d_model} is not divisible by n_head {cfg.n_head}")
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.seq_len, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model, bias=False)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight  # tied, as in GPT-2
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("down.weight"):
                # Residual projections scaled down with depth (GPT-2's recipe).
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, idx, targets=None):
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.tok_emb(idx) + self.pos_emb(pos)
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.ln_f(x))
        if targets is None:
            return logits
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.view(-1))

    def num_params(self):
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self):
        """Training FLOPs per token: 6 per weight in a matmul, plus attention.

        The LM head counts as a matmul; the embedding lookups do not. Attention
        scores and the weighted sum are 4*s*d per layer forward, counted in full
        (no credit for the causal mask), times 3 for forward plus backward.
        """
        c = self.cfg
        matmul_weights = c.n_layer * 12 * c.d_model**2 + c.vocab_size * c.d_model
        return 6 * matmul_weights + 12 * c.n_layer * c.seq_len * c.d_model


def build(preset="tiny", **overrides):
    """A GPT from a preset, with any field overridden: build("1b", seq_len=1024)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    fields = {k: v for k, v in vars(PRESETS[preset]).items()}
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return GPT(GPTConfig(**fields))


if __name__ == "__main__":
    with torch.device("meta"):  # sizes only: no memory is allocated
        for name in PRESETS:
            m = build(name)
            print(f"{name:>6}: {m.num_params() / 1e6:8.1f}M parameters, "
                  f"{m.flops_per_token() / 1e9:6.2f} GFLOP per training token")
