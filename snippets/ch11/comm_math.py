"""Bytes per federated round, what compression and LoRA adapters save, and how long pushing
a model to a fleet of devices takes: the arithmetic, with every input a flag.

    python snippets/ch11/comm_math.py --clients 100 --uplink-mbps 20 --devices 1000000
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ch02"))
from aicluster.flops import params  # noqa: E402
from aicluster.mfu import MODELS  # noqa: E402


# --8<-- [start:round-bytes]
def payloads(params: int, topk: float) -> dict[str, float]:
    """Bytes of one model update in each encoding: fp32; int8 with one fp32 scale per
    tensor (negligible here); top-k sparsified, each kept value an fp32 plus an int32 index."""
    return {"fp32": 4.0 * params, "int8": 1.0 * params, "topk": 8.0 * params * topk}


def lora_params(m, rank: int, targets: list[str]) -> int:
    """A LoRA adapter on a linear layer of shape (in, out) has r * (in + out) parameters;
    m is one of the model shapes in Chapter 2's aicluster.mfu.MODELS."""
    d, kv = m.hidden, m.kv_heads * m.head_dim
    shapes = {"q": (d, d), "k": (d, kv), "v": (d, kv), "o": (d, d),
              "gate": (d, m.ffn), "up": (d, m.ffn), "down": (m.ffn, d)}
    return m.layers * sum(rank * sum(shapes[t]) for t in targets)
# --8<-- [end:round-bytes]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=100, help="clients sampled per round")
    ap.add_argument("--topk", type=float, default=0.01, help="fraction of entries kept")
    ap.add_argument("--uplink-mbps", type=float, default=20.0, help="a client's upload, Mbit/s")
    ap.add_argument("--busbw-gbps", type=float, default=330.0,
                    help="data-centre all-reduce bus bandwidth, GB/s (chapter 2)")
    ap.add_argument("--gpus", type=int, default=8, help="GPUs in the data-centre ring")
    ap.add_argument("--devices", type=int, default=1_000_000, help="fleet to update")
    ap.add_argument("--egress-gbps", type=float, default=10.0, help="server egress, Gbit/s")
    ap.add_argument("--model-mb", type=float, default=500.0, help="edge model to push, MB")
    ap.add_argument("--waves", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    ap.add_argument("--rank", type=int, default=16, help="LoRA rank for the 7B adapters")
    a = ap.parse_args()
    if min(a.clients, a.devices, a.gpus, a.rank) < 1 or not 0 < a.topk <= 1 or a.uplink_mbps <= 0:
        sys.exit("error: counts must be positive, --topk in (0, 1], bandwidths above 0")
    m7 = MODELS["llama2-7b"]
    models = {"mlp": ("digits MLP (this chapter)", 4_810),
              "gpt1b": ("GPT 1B (chapter 3)", 977_348_608),
              "llama7b": ("Llama 2 7B (chapter 1)", params(m7)[0]),
              "lora_all": (f"7B LoRA r={a.rank}, all linear",
                           lora_params(m7, a.rank, ["q", "k", "v", "o", "gate", "up", "down"])),
              "lora_qv": ("7B LoRA r=8, q and v", lora_params(m7, 8, ["q", "v"]))}

    out = {"models": {}}
    print(f"One round, {a.clients} clients: the model goes down to each, an update comes back")
    print(f"{'model':<26} {'params':>14} {'per client up, MB':>34} {'server in, GB':>14}")
    print(f"{'':<26} {'':>14} {'fp32':>10} {'int8':>10} {'top-' + format(a.topk, '.0%'):>12}"
          f" {'fp32':>14}")
    for key, (name, p) in models.items():
        b = payloads(p, a.topk)
        up_s = {k: v * 8 / (a.uplink_mbps * 1e6) for k, v in b.items()}
        ring_s = 2 * (a.gpus - 1) / a.gpus * b["fp32"] / (a.busbw_gbps * 1e9)
        out["models"][key] = {"params": p, "mb": {k: v / 1e6 for k, v in b.items()},
                              "upload_min": {k: v / 60 for k, v in up_s.items()},
                              "server_in_gb": b["fp32"] * a.clients / 1e9, "ring_ms": ring_s * 1e3}
        print(f"{name:<26} {p:>14,} {b['fp32'] / 1e6:>10.3f} {b['int8'] / 1e6:>10.3f}"
              f" {b['topk'] / 1e6:>12.3f} {b['fp32'] * a.clients / 1e9:>14.3f}")
    g = out["models"]["gpt1b"]
    up = g["upload_min"]
    print(f"GPT 1B upload at {a.uplink_mbps:g} Mbit/s: fp32 {up['fp32']:.0f} min, "
          f"int8 {up['int8']:.0f} min, top-{a.topk:.0%} {up['topk']:.1f} min")
    out["upload_over_ring"] = up["fp32"] * 60e3 / g["ring_ms"]
    print(f"the same fp32 gradients in a ring all-reduce over {a.gpus} GPUs at "
          f"{a.busbw_gbps:g} GB/s: {g['ring_ms']:.0f} ms; the upload takes "
          f"{out['upload_over_ring']:,.0f} times as long")
    full, lora = out["models"]["llama7b"], out["models"]["lora_all"]
    out["lora_share"] = lora["params"] / full["params"]
    out["lora_upload_s"] = lora["upload_min"]["fp32"] * 60
    # A client's training memory (chapter 1's 16 bytes per trained parameter), activations
    # aside: full fine-tuning trains everything; LoRA keeps bf16 weights frozen (2 bytes).
    out["client_gb"] = {"full": 16 * full["params"] / 1e9,
                        "lora": (2 * full["params"] + 16 * lora["params"]) / 1e9}
    print(f"7B: the r={a.rank} adapter is {out['lora_share']:.2%} of the weights, "
          f"{out['lora_upload_s']:.0f} s up in fp32 against {full['upload_min']['fp32']:.0f} min; "
          f"a client trains in {out['client_gb']['lora']:.1f} GB instead of "
          f"{out['client_gb']['full']:.0f} GB")

    total = a.devices * a.model_mb * 1e6  # every device downloads the model once
    print(f"Pushing a {a.model_mb:g} MB model to {a.devices:,} devices: {total / 1e12:.1f} TB")
    done, waves = 0.0, []
    for share in a.waves:  # staged rollout: each wave brings the fleet up to `share`
        n = round(a.devices * share) - done
        hours = n * a.model_mb * 1e6 * 8 / (a.egress_gbps * 1e9) / 3600
        waves.append({"share": share, "devices": n, "hours": hours})
        print(f"  wave to {share:>4.0%}: {n:>10,.0f} devices, "
              f"{hours:6.2f} h at {a.egress_gbps:g} Gbit/s")
        done += n
    out.update(total_tb=total / 1e12, waves=waves,
               push_hours=sum(w["hours"] for w in waves))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
