"""The MFU calculator on the command line: a readable table, then one JSON line.

    python snippets/ch02/aicluster/cli.py peaks
    python snippets/ch02/aicluster/cli.py flops --model llama3-8b
    python snippets/ch02/aicluster/cli.py mfu --model llama2-7b --gpus 8 --tokens-per-s 64000
    python snippets/ch02/aicluster/cli.py mfu --gpus 8 --step-time 4.096 --global-batch 64
    python snippets/ch02/aicluster/cli.py days --model llama2-70b --gpus 1024 --tokens 2e12
    python snippets/ch02/aicluster/cli.py traffic --model llama2-70b --gpus 1024

The GPU defaults to h100 and the precision to bf16 (--gpu, --precision); days assumes
--mfu 0.4 unless told otherwise. `--model custom` takes the shape from --layers,
--hidden, --heads, --ffn, --vocab and --seq-len (and optionally --kv-heads, --mlp,
--head, --experts, --active-experts); on a preset the same flags override one field.
"""

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

if not __package__:
    # Run as a script: the folder above this one holds the `aicluster` package.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aicluster.flops import RECOMPUTE, ModelConfig, forward_flops, params, training_flops  # noqa: E402
from aicluster.hardware import GPUS, lookup, peak_tflops  # noqa: E402
from aicluster.mfu import MODELS, days_to_train, mfu_hfu, tokens_per_s_for_mfu  # noqa: E402
from aicluster.traffic import traffic  # noqa: E402

SHAPE = {"layers": "transformer layers", "hidden": "hidden size", "heads": "query heads",
         "kv_heads": "K/V heads (default: --heads; fewer is GQA)",
         "ffn": "MLP inner size (of one expert)", "vocab": "vocabulary size",
         "seq_len": "training sequence length", "experts": "experts per MoE layer",
         "active_experts": "experts each token is routed to"}
PARTS = {"attention_proj": "attention Q, K, V, O", "attention_scores": "attention QK^T, AV",
         "mlp": "MLP", "router": "MoE router", "lm_head": "LM head",
         "embedding": "embedding (a lookup)"}


class Parser(argparse.ArgumentParser):
    """Bad input ends in one line, `error: ...`, and exit code 2."""

    def error(self, message):
        self.exit(2, f"error: {message}\n")


def positive(convert, most=math.inf):
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            kind = "whole number" if convert is int else "number"
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind}") from None
        if not (0 < value <= most and value < math.inf):
            span = "a positive number" if most == math.inf else f"in (0, {most:g}]"
            raise argparse.ArgumentTypeError(f"must be {span}, got {text}")
        return value
    return parse


def model_from(args, parser) -> ModelConfig:
    fields = {k: getattr(args, k) for k in SHAPE if getattr(args, k) is not None}
    if args.mlp:
        fields["gated_mlp"] = args.mlp == "gated"
    if args.head:
        fields["tied_head"] = args.head == "tied"
    if args.model == "custom":
        needed = ("layers", "hidden", "heads", "ffn", "vocab", "seq_len")
        missing = ["--" + k.replace("_", "-") for k in needed if k not in fields]
        if missing:
            parser.error(f"--model custom needs {', '.join(missing)}")
        fields.setdefault("kv_heads", fields["heads"])
    try:
        if args.model == "custom":
            return ModelConfig(**fields)
        return dataclasses.replace(MODELS[args.model], **fields)
    except ValueError as e:
        parser.error(str(e))


def gpu_from(args, parser):
    try:
        return lookup(args.gpu), peak_tflops(args.gpu, args.precision)
    except ValueError as e:
        parser.error(str(e))


def describe(name: str, c: ModelConfig) -> str:
    moe = f" x {c.experts} experts ({c.active_experts} active)" if c.experts > 1 else ""
    return (f"{name}: {c.layers} layers, hidden {c.hidden}, heads {c.heads} (K/V {c.kv_heads}), "
            f"{'gated' if c.gated_mlp else 'plain'} MLP {c.ffn}{moe}, "
            f"vocab {c.vocab}{' (tied)' if c.tied_head else ''}, sequence {c.seq_len}")


def sci(x: float) -> str:
    return f"{x:.3g}".replace("e+", "e")


