# Commands shown in chapter 4. Each named section is one block on the page.

# --8<-- [start:memory-math]
python snippets/ch04/memory_math.py --preset 1b --world-size 8 --hsdp 2
# --8<-- [end:memory-math]

# --8<-- [start:fsdp-cpu]
torchrun --standalone --nproc-per-node 2 snippets/ch04/train_fsdp.py
# --8<-- [end:fsdp-cpu]

# --8<-- [start:fsdp-memory-cpu]
torchrun --standalone --nproc-per-node 2 snippets/ch04/train_fsdp.py --dtype bf16 --steps 5 --metrics-out runs/ch04/fsdp-memory.json
python snippets/ch04/memory_math.py --measured runs/ch04/fsdp-memory.json
# --8<-- [end:fsdp-memory-cpu]

# --8<-- [start:fsdp-ac-cpu]
torchrun --standalone --nproc-per-node 2 snippets/ch04/train_fsdp.py --ac
# --8<-- [end:fsdp-ac-cpu]

# --8<-- [start:fsdp-1gpu]
torchrun --standalone --nproc-per-node 1 snippets/ch04/train_fsdp.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 8 --micro-batch 8 --steps 30 --warmup-steps 10
# --8<-- [end:fsdp-1gpu]

# --8<-- [start:fsdp-1gpu-ac]
torchrun --standalone --nproc-per-node 1 snippets/ch04/train_fsdp.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 8 --micro-batch 8 --steps 30 --warmup-steps 10 --ac
# --8<-- [end:fsdp-1gpu-ac]

# --8<-- [start:fsdp-1gpu-offload]
torchrun --standalone --nproc-per-node 1 snippets/ch04/train_fsdp.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 8 --micro-batch 8 --steps 8 --warmup-steps 3 --offload
# --8<-- [end:fsdp-1gpu-offload]

# --8<-- [start:fsdp-2gpu]
torchrun --standalone --nproc-per-node 2 snippets/ch04/train_fsdp.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 16 --micro-batch 8 --steps 30 --warmup-steps 10
# --8<-- [end:fsdp-2gpu]

# --8<-- [start:naive-cpu]
torchrun --standalone --nproc-per-node 2 snippets/ch04/naive_wrap.py
# --8<-- [end:naive-cpu]

# --8<-- [start:fsdp-2gpu-naive]
torchrun --standalone --nproc-per-node 2 snippets/ch04/naive_wrap.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 16 --micro-batch 8 --steps 30 --warmup-steps 10
# --8<-- [end:fsdp-2gpu-naive]

# --8<-- [start:fsdp-2gpu-noreshard]
torchrun --standalone --nproc-per-node 2 snippets/ch04/train_fsdp.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 16 --micro-batch 8 --steps 30 --warmup-steps 10 --no-reshard-after-forward
# --8<-- [end:fsdp-2gpu-noreshard]

# --8<-- [start:fsdp-2gpu-ac]
torchrun --standalone --nproc-per-node 2 snippets/ch04/train_fsdp.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 16 --micro-batch 8 --steps 30 --warmup-steps 10 --ac
# --8<-- [end:fsdp-2gpu-ac]

# --8<-- [start:fsdp-2gpu-offload]
torchrun --standalone --nproc-per-node 2 snippets/ch04/train_fsdp.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 16 --micro-batch 8 --steps 8 --warmup-steps 3 --offload
# --8<-- [end:fsdp-2gpu-offload]

# --8<-- [start:fsdp-vs-ddp-2gpu]
torchrun --standalone --nproc-per-node 2 snippets/ch03/train_ddp.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 16 --micro-batch 8 --steps 30 --warmup-steps 10 --metrics-out runs/ch04/ddp-2gpu.json
torchrun --standalone --nproc-per-node 2 snippets/ch04/train_fsdp.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 16 --micro-batch 8 --steps 30 --warmup-steps 10 --metrics-out runs/ch04/fsdp-2gpu.json
python snippets/ch04/compare_perf.py runs/ch04/ddp-2gpu.json runs/ch04/fsdp-2gpu.json
# --8<-- [end:fsdp-vs-ddp-2gpu]

# --8<-- [start:dcp-save-cpu]
torchrun --standalone --nproc-per-node 2 snippets/ch04/train_fsdp.py --ckpt-dir runs/ch04/dcp --save-every 10
# --8<-- [end:dcp-save-cpu]

# --8<-- [start:dcp-load-1-cpu]
torchrun --standalone --nproc-per-node 1 snippets/ch04/train_fsdp.py --resume-from runs/ch04/dcp/step-000010
# --8<-- [end:dcp-load-1-cpu]

# --8<-- [start:dcp-load-4-cpu]
torchrun --standalone --nproc-per-node 4 snippets/ch04/train_fsdp.py --resume-from runs/ch04/dcp/step-000010 --micro-batch 2
# --8<-- [end:dcp-load-4-cpu]

# --8<-- [start:dcp-wrong-model-cpu]
torchrun --standalone --nproc-per-node 1 snippets/ch04/train_fsdp.py --resume-from runs/ch04/dcp --n-layer 4
# --8<-- [end:dcp-wrong-model-cpu]

