"""What ZeRO++ saves: bytes each GPU sends per step under ZeRO-3 and ZeRO++, by link.

ZeRO-3 all-gathers the bf16 weights in forward and again in backward, and
reduce-scatters the bf16 gradients: about three times the model's bf16 bytes per GPU
per step, most of it across nodes once a job spans them. ZeRO++ (Wang et al., 2023)
cuts that in three ways:

  qwZ  zero_quantized_weights     the forward all-gather moves int8 weights
  hpZ  zero_hpz_partition_size    backward gathers from a second, per-node copy
  qgZ  zero_quantized_gradients   gradients travel as int4, reduced within the node first

    python snippets/ch05/zeropp_math.py --preset 1b --nodes 4 --gpus-per-node 8
"""

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ch03"))
from gpt import PRESETS, build  # noqa: E402


# --8<-- [start:volumes]
def volumes(params, nodes, gpus):
    """Bytes one GPU receives per step, split into (across nodes, within its node).

    Assumes each GPU's peers in a collective are spread evenly over the nodes.
    """
    world = nodes * gpus
    share = (world - 1) / world  # the part of a collective's data each GPU receives
    outside = (world - gpus) / (world - 1)  # the part of its peers in other nodes
    bf16, int8, int4 = 2 * params, params, params / 2
    zero3 = {"fwd all-gather": bf16 * share, "bwd all-gather": bf16 * share,
             "grad reduce-scatter": bf16 * share}
    zpp = {"fwd all-gather": int8 * share,  # qwZ: int8 on the wire
           "bwd all-gather": bf16 * (gpus - 1) / gpus,  # hpZ: inside the node only
           "grad reduce-scatter": int4 * share}  # qgZ: int4 on the wire
    # ZeRO++'s backward gather never leaves the node; everything else crosses in proportion.
    cross = {"zero3": sum(zero3.values()) * outside,
             "zero++": (zpp["fwd all-gather"] + zpp["grad reduce-scatter"]) * outside}
    return {name: {"across_nodes": cross[name], "within_node": sum(t.values()) - cross[name]}
            for name, t in (("zero3", zero3), ("zero++", zpp))}
# --8<-- [end:volumes]


def in_gb(split, hpz_extra_bytes):
    """The same split with a _gb twin of each entry, and hpZ's extra memory per GPU."""
    split["zero++"]["hpz_extra_bytes"] = hpz_extra_bytes
    for name in split:
        split[name].update({k.replace("bytes", "gb") if "bytes" in k else k + "_gb": v / 1e9
                            for k, v in list(split[name].items())})
    return split


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=list(PRESETS), default="1b")
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--gpus-per-node", type=int, default=8)
    args = ap.parse_args()
    if args.nodes < 2 or args.gpus_per_node < 1:
        sys.exit("error: ZeRO++ is about traffic between nodes: use --nodes 2 or more")
    with torch.device("meta"):
        n = build(args.preset).num_params()
    # hpZ's price: each GPU also keeps a bf16 shard of the weights over its node's GPUs.
    v = in_gb(volumes(n, args.nodes, args.gpus_per_node), 2 * n / args.gpus_per_node)
    gb = 1e9
    print(f"{args.preset}: {n / 1e9:.2f}B parameters on {args.nodes} nodes x "
          f"{args.gpus_per_node} GPUs; GB each GPU receives per step")
    print(f"{'':<8}{'across nodes':>14}{'within node':>14}")
    for name in ("zero3", "zero++"):
        print(f"{name:<8}{v[name]['across_nodes'] / gb:14.2f}{v[name]['within_node'] / gb:14.2f}")
    ratio = v["zero3"]["across_nodes"] / v["zero++"]["across_nodes"]
    print(f"ZeRO++ sends {ratio:.1f}x less across nodes; hpZ keeps "
          f"{v['zero++']['hpz_extra_bytes'] / gb:.2f} GB more per GPU")
    print(json.dumps({"params": n, "nodes": args.nodes, "gpus_per_node": args.gpus_per_node,
                      **{k: {kk: round(vv, 3) if kk.endswith("gb") else round(vv)
                             for kk, vv in d.items()} for k, d in v.items()},
                      "cross_node_reduction": round(ratio, 3)}))


if __name__ == "__main__":
    main()