def cmd_peaks(args, parser):
    shown = GPUS
    if args.gpu:
        g = gpu_from(argparse.Namespace(gpu=args.gpu, precision="bf16"), parser)[0]
        shown = {k: v for k, v in GPUS.items() if v is g}
    cols = ["fp32", "tf32", "bf16", "fp16", "fp8", "fp4", "int8"]
    print(f"{'GPU':<16}" + "".join(f"{c:>7}" for c in cols) + f"{'HBM GB':>8}{'GB/s':>7}"
          f"{'ridge':>7}")
    for g in shown.values():
        print(f"{g.name:<16}" + "".join(f"{g.tflops.get(c, '-'):>7}" for c in cols)
              + f"{g.hbm_gb:>8}{g.hbm_gbps:>7}{ridge(g):>7.0f}")
    print("dense TFLOP/s (int8: TOPS); fp32 runs without tensor cores; "
          "ridge: bf16 FLOPs per byte of HBM")
    return {k: {"name": g.name, **g.tflops, "hbm_gb": g.hbm_gb, "hbm_gbps": g.hbm_gbps,
                "ridge": ridge(g)} for k, g in shown.items()}


def ridge(g) -> float:
    """FLOPs a GPU can do in bf16 in the time it reads one byte of HBM."""
    return g.tflops["bf16"] * 1e12 / (g.hbm_gbps * 1e9)


def cmd_flops(args, parser):
    cfg = model_from(args, parser)
    f = forward_flops(cfg, args.causal)
    forward = sum(f.values())
    model, hardware = training_flops(cfg, args.recompute, args.causal)
    total, active = params(cfg)
    print(describe(args.model, cfg))
    print(f"parameters: {total / 1e9:.2f}B, {active / 1e9:.2f}B active per token")
    print(f"{'GFLOP per token':<48}{'':>8}{'share':>8}")
    for k, v in f.items():
        if k == "router" and cfg.experts == 1:
            continue
        label = PARTS[k] + (" (causal)" if k == "attention_scores" and args.causal else "")
        print(f"{'  forward: ' + label:<48}{v / 1e9:8.3f}{v / forward:8.1%}")
    for label, v in [("forward", forward), ("training, model FLOPs (3 x forward)", model),
                     (f"training, hardware FLOPs (recompute {args.recompute})", hardware),
                     ("6N, N = active parameters", 6 * active)]:
        print(f"{label:<48}{v / 1e9:8.3f}")
    return {"model": args.model, "seq_len": cfg.seq_len, "causal": args.causal,
            "recompute": args.recompute, "params": total, "active_params": active,
            "billions": {"params": total / 1e9, "active_params": active / 1e9},
            "forward": f, "forward_flops": forward, "model_flops": model,
            "hardware_flops": hardware, "six_n": 6 * active,
            "gflop": {"forward": forward / 1e9, "model": model / 1e9,
                      "hardware": hardware / 1e9, "six_n": 6 * active / 1e9},
            "share": {k: v / forward for k, v in f.items()},
            "six_n_shortfall": 1 - 6 * active / model}


def cmd_mfu(args, parser):
    cfg = model_from(args, parser)
    gpu, peak = gpu_from(args, parser)
    if (args.step_time is None) != (args.global_batch is None):
        parser.error("--step-time and --global-batch (sequences per step) go together")
    if args.step_time is not None:
        tokens_per_s = args.global_batch * cfg.seq_len / args.step_time
    elif args.tokens_per_s_per_gpu is not None:
        tokens_per_s = args.tokens_per_s_per_gpu * args.gpus
    else:
        tokens_per_s = args.tokens_per_s
    mfu, hfu = mfu_hfu(cfg, tokens_per_s, args.gpus, peak, args.recompute, args.causal)
    if hfu > 1:
        parser.error(f"HFU would be {hfu:.2f}, above the GPUs' peak: check the tokens/s, "
                     "--gpus and --precision")
    model, hardware = training_flops(cfg, args.recompute, args.causal)
    per_gpu = tokens_per_s / args.gpus
    print(describe(args.model, cfg))
    print(f"GPUs      {args.gpus} x {gpu.name}, dense {args.precision} peak {peak:g} TFLOP/s")
    print(f"tokens/s  {tokens_per_s:,.0f} in total, {per_gpu:,.0f} per GPU")
    print(f"{'':<38}{'GFLOP/token':>12}{'TFLOP/s/GPU':>13}")
    for label, flops, name, u in [("model FLOPs (3 x forward)", model, "MFU", mfu),
                                  (f"hardware FLOPs (recompute {args.recompute})", hardware,
                                   "HFU", hfu)]:
        print(f"{label:<38}{flops / 1e9:12.2f}{per_gpu * flops / 1e12:13.1f}   {name} {u:.1%}")
    return {"model": args.model, "gpu": gpu.name, "precision": args.precision,
            "peak_tflops": peak, "gpus": args.gpus, "causal": args.causal,
            "recompute": args.recompute, "tokens_per_s": tokens_per_s,
            "tokens_per_s_per_gpu": per_gpu, "model_flops": model, "hardware_flops": hardware,
            "model_tflops_per_gpu": per_gpu * model / 1e12,
            "hardware_tflops_per_gpu": per_gpu * hardware / 1e12, "mfu": mfu, "hfu": hfu}