# --8<-- [start:hsdp-cpu]
torchrun --standalone --nproc-per-node 4 snippets/ch04/train_fsdp.py --hsdp 2 --micro-batch 2
# --8<-- [end:hsdp-cpu]

# --8<-- [start:migrate-cpu]
torchrun --standalone --nproc-per-node 2 snippets/ch04/fsdp1_to_fsdp2.py
# --8<-- [end:migrate-cpu]

# --8<-- [start:scaling-figure]
python snippets/ch04/plot_scaling.py --records site-tests/records --out runs/ch04/scaling.svg
# --8<-- [end:scaling-figure]

# --8<-- [start:step-math]
python snippets/ch04/step_math.py --preset 1b --ranks 2
# --8<-- [end:step-math]

# --8<-- [start:step-math-12b]
python snippets/ch04/step_math.py --preset 1b --d-model 5120 --n-head 40 --n-layer 38 --ranks 2 --micro-batch 2
# --8<-- [end:step-math-12b]

# --8<-- [start:step-math-nodes]
python snippets/ch04/step_math.py --preset 1b --ranks 16 --nic-gbps 48 --nics-per-node 8 1
# --8<-- [end:step-math-nodes]

# --8<-- [start:fsdp-vs-ddp-repeat]
bash snippets/ch04/repeat_vs_ddp.sh
# --8<-- [end:fsdp-vs-ddp-repeat]

# --8<-- [start:fsdp-variants-repeat]
bash snippets/ch04/repeat_variants.sh
# --8<-- [end:fsdp-variants-repeat]

# --8<-- [start:meta-shard-12b-cpu]
torchrun --standalone --nproc-per-node 2 snippets/ch04/meta_shard.py --preset 1b --d-model 5120 --n-head 40 --n-layer 38
# --8<-- [end:meta-shard-12b-cpu]

# --8<-- [start:fsdp-12b-2gpu]
torchrun --standalone --nproc-per-node 2 snippets/ch04/train_fsdp.py --device cuda --preset 1b --d-model 5120 --n-head 40 --n-layer 38 --dtype bf16 --compile --ac --global-batch 4 --micro-batch 2 --lr 1e-4 --steps 30 --warmup-steps 10
# --8<-- [end:fsdp-12b-2gpu]

# --8<-- [start:ddp-12b-2gpu]
torchrun --standalone --nproc-per-node 2 snippets/ch03/train_ddp.py --device cuda --preset 1b --d-model 5120 --n-head 40 --n-layer 38 --dtype bf16 --global-batch 4 --micro-batch 2 --steps 5
# --8<-- [end:ddp-12b-2gpu]

# --8<-- [start:export-cpu]
python snippets/ch04/export_full.py --ckpt runs/ch04/dcp/step-000050 --out runs/ch04/export/model.pt
# --8<-- [end:export-cpu]

# --8<-- [start:lora-cpu]
torchrun --standalone --nproc-per-node 2 snippets/ch04/finetune_lora.py
# --8<-- [end:lora-cpu]

# --8<-- [start:step-math-8]
python snippets/ch04/step_math.py --preset 1b --ranks 8
# --8<-- [end:step-math-8]

# --8<-- [start:fsdp-4gpu]
torchrun --standalone --nproc-per-node 4 snippets/ch04/train_fsdp.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 32 --micro-batch 8 --steps 30 --warmup-steps 10
# --8<-- [end:fsdp-4gpu]

# --8<-- [start:fsdp-4gpu-naive]
torchrun --standalone --nproc-per-node 4 snippets/ch04/naive_wrap.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 32 --micro-batch 8 --steps 30 --warmup-steps 10
# --8<-- [end:fsdp-4gpu-naive]

# --8<-- [start:fsdp-8gpu]
torchrun --standalone --nproc-per-node 8 snippets/ch04/train_fsdp.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 64 --micro-batch 8 --steps 30 --warmup-steps 10
# --8<-- [end:fsdp-8gpu]

# --8<-- [start:fsdp-8gpu-naive]
torchrun --standalone --nproc-per-node 8 snippets/ch04/naive_wrap.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 64 --micro-batch 8 --steps 30 --warmup-steps 10
# --8<-- [end:fsdp-8gpu-naive]

# --8<-- [start:hsdp-8gpu]
torchrun --standalone --nproc-per-node 8 snippets/ch04/train_fsdp.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 64 --micro-batch 8 --steps 30 --warmup-steps 10 --hsdp 2
# --8<-- [end:hsdp-8gpu]

# --8<-- [start:fsdp-12b-8gpu]
torchrun --standalone --nproc-per-node 8 snippets/ch04/train_fsdp.py --device cuda --preset 1b --d-model 5120 --n-head 40 --n-layer 38 --dtype bf16 --compile --ac --global-batch 16 --micro-batch 2 --lr 1e-4 --steps 30 --warmup-steps 10
# --8<-- [end:fsdp-12b-8gpu]
