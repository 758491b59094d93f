"""Timing a training step the way a performance engineer does, and the ways it goes wrong.

The step is a small MLP's forward, backward and optimizer update. The script reports
the first step apart from the rest (it pays for allocation and kernel selection), the
median and tail of the steady state, and throughput. On a GPU it also times the step
without synchronising, which measures how fast Python can queue kernels, not how fast
the GPU runs them.

    python snippets/ch01/timing.py
    python snippets/ch01/timing.py --device cuda --width 8192 --batch 8192
"""

import argparse
import json
import statistics
import sys
import time

import torch


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--width", type=int, default=512, help="hidden size of the MLP")
    ap.add_argument("--batch", type=int, default=256, help="samples per step")
    ap.add_argument("--steps", type=int, default=50)
    args = ap.parse_args()
    if min(args.width, args.batch, args.steps) <= 0:
        sys.exit("error: --width, --batch and --steps must be positive")
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda was given but this machine has no CUDA GPU")
    return args


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main():
    args = parse_args()
    torch.manual_seed(0)
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = torch.nn.Sequential(
        torch.nn.Linear(args.width, 4 * args.width), torch.nn.GELU(),
        torch.nn.Linear(4 * args.width, args.width),
    ).to(device, dtype)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.randn(args.batch, args.width, device=device, dtype=dtype)

    def step():
        loss = model(x).float().square().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    # --8<-- [start:timed]
    times = []
    for _ in range(args.steps):
        sync(device)  # start the clock only when earlier work has finished
        t0 = time.perf_counter()
        step()
        sync(device)  # and stop it when this step's kernels have run
        times.append(time.perf_counter() - t0)
    first, steady = times[0], sorted(times[1:])
    median = statistics.median(steady)
    p99 = steady[min(len(steady) - 1, int(0.99 * len(steady)))]
    # --8<-- [end:timed]

    # The same loop without synchronising: on a GPU this times the kernel launches only.
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    unsynced = (time.perf_counter() - t0) / args.steps
    sync(device)

    flops = 3 * 2 * 2 * args.batch * args.width * 4 * args.width  # 2 matmuls, fwd+bwd
    print(f"device {device}, {dtype}, width {args.width}, batch {args.batch}")
    print(f"first step      {first * 1e3:9.2f} ms")
    print(f"median step     {median * 1e3:9.2f} ms")
    print(f"p99 step        {p99 * 1e3:9.2f} ms")
    print(f"unsynchronised  {unsynced * 1e3:9.2f} ms per step (queueing time only on a GPU)")
    print(f"throughput      {args.batch / median:9.0f} samples/s, {flops / median / 1e12:.2f} TFLOP/s")
    print(json.dumps({
        "device": device.type, "first_ms": first * 1e3, "median_ms": median * 1e3,
        "p99_ms": p99 * 1e3, "unsynced_ms": unsynced * 1e3,
        "samples_per_s": args.batch / median, "tflops": flops / median / 1e12,
    }))


if __name__ == "__main__":
    main()
