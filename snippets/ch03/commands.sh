# Commands shown in chapter 3. Each named section is one block on the page.

# --8<-- [start:sizes]
python snippets/ch03/gpt.py
# --8<-- [end:sizes]

# --8<-- [start:train-cpu-1]
OMP_NUM_THREADS=1 python snippets/ch03/train_ddp.py
# --8<-- [end:train-cpu-1]

# --8<-- [start:train-cpu-2]
torchrun --standalone --nproc-per-node 2 snippets/ch03/train_ddp.py
# --8<-- [end:train-cpu-2]

# --8<-- [start:train-1gpu]
torchrun --standalone --nproc-per-node 1 snippets/ch03/train_ddp.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 32 --micro-batch 8 --bucket-cap-mb 256 --steps 40 --warmup-steps 10
# --8<-- [end:train-1gpu]

# --8<-- [start:train-2gpu]
torchrun --standalone --nproc-per-node 2 snippets/ch03/train_ddp.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 64 --micro-batch 8 --bucket-cap-mb 256 --steps 40 --warmup-steps 10
# --8<-- [end:train-2gpu]

# --8<-- [start:accum-cpu]
torchrun --standalone --nproc-per-node 2 snippets/ch03/train_ddp.py --global-batch 16 --micro-batch 2
# --8<-- [end:accum-cpu]

# --8<-- [start:bad-batch-cpu]
python snippets/ch03/train_ddp.py --global-batch 6 --micro-batch 4
# --8<-- [end:bad-batch-cpu]

# --8<-- [start:ckpt-resume-cpu]
rm -rf runs/ch03/ckpt
torchrun --standalone --nproc-per-node 2 snippets/ch03/train_ddp.py --steps 20 --ckpt-dir runs/ch03/ckpt --save-every 10
torchrun --standalone --nproc-per-node 2 snippets/ch03/train_ddp.py --steps 40 --ckpt-dir runs/ch03/ckpt --save-every 10
# --8<-- [end:ckpt-resume-cpu]

# --8<-- [start:ckpt-mismatch-cpu]
python snippets/ch03/train_ddp.py --resume-from runs/ch03/ckpt --d-model 256
# --8<-- [end:ckpt-mismatch-cpu]

# --8<-- [start:elastic-baseline]
torchrun --standalone --nproc-per-node 2 snippets/ch03/train_ddp.py --steps 30 --metrics-out runs/ch03/elastic-a.json
# --8<-- [end:elastic-baseline]

# --8<-- [start:elastic-crash]
rm -rf runs/ch03/elastic-b
TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 torchrun --standalone --nproc-per-node 2 --max-restarts 2 snippets/ch03/train_ddp.py --steps 30 --ckpt-dir runs/ch03/elastic-b --save-every 5 --crash-at-step 13 --metrics-out runs/ch03/elastic-b.json
# --8<-- [end:elastic-crash]

# --8<-- [start:elastic-compare]
python snippets/ch03/compare_runs.py runs/ch03/elastic-a.json runs/ch03/elastic-b.json
# --8<-- [end:elastic-compare]

# --8<-- [start:hang-timeout]
torchrun --standalone --nproc-per-node 2 snippets/ch03/hang_demo.py --fault missing-rank --timeout 10
# --8<-- [end:hang-timeout]

# --8<-- [start:hang-detail]
TORCH_DISTRIBUTED_DEBUG=DETAIL torchrun --standalone --nproc-per-node 2 snippets/ch03/hang_demo.py --fault missing-rank --timeout 10
# --8<-- [end:hang-detail]

# --8<-- [start:debug-shape]
TORCH_DISTRIBUTED_DEBUG=DETAIL torchrun --standalone --nproc-per-node 2 snippets/ch03/hang_demo.py --fault wrong-shape
# --8<-- [end:debug-shape]

# --8<-- [start:hang-gpu]
TORCH_NCCL_ASYNC_ERROR_HANDLING=1 torchrun --standalone --nproc-per-node 2 snippets/ch03/hang_demo.py --device cuda --fault missing-rank --timeout 20
# --8<-- [end:hang-gpu]

# --8<-- [start:debug-nccl-gpu]
NCCL_DEBUG=INFO torchrun --standalone --nproc-per-node 2 snippets/ch03/hang_demo.py --device cuda
# --8<-- [end:debug-nccl-gpu]

# --8<-- [start:multinode-local-cpu]
bash snippets/ch03/two_nodes_local.sh
# --8<-- [end:multinode-local-cpu]

# --8<-- [start:multinode]
export HEAD_NODE=node0
TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint $HEAD_NODE:29400 --rdzv-id ch03-ddp --max-restarts 3 snippets/ch03/train_ddp.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 512 --micro-batch 8 --bucket-cap-mb 256 --steps 500 --ckpt-dir runs/ch03/ckpt-1b --save-every 100
# --8<-- [end:multinode]

# --8<-- [start:sbatch-check]
bash -n snippets/ch03/train.sbatch
# --8<-- [end:sbatch-check]

# --8<-- [start:sbatch]
mkdir -p runs/ch03
sbatch snippets/ch03/train.sbatch
# --8<-- [end:sbatch]

# --8<-- [start:ddp-math]
python snippets/ch03/ddp_math.py --preset 1b
# --8<-- [end:ddp-math]

# --8<-- [start:profile-2gpu]
torchrun --standalone --nproc-per-node 2 snippets/ch03/profile_ddp.py --device cuda --preset 1b --micro-batch 8 --trace-out runs/ch03/ddp-step-trace.json
# --8<-- [end:profile-2gpu]

# --8<-- [start:bucket-sweep-2gpu]
bash snippets/ch03/bucket_sweep.sh
# --8<-- [end:bucket-sweep-2gpu]

# --8<-- [start:bucket-sweep-eager-2gpu]
bash snippets/ch03/bucket_sweep.sh --eager
# --8<-- [end:bucket-sweep-eager-2gpu]

# --8<-- [start:comm-hooks-cpu]
torchrun --standalone --nproc-per-node 2 snippets/ch03/comm_hooks.py
# --8<-- [end:comm-hooks-cpu]

# --8<-- [start:trace-figure]
python snippets/ch03/plot_trace.py --records site-tests/records --out runs/ch03/ddp-step.svg
# --8<-- [end:trace-figure]

# --8<-- [start:train-1gpu-x3]
torchrun --standalone --nproc-per-node 1 snippets/ch03/train_ddp.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 32 --micro-batch 8 --bucket-cap-mb 256 --steps 40 --warmup-steps 10
# --8<-- [end:train-1gpu-x3]

# --8<-- [start:train-4gpu]
torchrun --standalone --nproc-per-node 4 snippets/ch03/train_ddp.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 128 --micro-batch 8 --bucket-cap-mb 256 --steps 40 --warmup-steps 10
# --8<-- [end:train-4gpu]

# --8<-- [start:train-8gpu]
torchrun --standalone --nproc-per-node 8 snippets/ch03/train_ddp.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 256 --micro-batch 8 --bucket-cap-mb 256 --steps 40 --warmup-steps 10
# --8<-- [end:train-8gpu]

# --8<-- [start:profile-8gpu]
torchrun --standalone --nproc-per-node 8 snippets/ch03/profile_ddp.py --device cuda --preset 1b --micro-batch 8 --trace-out runs/ch03/ddp-step-trace-8gpu.json
# --8<-- [end:profile-8gpu]
