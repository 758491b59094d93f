"""The federated model on an edge CPU: export to ONNX, quantize to int8, and measure size,
accuracy and latency with onnxruntime, each timing repeated.

    python snippets/ch11/edge_onnx.py --model runs/ch11/model.npz --data runs/ch11/data/iid
"""

import argparse
import json
import logging
import re
import sys
import time
import warnings
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


def latency_us(session, x, calls):
    """Per-call latencies in microseconds, after a warm-up."""
    for _ in range(20):
        session.run(None, {"x": x})
    times = np.empty(calls)
    for i in range(calls):
        t = time.perf_counter()
        session.run(None, {"x": x})
        times[i] = time.perf_counter() - t
    return times * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="runs/ch11/model.npz", help="weights from simulate.py")
    ap.add_argument("--data", default="runs/ch11/data/iid", help="folder with test.npz")
    ap.add_argument("--calib", default="runs/ch11/data/iid/client-0.npz",
                    help="images that set static int8's activation ranges (all ten digits)")
    ap.add_argument("--out", default="runs/ch11/onnx")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    ap.add_argument("--calls", type=int, default=2000, help="timed calls per repeat")
    ap.add_argument("--repeats", type=int, default=5, help="timing repeats per model")
    ap.add_argument("--extra-op", action="store_true", help="add a layer ONNX cannot express")
    args = ap.parse_args()
    for path in [args.model, Path(args.data) / "test.npz", args.calib]:
        if not Path(path).exists():
            sys.exit(f"error: {path} does not exist: run partition.py and simulate.py "
                     "--save-model first")
    if args.threads < 1 or args.calls < 10 or args.repeats < 3:
        sys.exit("error: --threads must be at least 1, --calls at least 10, --repeats at least 3")
    torch.manual_seed(0)
    logging.getLogger().setLevel(logging.ERROR)  # quantization's advice goes to the root logger
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed"
    warnings.filterwarnings("ignore", category=FutureWarning)  # torch.export's pytree notice
    with np.load(args.model) as f:
        weights = {k: torch.from_numpy(f[k]) for k in f.files}
    with np.load(Path(args.data) / "test.npz") as f:
        x_test, y_test = f["x"], f["y"]
    with np.load(args.calib) as f:
        x_calib = f["x"]  # a sample with every class, as the device will see
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
    rows, sessions = {}, {}
    for name in ["fp32", "int8-dynamic", "int8-static"]:
        path = out / f"mlp-{name}.onnx"
        s = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        acc = float((s.run(None, {"x": x_test})[0].argmax(1) == y_test).mean())
        sessions[name] = s
        rows[name] = {"bytes": path.stat().st_size, "accuracy": acc, "p50_us": [], "p99_us": [],
                      "batch256_us_per_image": []}
    for _ in range(args.repeats):  # the three models take turns, so load hits them alike
        for name, s in sessions.items():
            p50, p99 = np.percentile(latency_us(s, x_test[:1], args.calls), [50, 99])
            batch = np.median(latency_us(s, x_test[:256], max(args.calls // 20, 10))) / 256
            for key, v in [("p50_us", p50), ("p99_us", p99), ("batch256_us_per_image", batch)]:
                rows[name][key].append(float(v))
    print(f"onnxruntime {ort.__version__}, CPUExecutionProvider, {args.threads} thread(s); "
          f"median (min-max) of {args.repeats} repeats")
    print(f"{'model':<13}{'bytes':>8}{'accuracy':>10}{'batch 1 p50 (us)':>20}"
          f"{'batch 1 p99 (us)':>20}{'batch 256 (us/image)':>24}")
    for name, r in rows.items():
        cells = []
        for key in ["p50_us", "p99_us", "batch256_us_per_image"]:
            v = np.array(r[key])
            r[key] = {"median": float(np.median(v)), "min": float(v.min()), "max": float(v.max())}
            digits = 2 if key.startswith("batch") else 1
            cells.append(f"{np.median(v):.{digits}f} ({v.min():.{digits}f}-{v.max():.{digits}f})")
        print(f"{name:<13}{r['bytes']:>8,}{r['accuracy']:>10.4f}{cells[0]:>20}{cells[1]:>20}"
              f"{cells[2]:>24}")
    rows["size_ratio"] = rows["fp32"]["bytes"] / rows["int8-dynamic"]["bytes"]
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
