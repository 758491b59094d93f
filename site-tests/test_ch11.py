"""Chapter 11's bad input: one-line errors before anything starts, and a malformed client
update that the ServerApp rejects while the round goes on."""

import logging
import subprocess
import sys

import numpy as np
import pytest

from book.registry import REPO

APP = REPO / "snippets" / "ch11" / "fedapp"


def run(argv, **kw):
    return subprocess.run([sys.executable, *argv], cwd=kw.get("cwd", REPO), capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("argv,pattern", [
    (["--fraction-train", "1.5"], "error: --fraction-train must be in (0, 1], got 1.5"),
    (["--fraction-train", "0"], "error: --fraction-train must be in (0, 1], got 0.0"),
    (["--rounds", "-3"], "error: --rounds must be at least 1, got -3"),
    (["--drop-node", "7"], "error: a faulty node must be one of 0..2"),
])
def test_federation_refuses_bad_input_before_starting_anything(argv, pattern):
    res = run(["snippets/ch11/federation.py", "--app", "snippets/ch11/fedapp", *argv])
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [pattern]
    assert "flower-superlink" not in res.stdout  # nothing was started


def test_simulation_refuses_a_fraction_above_one():
    res = run(["snippets/ch11/simulate.py", "--fraction", "2"])
    assert res.returncode == 1
    assert res.stderr.strip() == "error: --fraction must be in (0, 1], got 2.0"


def test_onnx_export_of_an_unsupported_op_is_one_line(tmp_path):
    sys.path.insert(0, str(APP))
    from fedapp.task import init_model

    np.savez(tmp_path / "model.npz", **init_model())
    data = tmp_path / "data"
    data.mkdir()
    for name in ["test.npz", "client-0.npz"]:
        np.savez(data / name, x=np.zeros((8, 64), np.float32), y=np.zeros(8, np.int64))
    res = run(["snippets/ch11/edge_onnx.py", "--model", str(tmp_path / "model.npz"),
               "--data", str(data), "--out", str(tmp_path / "onnx"), "--extra-op"])
    assert res.returncode == 1
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert errors == ["error: ONNX export failed: no ONNX translation for aten.kthvalue"]
    assert "Traceback" not in res.stderr


def test_server_rejects_an_update_of_the_wrong_shape_and_aggregates_the_rest():
    sys.path.insert(0, str(APP))
    from fedapp.server_app import RejectMalformed
    from fedapp.task import init_model
    from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
    from flwr.serverapp.strategy import FedAvg
    from flwr.supercore.task_identity import TaskIdentity

    # What a ServerApp process knows about itself; Message() reads it.
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1
    w = init_model()
    arrays = ArrayRecord({k: Array(v) for k, v in w.items()})

    class Grid:  # the two calls FedAvg.configure_train makes
        def get_node_ids(self):
            return [1, 2, 3]

    strategy = RejectMalformed(FedAvg(fraction_evaluate=0.0, min_available_nodes=3))
    sent = list(strategy.configure_train(1, arrays, ConfigRecord({}), Grid()))
    replies = []
    for msg in sent:
        reply_w = {k: v + 1.0 for k, v in w.items()}
        if msg.metadata.dst_node_id == 2:
            reply_w["fc1.weight"] = reply_w["fc1.weight"][:, :-1]
        content = RecordDict({"arrays": ArrayRecord({k: Array(v) for k, v in reply_w.items()}),
                              "metrics": MetricRecord({"num-examples": 10})})
        replies.append(Message(content=content, reply_to=msg))

    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logging.getLogger("flwr").addHandler(handler)
    try:
        agg, _ = strategy.aggregate_train(1, replies)
    finally:
        logging.getLogger("flwr").removeHandler(handler)

    rejected = [ln for ln in lines if "rejected" in ln]
    assert rejected == ["round 1: rejected the update of node 2: fc1.weight has shape (64, 63), "
                        "expected (64, 64)"]
    assert strategy.history[1]["received"] == 3 and strategy.history[1]["aggregated"] == 2
    np.testing.assert_allclose(agg["fc2.bias"].numpy(), w["fc2.bias"] + 1.0)