def cmd_days(args, parser):
    cfg = model_from(args, parser)
    gpu, peak = gpu_from(args, parser)
    days = days_to_train(cfg, args.tokens, args.gpus, args.mfu, peak, args.causal)
    rate = tokens_per_s_for_mfu(cfg, args.mfu, peak, args.gpus, args.causal)
    model, _ = training_flops(cfg, causal=args.causal)
    print(describe(args.model, cfg))
    print(f"run         {sci(args.tokens)} tokens, {args.gpus} x {gpu.name}, "
          f"{args.mfu:.0%} MFU of the dense {args.precision} peak ({peak:g} TFLOP/s)")
    print(f"compute     {model / 1e9:.2f} GFLOP per token, {sci(args.tokens * model)} FLOPs in all")
    print(f"throughput  {rate:,.0f} tokens/s in total, {rate / args.gpus:,.0f} per GPU")
    print(f"time        {days:.1f} days, {days * 24 * args.gpus:,.0f} GPU-hours")
    return {"model": args.model, "gpu": gpu.name, "precision": args.precision,
            "peak_tflops": peak, "gpus": args.gpus, "causal": args.causal,
            "tokens": args.tokens, "mfu": args.mfu, "model_flops": model,
            "train_flops": args.tokens * model, "tokens_per_s": rate,
            "tokens_per_s_per_gpu": rate / args.gpus, "days": days,
            "gpu_hours": days * 24 * args.gpus}


def cmd_traffic(args, parser):
    cfg = model_from(args, parser)
    _, peak = gpu_from(args, parser)
    if args.gpus % (args.tp * args.pp) or args.gpus % args.gpus_per_node:
        parser.error(f"--gpus {args.gpus} must be a multiple of --tp x --pp and of "
                     "--gpus-per-node")
    t = traffic(cfg, args.gpus, args.gpus_per_node, args.global_batch, args.tp, args.pp,
                args.micro_batches, args.mfu, peak, args.nvlink_gbps, args.nic_gbps,
                args.nics_per_node)
    dp, sh, tp, pp = t["dp"], t["sharded"], t["tp"], t["pp"]
    print(describe(args.model, cfg))
    net = t["net"]
    print(f"{args.gpus} GPUs, {args.gpus_per_node} per node, {args.global_batch} sequences per "
          f"step, {args.mfu:.0%} MFU; bus bandwidth {args.nvlink_gbps:g} GB/s in a node, "
          f"{net['collective_gbps']:g} GB/s for a collective across nodes "
          f"({args.nics_per_node} cards x {args.nic_gbps:g}), {net['port_gbps']:g} GB/s per GPU "
          f"point to point")
    print(f"data parallel  {dp['sent_gb']:8.1f} GB per GPU per step  {dp['comm_s']:8.2f} s   "
          f"compute {dp['compute_s']:.2f} s")
    print(f"FSDP / ZeRO-3  {sh['sent_gb']:8.1f} GB per GPU per step  {sh['comm_s']:8.2f} s")
    print(f"HSDP           {sh['hsdp_sent_gb']:8.1f} GB per GPU per step  "
          f"{sh['hsdp_comm_s']:8.2f} s across nodes")
    print(f"TP {args.tp:<3}         {tp['calls']} all-reduces of {tp['activation_mb']:.1f} MB per "
          f"sequence: {tp['comm_ms_nvlink']:.0f} ms on NVLink, {tp['comm_ms_net']:.0f} ms "
          f"between nodes; compute {tp['compute_ms']:.0f} ms")
    print(f"PP {args.pp:<3}         {pp['boundary_mb']:.1f} MB per sequence per boundary, "
          f"{pp['send_ms']:.1f} ms; stage compute {pp['stage_ms']:.0f} ms; bubble "
          f"{pp['bubble']:.0%} at {args.micro_batches} micro-batches")
    if "ep" in t:
        ep = t["ep"]
        print(f"EP             {ep['kib_per_token']:.0f} KiB per token per MoE layer each way, "
              f"{ep['mb_per_layer']:.0f} MB per GPU: {ep['ms_per_layer_nvlink']:.1f} ms on "
              f"NVLink, {ep['ms_per_layer_net']:.1f} ms between nodes")
    return {"model": args.model, **t}


