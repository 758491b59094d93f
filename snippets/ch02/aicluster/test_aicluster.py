"""The chapter's worked examples, checked. Run from the repository root:

    python -m pytest -q snippets/ch02/aicluster

A multiply-add counts as 2 FLOPs throughout; h is the hidden size, s the sequence length.
"""

import dataclasses
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from aicluster.flops import ModelConfig, flops_per_step, forward_flops, params, training_flops
from aicluster.hardware import lookup, peak_tflops
from aicluster.mfu import MODELS, days_to_train, mfu_hfu, tokens_per_s_for_mfu
from aicluster.traffic import traffic

CLI = Path(__file__).with_name("cli.py")
GPT = Path(__file__).resolve().parents[2] / "ch03" / "gpt.py"


def test_llama2_7b_flops_per_token():
    # Llama 2 7B: 32 layers, h = 4096, 32 heads (no GQA), gated MLP of 11008, vocab 32000.
    # Per layer, forward, per token:
    #   Q, K, V, O projections  2 * h * 4h        = 8 * 4096^2          =   134,217,728
    #   QK^T and AV (s = 4096)  4 * s * h         = 4 * 4096 * 4096     =    67,108,864
    #   gated MLP               2 * 3 * h * 11008                       =   270,532,608
    #   layer total                                                     =   471,859,200
    # 32 layers: 15,099,494,400; LM head 2 * 4096 * 32000 = 262,144,000; embedding 0.
    # Forward 15,361,638,400 (15.36 GFLOP); training 3 x forward = 46,084,915,200.
    f = forward_flops(MODELS["llama2-7b"])
    assert f["attention_proj"] == 32 * 134_217_728
    assert f["attention_scores"] == 32 * 67_108_864
    assert f["mlp"] == 32 * 270_532_608
    assert f["lm_head"] == 262_144_000 and f["embedding"] == 0
    assert sum(f.values()) == 15_361_638_400
    model, hardware = training_flops(MODELS["llama2-7b"])
    assert model == hardware == 46_084_915_200
    # The 6N shortcut, N = 6,738,415,616 parameters, gives 40,430,493,696: it misses
    # the attention scores, 14% of the forward at s = 4096.
    total, active = params(MODELS["llama2-7b"])
    assert total == active == 6_738_415_616
    assert 6 * total == 40_430_493_696
    assert round(f["attention_scores"] / sum(f.values()), 3) == 0.140
    # One step of Llama 2's 4M-token batch (1024 sequences of 4096): 1.933e17 FLOPs.
    assert flops_per_step(MODELS["llama2-7b"], 1024)[0] == 46_084_915_200 * 1024 * 4096


def test_causal_credit_halves_the_attention_scores_only():
    # Crediting the mask: 2 * s * h per layer instead of 4 * s * h.
    full, causal = forward_flops(MODELS["llama2-7b"]), forward_flops(MODELS["llama2-7b"], True)
    assert causal["attention_scores"] * 2 == full["attention_scores"]
    assert {k: v for k, v in causal.items() if k != "attention_scores"} == {
        k: v for k, v in full.items() if k != "attention_scores"}
    assert training_flops(MODELS["llama2-7b"], causal=True)[0] == 42_863_689_728


def test_llama3_8b_gqa_and_gated_mlp():
    # Llama 3 8B: h = 4096, 32 query heads and 8 K/V heads of 128, so K and V are
    # 4096 x 1024. Q, K, V, O per layer: 2 * 4096 * (2 * 4096 + 2 * 1024) = 83,886,080,
    # 37.5% less than the 134,217,728 of full multi-head attention.
    # Gated MLP of 14336: 2 * 3 * 4096 * 14336 = 352,321,536 (two matrices: 234,881,024).
    # Attention scores at s = 8192: 4 * 8192 * 4096 = 134,217,728 per layer.
    # LM head: 2 * 4096 * 128256 = 1,050,673,152. Forward 19,304,284,160;
    # training 57,912,852,480 per token; 8,030,261,248 parameters.
    cfg = MODELS["llama3-8b"]
    f = forward_flops(cfg)
    assert f["attention_proj"] == 32 * 83_886_080
    mha = forward_flops(dataclasses.replace(cfg, kv_heads=32))["attention_proj"]
    assert mha == 32 * 134_217_728 and f["attention_proj"] / mha == 0.625
    assert f["mlp"] == 32 * 352_321_536
    plain = forward_flops(dataclasses.replace(cfg, gated_mlp=False))["mlp"]
    assert plain == 32 * 234_881_024
    assert f["attention_scores"] == 32 * 134_217_728
    assert f["lm_head"] == 1_050_673_152
    assert training_flops(cfg)[0] == 57_912_852_480
    assert params(cfg) == (8_030_261_248, 8_030_261_248)


