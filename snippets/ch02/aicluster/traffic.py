"""What each parallelism sends per step, and how long that takes against the compute.

Byte counts follow the ring algorithm: an all-reduce sends and receives 2(n-1)/n of the
buffer through each rank's link, an all-gather or a reduce-scatter (n-1)/n of the full
tensor. Times divide those bytes by a bus bandwidth; compute times divide FLOPs by an MFU
times the peak.

    python snippets/ch02/aicluster/cli.py traffic --model llama2-70b
"""

from .flops import ModelConfig, params, training_flops


def ring(n: int) -> float:
    """Share of an all-reduce buffer each rank sends (and receives) in a ring."""
    return 2 * (n - 1) / n


def traffic(cfg: ModelConfig, gpus: int, gpus_per_node: int, global_batch: int, tp: int,
            pp: int, micro_batches: int, mfu: float, peak_tflops: float,
            nvlink_gbps: float, nic_gbps: float, nics: int | None = None) -> dict:
    """Bytes and seconds per GPU for data, sharded, tensor, pipeline and expert parallelism.

    >>> from aicluster.mfu import MODELS
    >>> t = traffic(MODELS["llama2-7b"], 1024, 8, 1024, 8, 16, 64, 0.4, 989, 360, 48)
    >>> t["dp"]["grad_gb"] == 2 * 6_738_415_616 / 1e9, round(t["pp"]["bubble"], 3)
    (True, 0.19)
    """
    nics = gpus_per_node if nics is None else nics
    n = params(cfg)[0]
    flops_token = training_flops(cfg)[0]
    rate = mfu * peak_tflops * 1e12  # useful FLOP/s of one GPU
    s, h = cfg.seq_len, cfg.hidden
    step_s = global_batch / gpus * s * flops_token / rate  # pure data parallelism
    # --8<-- [start:formulas]
    grad = 2 * n  # bf16 gradients, in bytes
    # Bus bandwidth of a collective across nodes.
    net_gbps = min(nvlink_gbps, nics * nic_gbps)
    # Bandwidth of a send or an all-to-all that leaves the node.
    port_gbps = nics * nic_gbps / gpus_per_node
    dp_bytes = ring(gpus) * grad  # all-reduce of the gradients
    # FSDP / ZeRO-3: all-gather the weights in forward and again in backward, and
    # reduce-scatter the gradients.
    fsdp_bytes = 3 * (gpus - 1) / gpus * 2 * n
    # HSDP: each GPU all-reduces its own shard with its peers in the other nodes.
    hsdp_bytes = ring(gpus // gpus_per_node) * grad / gpus_per_node
    # --8<-- [end:formulas]
    dp = {"grad_gb": grad / 1e9, "sent_gb": dp_bytes / 1e9,
          "comm_s": dp_bytes / (net_gbps * 1e9), "compute_s": step_s}
    sharded = {"sent_gb": fsdp_bytes / 1e9, "comm_s": fsdp_bytes / (net_gbps * 1e9),
               "hsdp_sent_gb": hsdp_bytes / 1e9,
               "hsdp_comm_s": hsdp_bytes / (port_gbps * 1e9)}
    # Megatron-style TP: per layer two all-reduces of the activations in forward and
    # two in backward, each of one micro-batch of one sequence (s x h, bf16).
    act = s * h * 2
    per_call = ring(tp) * act
    calls = 4 * cfg.layers
    tensor = {"activation_mb": act / 1e6, "calls": calls,
              "call_ms_nvlink": per_call / (nvlink_gbps * 1e9) * 1e3,
              "comm_ms_nvlink": calls * per_call / (nvlink_gbps * 1e9) * 1e3,
              # A TP group across nodes puts its ranks in different nodes: every hop of
              # its ring leaves through a card, at one GPU's share of them.
              "comm_ms_net": calls * per_call / (port_gbps * 1e9) * 1e3,
              "compute_ms": s * flops_token / (tp * rate) * 1e3}
    # PP: a sequence's activations cross each stage boundary once each way; the bubble
    # of the GPipe and 1F1B schedules is (p-1)/(m+p-1) for m micro-batches.
    pipeline = {"boundary_mb": act / 1e6, "send_ms": act / (port_gbps * 1e9) * 1e3,
                "stage_ms": s * flops_token / (pp * tp * rate) * 1e3,
                "bubble": (pp - 1) / (micro_batches + pp - 1),
                "bubble_2m": (pp - 1) / (2 * micro_batches + pp - 1)}
    result = {"params": n, "gpus": gpus, "dp": dp, "sharded": sharded, "tp": tensor,
              "pp": pipeline}
    if cfg.experts > 1:
        # EP: every MoE layer sends each token's hidden state to its experts and back.
        tokens = global_batch * s // gpus
        out = tokens * cfg.active_experts * h * 2
        result["ep"] = {"tokens_per_gpu": tokens, "kib_per_token": cfg.active_experts * h * 2
                        / 2**10, "mb_per_layer": out / 1e6,
                        "ms_per_layer_nvlink": out / (nvlink_gbps * 1e9) * 1e3,
                        "ms_per_layer_net": out / (port_gbps * 1e9) * 1e3}
    result["net"] = {"collective_gbps": net_gbps, "port_gbps": port_gbps}
    return result
