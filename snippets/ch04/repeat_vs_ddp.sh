#!/usr/bin/env bash
# Chapter 3's DDP and this chapter's FSDP2 on the same model, batch and two GPUs, three
# runs each, taking turns. DDP keeps Chapter 3's 256 MiB buckets.
#
#     bash snippets/ch04/repeat_vs_ddp.sh
set -euo pipefail

flags="--device cuda --preset 1b --dtype bf16 --compile --global-batch 16 --micro-batch 8 --steps 20 --warmup-steps 10"
launch="torchrun --standalone --nproc-per-node 2"

python snippets/ch03/repeat_runs.py --repeats 3 \
    --run ddp "$launch snippets/ch03/train_ddp.py $flags --bucket-cap-mb 256" \
    --run fsdp2 "$launch snippets/ch04/train_fsdp.py $flags"
