"""What one FSDP2 step sends, computes and keeps, for one of chapter 3's GPT presets.

The arithmetic behind chapter 4's estimates, for n ranks: bytes per rank and step of
FSDP2's bf16 all-gathers and fp32 reduce-scatters against DDP's fp32 all-reduce, their
time at a bus bandwidth, the compute they hide behind, the activations a block keeps
with and without checkpointing, and what offloading the state moves over PCIe.

    python snippets/ch04/step_math.py --preset 1b --ranks 2
    python snippets/ch04/step_math.py --preset 1b --d-model 5120 --n-head 40 --n-layer 38 --ranks 2
"""  # noqa: E501

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ch03"))
from gpt import PRESETS, build  # noqa: E402

SIZES = ("n_layer", "d_model", "n_head", "seq_len", "vocab_size")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=list(PRESETS), default="1b")
    for name in SIZES:
        ap.add_argument("--" + name.replace("_", "-"), type=int, help="override the preset")
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--micro-batch", type=int, default=8, help="sequences per rank")
    ap.add_argument("--busbw-gbps", type=float, default=360, help="NVLink bus bandwidth")
    ap.add_argument("--gpus-per-node", type=int, default=8)
    ap.add_argument("--nic-gbps", type=float, default=48, help="one network card, each way")
    ap.add_argument("--nics-per-node", type=int, nargs="+", default=[8, 1],
                    help="node designs to price when --ranks spans nodes")
    ap.add_argument("--pcie-gbps", type=float, default=64, help="PCIe Gen5 x16, each way")
    ap.add_argument("--mfu", type=float, default=0.5)
    ap.add_argument("--peak-tflops", type=float, default=989, help="dense bf16, H100/H200 SXM")
    args = ap.parse_args()
    if min(args.ranks, args.micro_batch, args.busbw_gbps, args.pcie_gbps, args.peak_tflops,
           args.gpus_per_node, args.nic_gbps, *args.nics_per_node) <= 0:
        sys.exit("error: --ranks, --micro-batch, the bandwidths, the peak and the counts "
                 "must be positive")
    if not 0 < args.mfu <= 1:
        sys.exit(f"error: --mfu must be in (0, 1], got {args.mfu}")
    with torch.device("meta"):  # shapes only
        model = build(args.preset, **{k: getattr(args, k) for k in SIZES})
    c, n, r = model.cfg, model.num_params(), args.ranks
    block = sum(p.numel() for p in model.blocks[0].parameters())
    tokens = args.micro_batch * c.seq_len
    share = (r - 1) / r
    fsdp = 2 * share * 2 * n + share * 4 * n  # two bf16 all-gathers, one fp32 reduce-scatter
    ddp = 2 * share * 4 * n  # one fp32 all-reduce
    one_wrap = share * 2 * n + share * 4 * n  # the root is not resharded: no backward gather
    flops = model.flops_per_token()
    peak = args.peak_tflops * 1e12
    # A block keeps about 16 vectors of width d per token for backward, bf16: the inputs
    # of both norms and of the QKV and MLP projections, Q, K, V, the attention output, and
    # the MLP's two 4d-wide intermediates.
    act_block = 16 * c.d_model * tokens * 2
    recompute = 2 * (12 * c.n_layer * c.d_model**2) + 4 * c.n_layer * c.seq_len * c.d_model
    shard_fp32 = 4 * n / r
    result = {
        "params": n, "block_params": block, "ranks": r, "tokens_per_rank": tokens,
        "state_gb": 16 * n / 1e9, "state_gb_per_rank": 16 * n / r / 1e9,
        "state_gib_per_rank": 16 * n / r / 2**30,
        "fsdp_gb": fsdp / 1e9, "ddp_gb": ddp / 1e9, "comm_ms": fsdp / (args.busbw_gbps * 1e9) * 1e3,
        "one_wrap_gb": one_wrap / 1e9, "one_wrap_ms": one_wrap / (args.busbw_gbps * 1e9) * 1e3,
        "compute_ms_peak": tokens * flops / peak * 1e3,
        "compute_ms_mfu": tokens * flops / (args.mfu * peak) * 1e3,
        "block_bf16_mb": 2 * block / 1e6, "noreshard_gib": (c.n_layer - 1) * 2 * block / 2**30,
        "act_block_gib": act_block / 2**30, "act_gib": c.n_layer * act_block / 2**30,
        "ac_input_mib": tokens * c.d_model * 2 / 2**20,
        "ac_inputs_gib": c.n_layer * tokens * c.d_model * 2 / 2**30,
        "logits_gib_bf16": tokens * c.vocab_size * 2 / 2**30,
        "ac_extra_gflop": recompute / 1e9, "ac_extra_share": recompute / flops,
        "ac_speed_at_equal_efficiency": flops / (flops + recompute),
        "offload_shard_gb": shard_fp32 / 1e9,
        "offload_up_ms": 2 * shard_fp32 / (args.pcie_gbps * 1e9) * 1e3,
        "offload_down_ms": shard_fp32 / (args.pcie_gbps * 1e9) * 1e3,
    }
    # The peak of a checkpointed step, in backward: the state, every block's input, one
    # block's activations while it is recomputed, two gathered blocks (this one and the
    # prefetched one), one block's gradients in bf16 and in fp32 for the reduce-scatter,
    # the root's gathered embedding, and the logits in bf16 with one fp32 copy at a time.
    root = sum(p.numel() for p in model.parameters()) - c.n_layer * block
    result["ac_peak_gib"] = (16 * n / r + c.n_layer * tokens * c.d_model * 2 + act_block
                             + 2 * 2 * block + 6 * block + 2 * root
                             + 3 * tokens * c.vocab_size * 2) / 2**30
    if r > args.gpus_per_node:  # chapter 2's model: a collective across nodes runs at the
        # cards' sum, capped by NVLink's bus bandwidth; its rings split the bytes over the cards
        replicas = r // args.gpus_per_node
        # HSDP, one replica per node: each GPU all-reduces its fp32 gradient shard with its
        # peers in the other nodes, on its share of the node's cards (chapter 2's hsdp_bytes)
        hsdp = 2 * (replicas - 1) / replicas * 4 * n / args.gpus_per_node
        for nics in args.nics_per_node:
            bw = min(nics * args.nic_gbps, args.busbw_gbps)
            port = nics * args.nic_gbps / args.gpus_per_node
            result[f"nodes_{nics}_nics"] = {
                "busbw_gbps": bw, "comm_ms": fsdp / (bw * 1e9) * 1e3,
                "one_wrap_ms": one_wrap / (bw * 1e9) * 1e3,
                "card_gb": fsdp / nics / 1e9, "port_gbps": port,
                "hsdp_gb": hsdp / 1e9, "hsdp_card_gb": hsdp * args.gpus_per_node / nics / 1e9,
                "hsdp_ms": hsdp / (port * 1e9) * 1e3}
    print(f"{n / 1e9:.2f}B parameters, {r} ranks, {tokens:,} tokens per rank per step")
    print(f"per rank and step: FSDP2 {result['fsdp_gb']:.2f} GB, DDP {result['ddp_gb']:.2f} GB; "
          f"{result['comm_ms']:.0f} ms at {args.busbw_gbps:g} GB/s against "
          f"{result['compute_ms_mfu']:.0f} ms of compute at {args.mfu:.0%} MFU")
    print(f"one fully_shard(model), all exposed: {result['one_wrap_gb']:.2f} GB, "
          f"{result['one_wrap_ms']:.0f} ms at {args.busbw_gbps:g} GB/s")
    for nics in args.nics_per_node if r > args.gpus_per_node else []:
        x = result[f"nodes_{nics}_nics"]
        print(f"across nodes of {args.gpus_per_node} GPUs, {nics} x {args.nic_gbps:g} GB/s cards: "
              f"{x['busbw_gbps']:g} GB/s, FSDP2 {x['comm_ms']:.0f} ms, "
              f"one fully_shard {x['one_wrap_ms']:.0f} ms; per card FSDP2 {x['card_gb']:.2f} GB, "
              f"HSDP {x['hsdp_card_gb']:.2f} GB in {x['hsdp_ms']:.0f} ms")
    print(f"state {result['state_gb']:.1f} GB, {result['state_gb_per_rank']:.1f} GB per rank; "
          f"a block gathered in bf16 {result['block_bf16_mb']:.1f} MB")
    print(f"activations kept: {result['act_block_gib']:.2f} GiB per block, "
          f"{result['act_gib']:.1f} GiB in all; checkpointed {result['ac_inputs_gib']:.2f} GiB; "
          f"recompute adds {result['ac_extra_share']:.0%} FLOPs")
    print(f"predicted peak with checkpointing: {result['ac_peak_gib']:.1f} GiB per rank")
    print(f"offload: {result['offload_shard_gb']:.2f} GB fp32 shard, "
          f"{result['offload_up_ms']:.0f} ms up and {result['offload_down_ms']:.0f} ms down per "
          "step over PCIe")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