def main(argv=None):
    parser = Parser(description="FLOPs per token, GPU peaks, MFU, HFU and days to train.")
    sub = parser.add_subparsers(dest="command", required=True)
    model = Parser(add_help=False)
    model.add_argument("--model", default="llama2-7b", choices=[*MODELS, "custom"])
    for k, text in SHAPE.items():
        model.add_argument("--" + k.replace("_", "-"), type=positive(int), help=text)
    model.add_argument("--mlp", choices=["gated", "plain"], help="3 matrices (SwiGLU) or 2")
    model.add_argument("--head", choices=["tied", "untied"], help="LM head tied to embedding")
    model.add_argument("--causal", action="store_true", help="credit the causal mask (half "
                       "the QK^T and AV FLOPs); the default counts them in full")
    gpu = Parser(add_help=False)
    gpu.add_argument("--gpu", default="h100", help=f"{', '.join(GPUS)} (or the device name)")
    gpu.add_argument("--precision", default="bf16", help="the matmuls' precision")
    gpu.add_argument("--gpus", type=positive(int), default=1, help="GPUs in the run")
    recompute = Parser(add_help=False)
    recompute.add_argument("--recompute", choices=RECOMPUTE, default="none",
                           help="activation recomputation: HFU counts it, MFU does not")

    p = sub.add_parser("peaks", help="dense peak TFLOP/s and HBM per GPU")
    p.add_argument("--gpu", help="show one GPU")
    p.set_defaults(run=cmd_peaks)
    p = sub.add_parser("flops", parents=[model, recompute], help="FLOPs per token, by part")
    p.set_defaults(run=cmd_flops)
    p = sub.add_parser("mfu", parents=[model, gpu, recompute], help="MFU and HFU of a run")
    rate = p.add_mutually_exclusive_group(required=True)
    rate.add_argument("--tokens-per-s", type=positive(float), help="over all --gpus")
    rate.add_argument("--tokens-per-s-per-gpu", type=positive(float))
    rate.add_argument("--step-time", type=positive(float), help="seconds per optimizer step")
    p.add_argument("--global-batch", type=positive(int), help="sequences per step, all GPUs")
    p.set_defaults(run=cmd_mfu)
    p = sub.add_parser("days", parents=[model, gpu], help="days to train N tokens at an MFU")
    p.add_argument("--tokens", type=positive(float), required=True, help="e.g. 2e12")
    p.add_argument("--mfu", type=positive(float, 1), default=0.4, help="0.4 for 40%%")
    p.set_defaults(run=cmd_days)

    p = sub.add_parser("traffic", parents=[model, gpu], help="bytes each parallelism sends")
    p.add_argument("--gpus-per-node", type=positive(int), default=8)
    p.add_argument("--global-batch", type=positive(int), default=1024, help="sequences per step")
    p.add_argument("--tp", type=positive(int), default=8, help="tensor-parallel degree")
    p.add_argument("--pp", type=positive(int), default=16, help="pipeline stages")
    p.add_argument("--micro-batches", type=positive(int), default=64, help="per pipeline step")
    p.add_argument("--mfu", type=positive(float, 1), default=0.4, help="0.4 for 40%%")
    p.add_argument("--nvlink-gbps", type=positive(float), default=360,
                   help="bus bandwidth inside a node")
    p.add_argument("--nic-gbps", type=positive(float), default=48,
                   help="GB/s one network card delivers each way (96%% of a 400 Gb/s port)")
    p.add_argument("--nics-per-node", type=positive(int), default=8,
                   help="network cards per node for the compute fabric")
    p.set_defaults(run=cmd_traffic, gpus=1024)

    args = parser.parse_args(argv)
    print(json.dumps(args.run(args, parser)))


if __name__ == "__main__":
    main()
