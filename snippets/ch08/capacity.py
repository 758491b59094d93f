"""What one training pod asks of an 8 x H200 node, what its checkpoints ask of the volume,
and what a restart costs.

The node shape is the one the chapter plans for, in the units `kubectl describe node`
reports; check_semantics.py holds every pod of the chapter's manifests against it. The
step times are a training run's own: the steady ms/step, and the mean ms/step of the first
logged interval, which includes compiling the model.

    python snippets/ch08/capacity.py --write-gbps 2 --read-gbps 2 --step-ms 757 --first-steps-ms 3646
"""  # noqa: E501

import argparse
import json
import math
import sys
from pathlib import Path

from manifests import load, pod_requests, quantity, workloads

GiB = 2**30
# An 8 x H200 node: two 56-core Xeon Platinum 8480C with SMT on and 2 TB of memory, as in
# NVIDIA's H200 systems. The kubelet counts logical CPUs, two per core: 224, not 112.
NODE = {"cpu": 224, "memory": 2048 * GiB, "nvidia.com/gpu": 8,
        # rdmaHcaMax of the RDMA shared device plugin: how many pods may share the HCAs.
        "rdma/hca_shared_devices_a": 1000}
# What the kubelet keeps for itself and the OS (kubeReserved + systemReserved + the
# eviction threshold in its configuration): our choice for this node, not a default.
RESERVED = {"cpu": 16, "memory": 128 * GiB}
# The node agents every GPU node runs (GPU Operator, DCGM exporter, CNI, RDMA plugin,
# storage and log agents): a budget to keep free, not a measurement.
DAEMONSETS = {"cpu": 8, "memory": 32 * GiB}
# GPU nodes carry this taint, so that only pods that ask for GPUs land on them.
TAINTS = [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]


def for_pods():
    """What pods can request on one node: capacity less the kubelet's and the agents' share."""
    return {k: v - RESERVED.get(k, 0) - DAEMONSETS.get(k, 0) for k, v in NODE.items()}


