"""Training FLOPs per token of a decoder-only transformer, dense or mixture-of-experts.

A multiply-add is 2 FLOPs, so one token's h-vector times an h x n weight costs 2*h*n.
We count the matmuls, which run on tensor cores and do nearly all the work, and leave
out norms, softmax, activations and residual adds. Print a model's breakdown with:

    python snippets/ch02/aicluster/cli.py flops --model llama2-7b
"""

from dataclasses import dataclass

RECOMPUTE = ("none", "selective", "full")


@dataclass(frozen=True)
class ModelConfig:
    """A decoder's shape as its published config states it.

    `ffn` is the inner size of one MLP, of one expert in a mixture-of-experts model;
    `experts=1` is a dense model. Tying the LM head to the embedding saves parameters,
    not FLOPs: the head's matmul runs either way.
    """

    layers: int
    hidden: int
    heads: int
    kv_heads: int  # fewer than heads under grouped-query attention (GQA)
    ffn: int
    vocab: int
    seq_len: int
    gated_mlp: bool = True  # SwiGLU: gate, up and down matrices; False: up and down only
    tied_head: bool = False
    experts: int = 1
    active_experts: int = 1  # experts each token is routed to (top-k)

    def __post_init__(self):
        for name in ("layers", "hidden", "heads", "kv_heads", "ffn", "vocab", "seq_len",
                     "experts", "active_experts"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        if self.hidden % self.heads:
            raise ValueError(f"hidden {self.hidden} is not divisible by heads {self.heads}")
        if self.heads % self.kv_heads:
            raise ValueError(f"heads {self.heads} is not a multiple of kv_heads {self.kv_heads}")
        if self.active_experts > self.experts:
            raise ValueError(f"active_experts {self.active_experts} > experts {self.experts}")

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


# --8<-- [start:forward]
def forward_flops(cfg: ModelConfig, causal: bool = False) -> dict[str, int]:
    """Forward FLOPs per token, by part, summed over the layers.

    >>> cfg = ModelConfig(layers=32, hidden=4096, heads=32, kv_heads=32, ffn=11008,
    ...                   vocab=32000, seq_len=4096)
    >>> f = forward_flops(cfg)
    >>> f["attention_scores"] == 32 * 4 * 4096 * 4096, f["lm_head"] == 2 * 4096 * 32000
    (True, True)
    >>> forward_flops(cfg, causal=True)["attention_scores"] * 2 == f["attention_scores"]
    True
    """
    h, s, n = cfg.hidden, cfg.seq_len, cfg.layers
    kv = cfg.kv_heads * cfg.head_dim  # width of K and V: less than h under GQA
    matrices = 3 if cfg.gated_mlp else 2
    return {
        # Q and O are h x h, K and V are h x kv.
        "attention_proj": n * 2 * h * (2 * h + 2 * kv),
        # QK^T and softmax(.)V, 2*s*h each per token. By default every query-key pair
        # counts, as in PaLM's and Megatron-LM's MFU; causal=True credits the mask,
        # which skips half of them.
        "attention_scores": n * (2 if causal else 4) * s * h,
        # One expert's MLP times the experts a token visits (one, for a dense model).
        "mlp": n * 2 * matrices * h * cfg.ffn * cfg.active_experts,
        # The router scores all experts for every token: an h x experts matmul.
        "router": (n * 2 * h * cfg.experts) if cfg.experts > 1 else 0,
        "lm_head": 2 * h * cfg.vocab,
        "embedding": 0,  # a table lookup, not a matmul
    }
# --8<-- [end:forward]


# --8<-- [start:training]
def training_flops(cfg: ModelConfig, recompute: str = "none", causal: bool = False):
    """(model, hardware) FLOPs per training token.

    The backward pass costs two forwards (gradients for the activations and for the
    weights), so a step is 3 x forward: the model FLOPs that MFU counts, however the
    step is run. Hardware FLOPs, for HFU, add the work recomputed: full activation
    checkpointing reruns every layer's forward (the LM head is outside the checkpointed
    layers, as in Megatron-LM's formula); selective recompute reruns QK^T and AV only.

    >>> cfg = ModelConfig(layers=32, hidden=4096, heads=32, kv_heads=32, ffn=11008,
    ...                   vocab=32000, seq_len=4096)
    >>> [round(x / 1e9, 1) for x in training_flops(cfg)]
    [46.1, 46.1]
    >>> [round(x / 1e9, 1) for x in training_flops(cfg, recompute="full")]
    [46.1, 61.2]
    """
    if recompute not in RECOMPUTE:
        raise ValueError(f"recompute must be one of {', '.join(RECOMPUTE)}, got {recompute!r}")
    f = forward_flops(cfg, causal)
    forward = sum(f.values())
    model = 3 * forward
    extra = {"none": 0, "selective": f["attention_scores"], "full": forward - f["lm_head"]}
    return model, model + extra[recompute]
# --8<-- [end:training]


def flops_per_step(cfg: ModelConfig, global_batch: int, recompute="none", causal=False):
    """(model, hardware) FLOPs of one optimizer step over `global_batch` sequences."""
    tokens = global_batch * cfg.seq_len
    model, hardware = training_flops(cfg, recompute, causal)
    return model * tokens, hardware * tokens


def params(cfg: ModelConfig) -> tuple[int, int]:
    """(total, active per token) parameters: matmul weights, embeddings and norm scales.

    Biases and learned position embeddings are left out (Llama and Mixtral have none).

    >>> params(ModelConfig(layers=32, hidden=4096, heads=32, kv_heads=32, ffn=11008,
    ...                    vocab=32000, seq_len=4096))
    (6738415616, 6738415616)
    """
    h = cfg.hidden
    attention = h * (2 * h + 2 * cfg.kv_heads * cfg.head_dim)
    expert = (3 if cfg.gated_mlp else 2) * h * cfg.ffn
    router = h * cfg.experts if cfg.experts > 1 else 0
    norms = 2 * h  # one before attention, one before the MLP
    embeddings = cfg.vocab * h * (1 if cfg.tied_head else 2)
    shared = cfg.layers * (attention + router + norms) + embeddings + h  # + final norm
    return (shared + cfg.layers * cfg.experts * expert,
            shared + cfg.layers * cfg.active_experts * expert)