def test_mixtral_active_parameters_and_expert_flops():
    # Mixtral 8x7B: per layer, attention 41,943,040 weights, 8 experts of
    # 3 * 4096 * 14336 = 176,160,768, a router of 4096 * 8 = 32,768, norms 8,192.
    # Total: 32 * 1,451,270,144 + 2 * 32000 * 4096 + 4096 = 46,702,792,704 (46.7B).
    # Active, 2 experts per token: 32 * 394,305,536 + 262,148,096 = 12,879,925,248 (12.9B).
    assert params(MODELS["mixtral-8x7b"]) == (46_702_792_704, 12_879_925_248)
    # MLP FLOPs scale with the experts a token visits times one expert's size: twice a
    # dense model with the same expert, not the dense MLP scaled by 2/8.
    f = forward_flops(MODELS["mixtral-8x7b"])
    dense = forward_flops(dataclasses.replace(MODELS["mixtral-8x7b"], experts=1, active_experts=1))
    assert f["mlp"] == 2 * dense["mlp"] == 32 * 2 * 2 * 176_160_768
    assert f["router"] == 32 * 2 * 4096 * 8


def test_mfu_on_8_h100():
    # 64,000 tokens/s on 8 H100 SXM: 8,000 tokens/s per GPU.
    # 8,000 * 46,084,915,200 = 368.68 TFLOP/s per GPU; / 989 = MFU 0.3728.
    # With full activation checkpointing the layers run forward again:
    # 46,084,915,200 + 15,099,494,400 = 61,184,409,600 per token, 489.48 TFLOP/s, HFU 0.4949.
    assert peak_tflops("H100 SXM", "bf16") == 989
    mfu, hfu = mfu_hfu(MODELS["llama2-7b"], 64_000, 8, peak_tflops("h100"))
    assert round(mfu, 4) == round(hfu, 4) == 0.3728
    mfu, hfu = mfu_hfu(MODELS["llama2-7b"], 64_000, 8, 989, recompute="full")
    assert round(mfu, 4) == 0.3728 and round(hfu, 4) == 0.4949


def test_hfu_exceeds_mfu_under_recompute():
    # Selective recompute reruns QK^T and AV: 46,084,915,200 + 2,147,483,648.
    cfg, peak = MODELS["llama2-7b"], 989
    modes = ("none", "selective", "full")
    none, selective, full = (mfu_hfu(cfg, 64_000, 8, peak, r) for r in modes)
    assert none[0] == selective[0] == full[0]
    assert none[1] < selective[1] < full[1]
    assert training_flops(cfg, "selective")[1] == 48_232_398_848


def test_days_to_train_llama2_70b_on_1024_h100():
    # Llama 2 70B (80 layers, h = 8192, 8 K/V heads, MLP 28672, s = 4096):
    # 444,491,366,400 FLOPs per training token; 2e12 tokens: 8.890e23 FLOPs.
    # 1024 GPUs * 0.40 * 989e12 = 4.051e17 FLOP/s; 8.890e23 / 4.051e17 = 2.19e6 s = 25.4 days
    # (624,215 GPU-hours), at 911,366 tokens/s in all, 890 per GPU.
    cfg = MODELS["llama2-70b"]
    assert training_flops(cfg)[0] == 444_491_366_400
    days = days_to_train(cfg, 2e12, 1024, 0.40, 989)
    assert round(days, 1) == 25.4 and round(days * 24 * 1024) == 624_215
    assert round(tokens_per_s_for_mfu(cfg, 0.40, 989, gpus=1024)) == 911_366
    # Llama 2 7B, same run: 2.63 days.
    assert round(days_to_train(MODELS["llama2-7b"], 2e12, 1024, 0.40, 989), 2) == 2.63


def test_llama2_70b_reported_gpu_hours_imply_its_mfu():
    # Llama 2 paper, table 2: 1,720,320 A100-80GB GPU-hours for the 70B model on 2T tokens.
    # 8.890e23 FLOPs / (1,720,320 h * 3600 s * 312e12) = MFU 0.46 on the bf16 dense peak.
    flops = 2e12 * training_flops(MODELS["llama2-70b"])[0]
    assert round(flops / (1_720_320 * 3600 * peak_tflops("a100", "bf16") * 1e12), 2) == 0.46


@pytest.mark.parametrize("preset", ["tiny", "small", "350m", "1b"])
def test_agrees_with_chapter_3_gpt(preset):
    torch = pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("ch03_gpt", GPT)
    gpt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpt)
    with torch.device("meta"):  # shapes only: no memory for the 1B model
        m = gpt.build(preset)
    c = m.cfg
    # gpt.py: GELU MLP of 4 x d_model (two matrices), head tied to the embedding,
    # attention counted in full.
    cfg = ModelConfig(layers=c.n_layer, hidden=c.d_model, heads=c.n_head, kv_heads=c.n_head,
                      ffn=4 * c.d_model, vocab=c.vocab_size, seq_len=c.seq_len,
                      gated_mlp=False, tied_head=True)
    assert training_flops(cfg)[0] == m.flops_per_token()


