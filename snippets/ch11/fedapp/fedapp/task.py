"""The model and the work a client does, shared by the ClientApp, the ServerApp and
snippets/ch11/simulate.py. Plain NumPy: a client process starts in a fraction of a
second, and the arithmetic of every update is on the page."""

import numpy as np

N_IN, N_OUT = 64, 10  # 8 x 8 digit images, 10 classes


def init_model(hidden: int = 64, seed: int = 0) -> dict[str, np.ndarray]:
    """A two-layer MLP, in PyTorch's nn.Linear layout (out_features, in_features)."""
    rng = np.random.default_rng(seed)
    return {
        "fc1.weight": rng.normal(0, np.sqrt(2 / N_IN), (hidden, N_IN)).astype(np.float32),
        "fc1.bias": np.zeros(hidden, np.float32),
        "fc2.weight": rng.normal(0, np.sqrt(1 / hidden), (N_OUT, hidden)).astype(np.float32),
        "fc2.bias": np.zeros(N_OUT, np.float32),
    }


def load_data(path: str) -> tuple[np.ndarray, np.ndarray]:
    """One client's data (or the server's test set), as partition.py wrote it."""
    with np.load(path) as f:
        return f["x"], f["y"]


def _forward(w, x):
    h = np.maximum(x @ w["fc1.weight"].T + w["fc1.bias"], 0)
    return h, h @ w["fc2.weight"].T + w["fc2.bias"]


def evaluate(w: dict, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy and accuracy."""
    _, logits = _forward(w, x)
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean()), float((logits.argmax(1) == y).mean())


def _grads(w, x, y):
    h, logits = _forward(w, x)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1  # d(loss)/d(logits) of softmax cross-entropy
    d_out = p / len(y)
    d_h = (d_out @ w["fc2.weight"]) * (h > 0)
    return {
        "fc1.weight": d_h.T @ x, "fc1.bias": d_h.sum(0),
        "fc2.weight": d_out.T @ h, "fc2.bias": d_out.sum(0),
    }


# --8<-- [start:local-train]
def local_train(global_w: dict, x, y, *, epochs: int, lr: float, batch: int, mu: float,
                seed: int) -> dict:
    """E epochs of minibatch SGD from the global model. mu > 0 adds FedProx's proximal
    term (mu/2)||w - w_global||^2, whose gradient is mu * (w - w_global)."""
    rng = np.random.default_rng(seed)
    w = {k: v.copy() for k, v in global_w.items()}
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for i in range(0, len(y), batch):
            idx = order[i : i + batch]
            g = _grads(w, x[idx], y[idx])
            for k in w:
                w[k] -= lr * (g[k] + mu * (w[k] - global_w[k]))
    return w
# --8<-- [end:local-train]


def client_seed(seed: int, server_round: int, partition_id: int) -> int:
    """The same seed for the same client and round, in a real federation or simulated."""
    return seed * 1_000_003 + server_round * 1_009 + partition_id
