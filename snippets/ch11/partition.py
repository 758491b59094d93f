"""Split scikit-learn's digits across federated clients, IID or with Dirichlet label skew.

Each client gets its own file, as it would have its own disk; the server keeps a test set.

    python snippets/ch11/partition.py --clients 3 --scheme iid --out runs/ch11/data/iid
    python snippets/ch11/partition.py --clients 10 --scheme dirichlet --out runs/ch11/data/dir
"""

import argparse
import json
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


# --8<-- [start:dirichlet]
def dirichlet_split(y: np.ndarray, clients: int, alpha: float, rng, min_size: int = 10):
    """Label skew: for each class, draw client shares p ~ Dir(alpha, ..., alpha) and deal
    that class's samples out in those shares. Small alpha gives each client a few
    classes; large alpha approaches an IID split. Sizes differ too (quantity skew)."""
    while True:
        parts = [[] for _ in range(clients)]
        for c in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == c))
            cuts = (np.cumsum(rng.dirichlet([alpha] * clients))[:-1] * len(idx)).astype(int)
            for k, chunk in enumerate(np.split(idx, cuts)):
                parts[k].extend(chunk.tolist())
        if min(len(p) for p in parts) >= min_size:  # redraw if a client got (almost) nothing
            return [np.array(sorted(p)) for p in parts]
# --8<-- [end:dirichlet]


def iid_split(n: int, clients: int, rng):
    return [np.sort(p) for p in np.array_split(rng.permutation(n), clients)]


@lru_cache(maxsize=1)
def train_test():
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)  # pixel values 0..16 -> 0..1
    return train_test_split(x, digits.target, test_size=0.2, stratify=digits.target,
                            random_state=0)


def make_partitions(clients, scheme, alpha, seed):
    """(x_train, y_train, parts, x_test, y_test) with parts a list of index arrays."""
    x_tr, x_te, y_tr, y_te = train_test()
    rng = np.random.default_rng(seed)
    parts = (iid_split(len(y_tr), clients, rng) if scheme == "iid"
             else dirichlet_split(y_tr, clients, alpha, rng))
    return x_tr, y_tr, parts, x_te, y_te


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=3)
    ap.add_argument("--scheme", choices=["iid", "dirichlet"], default="iid")
    ap.add_argument("--alpha", type=float, default=0.3, help="Dirichlet concentration")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/ch11/data/iid")
    args = ap.parse_args()
    if args.clients < 1:
        sys.exit(f"error: --clients must be at least 1, got {args.clients}")
    if args.alpha <= 0:
        sys.exit(f"error: --alpha must be positive, got {args.alpha}")

    x_tr, y_tr, parts, x_te, y_te = make_partitions(args.clients, args.scheme, args.alpha,
                                                    args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "test.npz", x=x_te, y=y_te)
    label = "IID" if args.scheme == "iid" else f"Dirichlet alpha={args.alpha}"
    print(f"{len(y_tr)} training and {len(y_te)} test images, {args.clients} clients, {label}")
    print("client  images  images per class 0..9")
    for k, idx in enumerate(parts):
        np.savez(out / f"client-{k}.npz", x=x_tr[idx], y=y_tr[idx])
        counts = np.bincount(y_tr[idx], minlength=10)
        print(f"{k:>6}  {len(idx):>6}  " + " ".join(f"{c:>3}" for c in counts))
    sizes = [len(p) for p in parts]
    print(json.dumps({"clients": args.clients, "scheme": args.scheme, "alpha": args.alpha,
                      "train": int(len(y_tr)), "test": int(len(y_te)),
                      "min_size": min(sizes), "max_size": max(sizes)}))


if __name__ == "__main__":
    main()