def test_gpu_names_and_peaks():
    assert lookup("h100") is lookup("H100-SXM") is lookup("nvidia h100 80gb hbm3")
    assert lookup("NVIDIA A100-SXM4-80GB").tflops["bf16"] == 312
    assert peak_tflops("NVIDIA H200", "fp8") == 1979 and lookup("h200").hbm_gb == 141
    assert peak_tflops("b200", "fp4") == 9000


def cli(*args):
    return subprocess.run([sys.executable, str(CLI), *args], capture_output=True, text=True,
                          timeout=60)


def test_cli_prints_the_library_numbers_as_json():
    out = cli("flops", "--model", "llama2-7b")
    assert out.returncode == 0, out.stderr
    last = json.loads(out.stdout.strip().splitlines()[-1])
    assert last["model_flops"] == 46_084_915_200 and last["params"] == 6_738_415_616
    out = cli("mfu", "--gpu", "h100", "--gpus", "8", "--tokens-per-s", "64000")
    assert round(json.loads(out.stdout.splitlines()[-1])["mfu"], 4) == 0.3728
    # A step of 64 sequences of 4096 tokens in 4.096 s is the same 64,000 tokens/s.
    out = cli("mfu", "--gpus", "8", "--step-time", "4.096", "--global-batch", "64")
    last = json.loads(out.stdout.splitlines()[-1])
    assert last["tokens_per_s"] == 64_000 and round(last["mfu"], 4) == 0.3728


@pytest.mark.parametrize("args, message", [
    (["peaks", "--gpu", "v100"], "unknown GPU 'v100'; known: a100, h100, h200, b200"),
    (["mfu", "--gpu", "a100", "--precision", "fp8", "--tokens-per-s", "1000"], "has no fp8"),
    (["mfu", "--gpus", "0", "--tokens-per-s", "1000"], "--gpus: must be a positive number"),
    (["mfu", "--tokens-per-s", "-5"], "--tokens-per-s: must be a positive number"),
    (["mfu", "--tokens-per-s", "1e9"], "HFU would be"),
    (["days", "--tokens", "2e12", "--mfu", "1.5"], r"--mfu: must be in (0, 1]"),
    (["days", "--tokens", "2e12", "--mfu", "0"], r"--mfu: must be in (0, 1]"),
    (["days", "--tokens", "0"], "--tokens: must be a positive number"),
    (["flops", "--model", "custom", "--layers", "2"], "--model custom needs --hidden"),
    (["flops", "--heads", "24"], "not divisible"),
])
def test_cli_bad_input_is_one_line_and_exit_2(args, message):
    out = cli(*args)
    assert out.returncode == 2
    assert out.stdout == "" and "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: ")
    assert message in out.stderr


def test_traffic_of_each_parallelism():
    # Llama 2 70B on 1024 GPUs (128 nodes of 8), 1024 sequences of 4096 per step.
    # Data parallelism: bf16 gradients 2N = 137.95 GB; a ring sends 2 * 1023/1024 of them.
    # FSDP moves 1.5x that; HSDP only each GPU's eighth, all-reduced over 128 replicas.
    t = traffic(MODELS["llama2-70b"], 1024, 8, 1024, 8, 16, 64, 0.4, 989, 360, 48)
    grad = 2 * 68_976_648_192
    assert t["dp"]["sent_gb"] * 1e9 == pytest.approx(2 * 1023 / 1024 * grad)
    assert t["sharded"]["sent_gb"] == pytest.approx(1.5 * t["dp"]["sent_gb"])
    assert t["sharded"]["hsdp_sent_gb"] * 1e9 == pytest.approx(2 * 127 / 128 * grad / 8)
    # TP: 4 all-reduces per layer of one sequence's activations, 4096 x 8192 x 2 bytes.
    assert t["tp"]["calls"] == 320 and t["tp"]["activation_mb"] == 4096 * 8192 * 2 / 1e6
    # PP bubble with 16 stages: 15/79 at 64 micro-batches, 15/143 at 128.
    assert t["pp"]["bubble"] == 15 / 79 and t["pp"]["bubble_2m"] == 15 / 143
    assert "ep" not in t
    # Mixtral routes each token to 2 experts: 2 x 4096 x 2 bytes = 16 KiB each way per layer.
    assert traffic(MODELS["mixtral-8x7b"], 1024, 8, 1024, 8, 16, 64, 0.4, 989, 360,
                   48)["ep"]["kib_per_token"] == 16
    # Across nodes a collective runs one ring per card: 8 cards x 48 GB/s, capped by NVLink's
    # 360; a send leaves through one GPU's share of the cards, 48 GB/s; with 1 card, 6.
    assert t["net"] == {"collective_gbps": 360, "port_gbps": 48}
    one = traffic(MODELS["llama2-70b"], 1024, 8, 1024, 8, 16, 64, 0.4, 989, 360, 48, nics=1)
    assert one["net"] == {"collective_gbps": 48, "port_gbps": 6}
    assert one["dp"]["comm_s"] == pytest.approx(t["dp"]["comm_s"] * 360 / 48)
