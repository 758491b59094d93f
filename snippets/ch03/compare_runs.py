"""Check that two training runs ended in the same place: same steps, same final loss.

train_ddp.py --metrics-out writes a run's final metrics to a JSON file. A run that was
killed and restarted by torchrun should match an uninterrupted one exactly when the
checkpoint restored everything the training depends on.

    python snippets/ch03/compare_runs.py runs/ch03/elastic-a.json runs/ch03/elastic-b.json
"""

import argparse
import json
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as exc:
        sys.exit(f"error: cannot read {path}: {exc.strerror}")
    except ValueError:
        sys.exit(f"error: {path} is not a JSON metrics file (write one with --metrics-out)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", help="metrics of the reference run")
    ap.add_argument("b", help="metrics of the run to check")
    ap.add_argument("--tol", type=float, default=0.0,
                    help="allowed difference in final loss (default: bit-identical)")
    args = ap.parse_args()
    a, b = load(args.a), load(args.b)
    for key in ("steps", "final_loss"):
        for path, run in ((args.a, a), (args.b, b)):
            if run.get(key) is None:
                sys.exit(f"error: {path} has no {key}")

    print(f"{'':12}{'run a':>22}{'run b':>22}")
    for key in ("steps", "final_loss", "restarts", "start_step", "world_size"):
        print(f"{key:12}{a.get(key)!s:>22}{b.get(key)!s:>22}")
    diff = abs(a["final_loss"] - b["final_loss"])
    match = a["steps"] == b["steps"] and diff <= args.tol
    print("same steps and final loss" if match else "the runs differ")
    print(json.dumps({"steps": b["steps"], "final_loss_a": a["final_loss"],
                      "final_loss_b": b["final_loss"], "abs_diff": diff,
                      "restarts_b": b.get("restarts"), "match": match}))
    sys.exit(0 if match else 1)


if __name__ == "__main__":
    main()
