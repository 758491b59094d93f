#!/usr/bin/env bash
# The 1B model on two GPUs with 25, 64 and 256 MiB buckets, three runs each, taking turns.
# With --eager, the same without torch.compile (and shorter runs, which need no warm-up
# for compilation).
#
#     bash snippets/ch03/bucket_sweep.sh [--eager]
set -euo pipefail

flags="--device cuda --preset 1b --dtype bf16 --compile --global-batch 64 --micro-batch 8 --steps 20 --warmup-steps 10"
if [[ "${1:-}" == "--eager" ]]; then
    flags="--device cuda --preset 1b --dtype bf16 --global-batch 64 --micro-batch 8 --steps 15 --warmup-steps 5"
fi
train="torchrun --standalone --nproc-per-node 2 snippets/ch03/train_ddp.py $flags"

python snippets/ch03/repeat_runs.py --repeats 3 \
    --run bucket-25 "$train --bucket-cap-mb 25" \
    --run bucket-64 "$train --bucket-cap-mb 64" \
    --run bucket-256 "$train --bucket-cap-mb 256"
