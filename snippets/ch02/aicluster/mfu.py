"""Model and hardware FLOPs utilisation (MFU, HFU), and the days a run takes at an MFU.

MFU = tokens/s x model FLOPs per token / peak FLOP/s. Model FLOPs are 3 x forward
whatever the implementation does, so MFU compares runs fairly; HFU also counts the
work that activation recomputation repeats, so it is higher whenever recompute is on.

    python snippets/ch02/aicluster/cli.py mfu --gpu h100 --gpus 8 --tokens-per-s 64000
    python snippets/ch02/aicluster/cli.py days --model llama2-70b --gpus 1024 --tokens 2e12
"""

from .flops import ModelConfig, training_flops

# --8<-- [start:models]
# Published shapes. Sequence lengths are the pre-training context each source states.
MODELS = {
    # Llama 2: Touvron et al. 2023, arXiv:2307.09288, table 1 and section 2.2, and the
    # released config.json files (intermediate_size 11008 and 28672, vocab 32000).
    "llama2-7b": ModelConfig(layers=32, hidden=4096, heads=32, kv_heads=32, ffn=11008,
                             vocab=32000, seq_len=4096),
    "llama2-70b": ModelConfig(layers=80, hidden=8192, heads=64, kv_heads=8, ffn=28672,
                              vocab=32000, seq_len=4096),
    # Llama 3: "The Llama 3 Herd of Models", arXiv:2407.21783, table 3 (layers, model and
    # FFN dimensions, 8 KV heads) and the 8K pre-training context; vocab_size 128256
    # from the released config.json (the paper rounds it to 128K).
    "llama3-8b": ModelConfig(layers=32, hidden=4096, heads=32, kv_heads=8, ffn=14336,
                             vocab=128256, seq_len=8192),
    "llama3-70b": ModelConfig(layers=80, hidden=8192, heads=64, kv_heads=8, ffn=28672,
                              vocab=128256, seq_len=8192),
    # GPT-3: Brown et al. 2020, arXiv:2005.14165, table 2.1; GPT-2's architecture, so a
    # GELU MLP of 4 x hidden, a head tied to the embedding and a 50257-token vocabulary.
    # Its locally banded sparse attention layers are counted as dense here.
    "gpt3-175b": ModelConfig(layers=96, hidden=12288, heads=96, kv_heads=96, ffn=49152,
                             vocab=50257, seq_len=2048, gated_mlp=False, tied_head=True),
    # Mixtral 8x7B: Jiang et al. 2024, arXiv:2401.04088, table 1: 8 SwiGLU experts of
    # hidden_dim 14336 per layer, 2 per token, and a 32K context.
    "mixtral-8x7b": ModelConfig(layers=32, hidden=4096, heads=32, kv_heads=8, ffn=14336,
                                vocab=32000, seq_len=32768, experts=8, active_experts=2),
}
# --8<-- [end:models]


# --8<-- [start:mfu]
def utilisation(tokens_per_s_per_gpu: float, flops_per_token: float, peak_tflops: float):
    """Achieved over peak FLOP/s. Model FLOPs per token give MFU, hardware FLOPs HFU.

    >>> round(utilisation(8000, 46.08e9, 989), 3)
    0.373
    """
    return tokens_per_s_per_gpu * flops_per_token / (peak_tflops * 1e12)


def mfu_hfu(cfg: ModelConfig, tokens_per_s: float, gpus: int, peak_tflops: float,
            recompute: str = "none", causal: bool = False) -> tuple[float, float]:
    """MFU and HFU of a run that trains `tokens_per_s` tokens/s in total on `gpus` GPUs.

    >>> mfu, hfu = mfu_hfu(MODELS["llama2-7b"], 64000, 8, 989, recompute="full")
    >>> round(mfu, 4), round(hfu, 4)
    (0.3728, 0.4949)
    """
    model, hardware = training_flops(cfg, recompute, causal)
    per_gpu = tokens_per_s / gpus
    return (utilisation(per_gpu, model, peak_tflops),
            utilisation(per_gpu, hardware, peak_tflops))
# --8<-- [end:mfu]


# --8<-- [start:days]
def days_to_train(cfg: ModelConfig, tokens: float, gpus: int, mfu: float,
                  peak_tflops: float, causal: bool = False) -> float:
    """Wall-clock days to train on `tokens` tokens with `gpus` GPUs held at `mfu`.

    >>> round(days_to_train(MODELS["llama2-70b"], 2e12, 1024, 0.40, 989), 2)
    25.4
    """
    model, _ = training_flops(cfg, causal=causal)
    seconds = tokens * model / (gpus * mfu * peak_tflops * 1e12)
    return seconds / 86400


def tokens_per_s_for_mfu(cfg: ModelConfig, mfu: float, peak_tflops: float,
                         gpus: int = 1, causal: bool = False) -> float:
    """Total tokens/s that `gpus` GPUs must train at to reach `mfu`.

    >>> round(tokens_per_s_for_mfu(MODELS["llama2-7b"], 0.40, 989))
    8584
    """
    model, _ = training_flops(cfg, causal=causal)
    return gpus * mfu * peak_tflops * 1e12 / model
# --8<-- [end:days]
