"""The federated model on an edge CPU: export to ONNX, quantize to int8, and measure size,
accuracy and latency with onnxruntime.

    python snippets/ch11/edge_onnx.py --model runs/ch11/model.npz --data runs/ch11/data/dir
"""

import argparse
import json
import logging
import re
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_dynamic,
    quantize_static,
)


class MLP(torch.nn.Module):
    """fedapp/task.py's model as a PyTorch module: same names, same layout."""

    def __init__(self, hidden: int, extra_op: bool = False):
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(64, hidden), torch.nn.Linear(hidden, 10)
        self.extra_op = extra_op

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        if self.extra_op:  # a "robust" pooling feature built on an op ONNX has no translation for
            h = h + torch.kthvalue(h, 2, dim=1, keepdim=True).values
        return self.fc2(h)


class Digits(CalibrationDataReader):
    """Feeds calibration batches to quantize_static, which records activation ranges."""

    def __init__(self, x):
        self.batches = iter([{"x": x[i : i + 64]} for i in range(0, len(x), 64)])

    def get_next(self):
        return next(self.batches, None)


def latency_us(session, x, repeats):
    """Per-call latencies in microseconds, after a warm-up."""
    for _ in range(20):
        session.run(None, {"x": x})
    times = np.empty(repeats)
    for i in range(repeats):
        t = time.perf_counter()
        session.run(None, {"x": x})
        times[i] = time.perf_counter() - t
    return times * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="runs/ch11/model.npz", help="weights from simulate.py")
    ap.add_argument("--data", default="runs/ch11/data/dir", help="folder with test.npz and clients")
    ap.add_argument("--out", default="runs/ch11/onnx")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    ap.add_argument("--repeats", type=int, default=2000)
    ap.add_argument("--extra-op", action="store_true", help="add a layer ONNX cannot express")
    args = ap.parse_args()
    if not Path(args.model).exists():
        sys.exit(f"error: {args.model} does not exist: run simulate.py with --save-model first")
    if args.threads < 1 or args.repeats < 10:
        sys.exit("error: --threads must be at least 1 and --repeats at least 10")
    torch.manual_seed(0)
    logging.getLogger().setLevel(logging.ERROR)  # quantization's advice goes to the root logger
    with np.load(args.model) as f:
        weights = {k: torch.from_numpy(f[k]) for k in f.files}
    with np.load(Path(args.data) / "test.npz") as f:
        x_test, y_test = f["x"], f["y"]
    with np.load(Path(args.data) / "client-0.npz") as f:
        x_calib = f["x"]  # a client's own images calibrate the activation ranges
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # --8<-- [start:export]
    model = MLP(hidden=weights["fc1.weight"].shape[0], extra_op=args.extra_op).eval()
    model.load_state_dict(weights, strict=False)
    fp32 = out / "mlp-fp32.onnx"
    try:
        torch.onnx.export(model, (torch.from_numpy(x_test[:1]),), fp32, dynamo=True,
                          input_names=["x"], output_names=["logits"],
                          dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
                          external_data=False, verbose=False)
    except torch.onnx.OnnxExporterError as exc:
        op = re.search(r"op='([^']+)'", str(exc))
        sys.exit(f"error: ONNX export failed: no ONNX translation for "
                 f"{op.group(1) if op else type(exc).__name__}")
    quant_pre_process(fp32, out / "mlp-pre.onnx")  # shape inference and graph clean-up
    quantize_dynamic(out / "mlp-pre.onnx", out / "mlp-int8-dynamic.onnx",
                     weight_type=QuantType.QInt8)
    quantize_static(out / "mlp-pre.onnx", out / "mlp-int8-static.onnx", Digits(x_calib),
                    quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8)
    # --8<-- [end:export]

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    rows = {}
    print(f"onnxruntime {ort.__version__}, CPUExecutionProvider, {args.threads} thread(s)")
    print("model              bytes  accuracy  batch 1 p50/p90/p99 (us)  batch 256 (us/image)")
    for name in ["fp32", "int8-dynamic", "int8-static"]:
        path = out / f"mlp-{name}.onnx"
        s = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        acc = float((s.run(None, {"x": x_test})[0].argmax(1) == y_test).mean())
        one = latency_us(s, x_test[:1], args.repeats)
        p50, p90, p99 = np.percentile(one, [50, 90, 99])
        batch = float(np.median(latency_us(s, x_test[:256], max(args.repeats // 20, 10)))) / 256
        rows[name] = {"bytes": path.stat().st_size, "accuracy": acc, "p50_us": float(p50),
                      "p90_us": float(p90), "p99_us": float(p99), "batch256_us_per_image": batch}
        print(f"{name:<14} {path.stat().st_size:>9,}  {acc:>8.4f}  {p50:>8.1f} {p90:>6.1f} "
              f"{p99:>6.1f}  {batch:>12.3f}")
    rows["size_ratio"] = rows["fp32"]["bytes"] / rows["int8-dynamic"]["bytes"]
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