def checkpoint_bytes(preset="1b"):
    """fp32 weights and AdamW's two moments: 12 bytes per parameter of chapter 3's GPT."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ch03"))
    import torch
    from gpt import GPT, PRESETS

    with torch.device("meta"):
        params = GPT(PRESETS[preset]).num_params()
    return params, 12 * params


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write-gbps", type=float, default=2.0,
                    help="write bandwidth one pod gets from the checkpoint volume, GB/s")
    ap.add_argument("--read-gbps", type=float, default=2.0,
                    help="read bandwidth one pod gets from the checkpoint volume, GB/s")
    ap.add_argument("--step-ms", type=float, default=757.0,
                    help="steady time of one training step, ms")
    ap.add_argument("--first-steps-ms", type=float, default=3646.0,
                    help="mean time of the first --log-every steps, compiling included, ms")
    ap.add_argument("--log-every", type=int, default=10, help="steps in the first logged interval")
    ap.add_argument("--hours-between-restarts", type=float, default=24.0,
                    help="mean time between interruptions of the job (failures, preemptions), h")
    args = ap.parse_args()
    if min(args.write_gbps, args.read_gbps, args.step_ms, args.log_every,
           args.hours_between_restarts) <= 0:
        sys.exit("error: bandwidths, --step-ms, --log-every and --hours-between-restarts "
                 "must be positive")
    if args.first_steps_ms < args.step_ms:
        sys.exit("error: --first-steps-ms is the slower, compiling interval: at least --step-ms")
    job = next(w for w in workloads(load(["snippets/ch08/train-job.yaml"])) if w.doc.kind == "Job")
    pod = pod_requests(job.template["spec"])
    free = for_pods()
    print("resource         node  reserved  agents  for pods  one pod  left")
    rows = {}
    for k, unit in (("cpu", 1), ("memory", GiB), ("nvidia.com/gpu", 1)):
        r = [NODE[k], RESERVED.get(k, 0), DAEMONSETS.get(k, 0), free[k], pod.get(k, 0)]
        r = [x / unit for x in r] + [(free[k] - pod.get(k, 0)) / unit]
        rows[k] = r
        name = k + (" (GiB)" if unit == GiB else "")
        widths = (6, 10, 8, 10, 9, 6)
        print(f"{name:15}" + "".join(f"{x:>{w}.0f}" for x, w in zip(r, widths, strict=True)))
    gpus = NODE["nvidia.com/gpu"]
    shm = next(quantity(v["emptyDir"]["sizeLimit"]) for v in job.template["spec"]["volumes"]
               if v["name"] == "dshm")
    print(f"per GPU: {pod['cpu'] / gpus:.0f} logical CPUs ({pod['cpu'] / gpus / 2:.0f} cores) and "
          f"{pod['memory'] / gpus / GiB:.0f} GiB; /dev/shm takes up to {shm / GiB:.0f} GiB of it")

    params, ckpt = checkpoint_bytes()
    flags = dict(a.split("=", 1) for a in job.template["spec"]["containers"][0]["args"] if "=" in a)
    steps, save_every = int(flags["--steps"]), int(flags["--save-every"])
    saves = steps // save_every
    pvc = quantity(next(d for d in load(["snippets/ch08/checkpoints-pvc.yaml"])).obj
                   ["spec"]["resources"]["requests"]["storage"])
    save_s = ckpt / 1e9 / args.write_gbps
    # Chapter 3's format: rank 0 writes one file, and every pod reads all of it to resume.
    load_s = ckpt / 1e9 / args.read_gbps
    print(f"checkpoint of the 1b preset ({params / 1e6:.1f}M parameters): {ckpt / 1e9:.2f} GB, "
          f"{save_s:.1f} s to write at {args.write_gbps:g} GB/s, "
          f"{load_s:.1f} s for a pod to read at {args.read_gbps:g} GB/s")
    print(f"  DDP keeps 2 and writes a third: {3 * ckpt / 1e9:.1f} GB; DCP keeps all "
          f"{saves} saves: {saves * ckpt / 1e9:.1f} GB; the claim asks for {pvc / 1e9:.0f} GB")

    # A restart pays these before training continues; image pull and scheduling are the
    # cluster's own, measured there.
    warmup_s = (args.first_steps_ms - args.step_ms) * args.log_every / 1000
    lost_s = save_every / 2 * args.step_ms / 1000  # on average, half an interval is redone
    total_s = load_s + warmup_s + lost_s
    # Young's first-order optimum: save every sqrt(2 x save time x time between interruptions).
    best_s = math.sqrt(2 * save_s * args.hours_between_restarts * 3600)
    best_steps = best_s * 1000 / args.step_ms
    # Share of the time a synchronous save costs at the manifest's interval, and the
    # time saving and redoing cost together at the optimum, sqrt(2 x save / between).
    save_share = save_s / (save_every * args.step_ms / 1000)
    best_share = math.sqrt(2 * save_s / (args.hours_between_restarts * 3600))
    print(f"restart: load {load_s:.1f} s + compile warm-up {warmup_s:.1f} s + lost work "
          f"{lost_s:.1f} s (half of --save-every={save_every}) = {total_s:.1f} s, "
          f"before image pull and scheduling")
    print(f"saving every {save_every} steps costs {save_share:.1%} of the time; with one "
          f"interruption every {args.hours_between_restarts:g} h, save every "
          f"{best_s / 60:.0f} min, about {best_steps:.0f} steps, for {best_share:.1%} in all")
    print(json.dumps({
        "cpu_left": rows["cpu"][5], "memory_left_gib": rows["memory"][5],
        "gpu_left": rows["nvidia.com/gpu"][5], "cpu_node": NODE["cpu"],
        "cpu_for_pods": rows["cpu"][3], "memory_for_pods_gib": rows["memory"][3],
        "cpu_per_gpu": pod["cpu"] / gpus, "cores_per_gpu": pod["cpu"] / gpus / 2,
        "memory_per_gpu_gib": pod["memory"] / gpus / GiB, "shm_gib": shm / GiB,
        "params": params, "checkpoint_gb": round(ckpt / 1e9, 2), "write_gbps": args.write_gbps,
        "save_s": round(save_s, 1),
        "read_gbps": args.read_gbps, "load_s": round(load_s, 1),
        "ddp_ckpt_gb": round(3 * ckpt / 1e9, 1), "dcp_saves": saves,
        "dcp_gb": round(saves * ckpt / 1e9, 1), "pvc_gb": round(pvc / 1e9),
        "step_ms": args.step_ms, "save_every": save_every, "warmup_s": round(warmup_s, 1),
        "lost_s": round(lost_s, 1), "restart_s": round(total_s, 1),
        "hours_between_restarts": args.hours_between_restarts,
        "best_save_min": round(best_s / 60, 1), "best_save_steps": round(best_steps),
        "save_share": round(save_share, 4), "best_share": round(best_share, 4)}))


if __name__ == "__main__":
    main()
