"""Measure how a mixture-of-experts model's router spreads tokens over experts and GPUs.

Runs text from Python's standard library through the model, records each layer's
top-k expert choices, and reports the load of the busiest expert and of the busiest
GPU under expert parallelism (experts placed in contiguous ranges, vLLM's default),
for batches of several sizes. Then it prices one MoE layer's communication per token.

    python snippets/ch07/moe_routing.py --model runs/ch07/moe --ep-size 2
    python snippets/ch07/moe_routing.py --model runs/ch07/moe-gpu --device cuda --tokens 65536
"""

import argparse
import json
import sys
import sysconfig
from pathlib import Path


def fail(msg):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


def stdlib_text(chars):
    root = Path(sysconfig.get_paths()["stdlib"])
    parts, size = [], 0
    for p in sorted(root.glob("*.py")):
        parts.append(p.read_text(encoding="utf-8", errors="replace"))
        size += len(parts[-1])
        if size >= chars:
            break
    return "".join(parts)


# --8<-- [start:imbalance]
def imbalance(choices, experts, ep_size, batch):
    """Max over mean load, of experts and of EP ranks, averaged over batches of `batch` tokens.

    choices: (tokens, k) expert ids of one layer. Rank r holds the contiguous range of
    experts [r * E/ep, (r + 1) * E/ep).
    """
    import torch

    per_rank = experts // ep_size
    out = {"expert": [], "rank": []}
    for b in range(0, choices.shape[0] - batch + 1, batch):
        c = choices[b : b + batch].flatten()
        load = torch.bincount(c, minlength=experts).float()
        ranks = load.view(ep_size, per_rank).sum(1)
        out["expert"].append((load.max() / load.mean()).item())
        out["rank"].append((ranks.max() / ranks.mean()).item())
    return {k: sum(v) / len(v) for k, v in out.items()}
# --8<-- [end:imbalance]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="runs/ch07/moe")
    ap.add_argument("--ep-size", type=int, default=2, help="GPUs the experts are spread over")
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 256, 4096])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="write the summary line to this file instead")
    args = ap.parse_args()
    cfg_path = Path(args.model) / "config.json"
    if not cfg_path.exists():
        fail(f"{args.model} is not a model folder (no config.json); run make_moe.py first")
    cfg = json.loads(cfg_path.read_text())
    experts, k = cfg.get("num_local_experts"), cfg.get("num_experts_per_tok")
    if not experts or not k:
        fail(f"{args.model} is not a mixture-of-experts model (no num_local_experts)")
    # vLLM would give the first E % ep ranks one expert more; we refuse an uneven split.
    if args.ep_size < 1 or experts % args.ep_size:
        fail(f"--ep-size {args.ep_size} does not divide the model's {experts} experts")
    if any(b < 1 or b > args.tokens for b in args.batch_sizes):
        fail(f"--batch-sizes must lie between 1 and --tokens {args.tokens}")

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()  # keep the output to the lines that matter

    if args.device == "cuda" and not torch.cuda.is_available():
        fail("--device cuda was given but this machine has no CUDA GPU")
    torch.manual_seed(args.seed)
    tok = AutoTokenizer.from_pretrained(args.model)
    ids = tok(stdlib_text(args.tokens * 8))["input_ids"][: args.tokens]
    if len(ids) < args.tokens:
        fail(f"the text gave only {len(ids)} tokens; ask for fewer with --tokens")
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(args.model).to(args.device, dtype).eval()
    layers = [[] for _ in range(cfg["num_hidden_layers"])]
    with torch.no_grad():
        for s in range(0, len(ids), args.seq_len):
            x = torch.tensor([ids[s : s + args.seq_len]], device=args.device)
            out = model(x, output_router_logits=True)
            for i, logits in enumerate(out.router_logits):  # one (tokens, experts) per layer
                layers[i].append(logits.float().topk(k, dim=-1).indices.cpu())
    choices = [torch.cat(c) for c in layers]
    g = torch.Generator().manual_seed(args.seed)
    uniform = torch.rand(len(ids), experts, generator=g).topk(k, dim=-1).indices

    print(f"{args.model}: {len(choices)} MoE layers, {experts} experts, top-{k}, "
          f"{len(ids)} tokens, EP over {args.ep_size} GPUs")
    print(f"{'batch':>6} {'busiest expert':>15} {'busiest GPU':>12} {'uniform GPU':>12}")
    params = sum(t.numel() for t in model.parameters())
    summary = {"experts": experts, "top_k": k, "ep_size": args.ep_size, "tokens": len(ids),
               "params_b": round(params / 1e9, 2)}
    for b in args.batch_sizes:
        per_layer = [imbalance(c, experts, args.ep_size, b) for c in choices]
        ex = sum(p["expert"] for p in per_layer) / len(per_layer)
        rk = sum(p["rank"] for p in per_layer) / len(per_layer)
        un = imbalance(uniform, experts, args.ep_size, b)["rank"]
        print(f"{b:6d} {ex:14.2f}x {rk:11.2f}x {un:11.2f}x")
        summary[f"expert_imbalance_{b}"] = round(ex, 3)
        summary[f"rank_imbalance_{b}"] = round(rk, 3)
        summary[f"uniform_rank_imbalance_{b}"] = round(un, 3)

    # --8<-- [start:bytes]
    h, elt = cfg["hidden_size"], 2  # bf16 activations
    per_rank = experts // args.ep_size
    all_ranks = torch.cat(choices) // per_rank  # the GPU each choice lands on
    remote = sum(len(set(r.tolist()) - {0}) for r in all_ranks) / len(all_ranks)
    # All-to-all: a token goes once to each other GPU that holds one of its experts
    # (measured from the routing, as if the token lived on GPU 0), and comes back.
    a2a = 2 * remote * h * elt
    # Tensor parallelism: the MoE output is all-reduced; a ring moves 2(n-1)/n of it per GPU.
    tp = 2 * (args.ep_size - 1) / args.ep_size * h * elt
    # --8<-- [end:bytes]
    print(f"per token and MoE layer: all-to-all {a2a:.0f} bytes to and from "
          f"{remote:.2f} other GPU(s) on average; TP all-reduce {tp:.0f} bytes per GPU")
    summary.update(remote_gpus_per_token=round(remote, 3), a2a_bytes_per_token_layer=round(a2a),
                   tp_allreduce_bytes_per_token_layer=round(tp))
    if args.out:  # for collect.py, which prints the run's summary line
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(summary) + "\n")
    else:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
