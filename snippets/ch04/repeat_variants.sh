#!/usr/bin/env bash
# Per-block FSDP2, FSDP2 without resharding, and the one-line wrap on two GPUs, three
# runs each, taking turns, so that drift over time falls on all three alike.
#
#     bash snippets/ch04/repeat_variants.sh
set -euo pipefail

flags="--device cuda --preset 1b --dtype bf16 --compile --global-batch 16 --micro-batch 8 --steps 20 --warmup-steps 10"
launch="torchrun --standalone --nproc-per-node 2"

python snippets/ch03/repeat_runs.py --repeats 3 \
    --run per-block "$launch snippets/ch04/train_fsdp.py $flags" \
    --run no-reshard "$launch snippets/ch04/train_fsdp.py $flags --no-reshard-after-forward" \
    --run one-wrap "$launch snippets/ch04/naive_wrap.py $flags"
