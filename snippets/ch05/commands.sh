# Commands shown in chapter 5. Each named section is one block on the page.

# --8<-- [start:memory-math]
python snippets/ch05/zero_math.py --preset tiny 1b --world-size 2
# --8<-- [end:memory-math]

# --8<-- [start:config-check]
DS_ACCELERATOR=cpu python snippets/ch05/zero_config.py snippets/ch05/zero0.json snippets/ch05/zero1.json snippets/ch05/zero2.json snippets/ch05/zero3.json snippets/ch05/zero2_offload.json snippets/ch05/zero3_nvme.json snippets/ch05/zeropp.json
# --8<-- [end:config-check]

# --8<-- [start:train-cpu]
DS_ACCELERATOR=cpu torchrun --standalone --nproc-per-node 2 snippets/ch05/train_zero.py
# --8<-- [end:train-cpu]

# --8<-- [start:launcher-cpu]
DS_ACCELERATOR=cpu deepspeed --num_gpus 2 --master_port 29561 --no_local_rank snippets/ch05/train_zero.py --steps 10
# --8<-- [end:launcher-cpu]

# --8<-- [start:stages-cpu]
DS_ACCELERATOR=cpu torchrun --standalone --nproc-per-node 2 snippets/ch05/train_zero.py --config snippets/ch05/zero0.json --dtype bf16 --global-batch 16 --steps 6 --warmup-steps 3 --log-every 6 --metrics-out runs/ch05/stage-0.json
DS_ACCELERATOR=cpu torchrun --standalone --nproc-per-node 2 snippets/ch05/train_zero.py --config snippets/ch05/zero1.json --dtype bf16 --global-batch 16 --steps 6 --warmup-steps 3 --log-every 6 --metrics-out runs/ch05/stage-1.json
DS_ACCELERATOR=cpu torchrun --standalone --nproc-per-node 2 snippets/ch05/train_zero.py --config snippets/ch05/zero2.json --dtype bf16 --global-batch 16 --steps 6 --warmup-steps 3 --log-every 6 --metrics-out runs/ch05/stage-2.json
DS_ACCELERATOR=cpu torchrun --standalone --nproc-per-node 2 snippets/ch05/train_zero.py --config snippets/ch05/zero3.json --dtype bf16 --global-batch 16 --steps 6 --warmup-steps 3 --log-every 6 --metrics-out runs/ch05/stage-3.json
python snippets/ch05/zero_math.py --measured runs/ch05/stage-0.json runs/ch05/stage-1.json runs/ch05/stage-2.json runs/ch05/stage-3.json
# --8<-- [end:stages-cpu]

# --8<-- [start:zero0-2gpu]
torchrun --standalone --nproc-per-node 2 snippets/ch05/train_zero.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 16 --micro-batch 8 --steps 30 --warmup-steps 10 --config snippets/ch05/zero0.json
# --8<-- [end:zero0-2gpu]

# --8<-- [start:zero1-2gpu]
torchrun --standalone --nproc-per-node 2 snippets/ch05/train_zero.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 16 --micro-batch 8 --steps 30 --warmup-steps 10 --config snippets/ch05/zero1.json
# --8<-- [end:zero1-2gpu]

# --8<-- [start:zero2-2gpu]
torchrun --standalone --nproc-per-node 2 snippets/ch05/train_zero.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 16 --micro-batch 8 --steps 30 --warmup-steps 10 --config snippets/ch05/zero2.json
# --8<-- [end:zero2-2gpu]

# --8<-- [start:zero3-2gpu]
torchrun --standalone --nproc-per-node 2 snippets/ch05/train_zero.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 16 --micro-batch 8 --steps 30 --warmup-steps 10 --config snippets/ch05/zero3.json
# --8<-- [end:zero3-2gpu]

# --8<-- [start:fsdp2-2gpu]
torchrun --standalone --nproc-per-node 2 snippets/ch04/train_fsdp.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 16 --micro-batch 8 --steps 30 --warmup-steps 10
# --8<-- [end:fsdp2-2gpu]

# --8<-- [start:memory-math-12b]
python snippets/ch05/zero_math.py --preset 1b --d-model 5120 --n-head 40 --n-layer 38 --world-size 2
# --8<-- [end:memory-math-12b]

# --8<-- [start:zero3-12b-2gpu]
torchrun --standalone --nproc-per-node 2 snippets/ch05/train_zero.py --device cuda --preset 1b --d-model 5120 --n-head 40 --n-layer 38 --dtype bf16 --ac --global-batch 4 --micro-batch 2 --lr 1e-4 --steps 12 --warmup-steps 4 --log-every 2 --config snippets/ch05/zero3.json
# --8<-- [end:zero3-12b-2gpu]

# --8<-- [start:offload-cpu]
DS_ACCELERATOR=cpu torchrun --standalone --nproc-per-node 2 snippets/ch05/train_zero.py --config snippets/ch05/zero2_offload.json --steps 20
# --8<-- [end:offload-cpu]

# --8<-- [start:offload-2gpu]
torchrun --standalone --nproc-per-node 2 snippets/ch05/train_zero.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 16 --micro-batch 8 --steps 8 --warmup-steps 3 --config snippets/ch05/zero2_offload.json
# --8<-- [end:offload-2gpu]

# --8<-- [start:nvme-1gpu]
torchrun --standalone --nproc-per-node 1 snippets/ch05/train_zero.py --device cuda --preset 1b --dtype bf16 --global-batch 8 --micro-batch 8 --steps 4 --warmup-steps 2 --log-every 1 --config snippets/ch05/zero3_nvme.json
# --8<-- [end:nvme-1gpu]

# --8<-- [start:zeropp-math]
python snippets/ch05/zeropp_math.py --preset 1b --nodes 4 --gpus-per-node 8
# --8<-- [end:zeropp-math]

# --8<-- [start:ckpt-save-cpu]
rm -rf runs/ch05/ckpt-3
DS_ACCELERATOR=cpu torchrun --standalone --nproc-per-node 2 snippets/ch05/train_zero.py --config snippets/ch05/zero3.json --steps 20 --ckpt-dir runs/ch05/ckpt-3 --save-every 10 --metrics-out runs/ch05/zero3-2ranks.json
# --8<-- [end:ckpt-save-cpu]

# --8<-- [start:export-cpu]
DS_ACCELERATOR=cpu python snippets/ch05/export_fp32.py runs/ch05/ckpt-3 --out runs/ch05/gpt-fp32.pt
# --8<-- [end:export-cpu]

# --8<-- [start:wrong-model-cpu]
DS_ACCELERATOR=cpu python snippets/ch05/train_zero.py --resume-from runs/ch05/ckpt-3 --n-layer 4
# --8<-- [end:wrong-model-cpu]

# --8<-- [start:universal-cpu]
DS_ACCELERATOR=cpu TQDM_DISABLE=1 python -m deepspeed.checkpoint.ds_to_universal --input_folder runs/ch05/ckpt-3/step_000010 --output_folder runs/ch05/ckpt-3/step_000010_universal
DS_ACCELERATOR=cpu torchrun --standalone --nproc-per-node 1 snippets/ch05/train_zero.py --config snippets/ch05/zero3.json --steps 20 --resume-from runs/ch05/ckpt-3 --universal --metrics-out runs/ch05/zero3-1rank.json
python snippets/ch03/compare_runs.py runs/ch05/zero3-2ranks.json runs/ch05/zero3-1rank.json --tol 1e-5
# --8<-- [end:universal-cpu]

# --8<-- [start:bad-stage]
DS_ACCELERATOR=cpu python snippets/ch05/train_zero.py --config snippets/ch05/bad/stage4.json
# --8<-- [end:bad-stage]

# --8<-- [start:bad-key]
DS_ACCELERATOR=cpu python snippets/ch05/train_zero.py --config snippets/ch05/bad/misspelt.json
# --8<-- [end:bad-key]

# --8<-- [start:bad-place]
DS_ACCELERATOR=cpu python snippets/ch05/train_zero.py --config snippets/ch05/bad/misplaced.json
# --8<-- [end:bad-place]

# --8<-- [start:bad-batch]
DS_ACCELERATOR=cpu python snippets/ch05/train_zero.py --global-batch 6 --micro-batch 4
# --8<-- [end:bad-batch]

# --8<-- [start:multinode]
deepspeed --hostfile snippets/ch05/hostfile --master_addr node0 --master_port 29500 --no_local_rank snippets/ch05/train_zero.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 512 --micro-batch 8 --steps 500 --config snippets/ch05/zeropp.json --ckpt-dir runs/ch05/ckpt-1b --save-every 100
# --8<-- [end:multinode]

# --8<-- [start:memory-math-8]
python snippets/ch05/zero_math.py --preset 1b --world-size 8
# --8<-- [end:memory-math-8]

# --8<-- [start:zero1-8gpu]
torchrun --standalone --nproc-per-node 8 snippets/ch05/train_zero.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 64 --micro-batch 8 --steps 30 --warmup-steps 10 --config snippets/ch05/zero1.json
# --8<-- [end:zero1-8gpu]

# --8<-- [start:zero2-8gpu]
torchrun --standalone --nproc-per-node 8 snippets/ch05/train_zero.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 64 --micro-batch 8 --steps 30 --warmup-steps 10 --config snippets/ch05/zero2.json
# --8<-- [end:zero2-8gpu]

# --8<-- [start:zero3-8gpu]
torchrun --standalone --nproc-per-node 8 snippets/ch05/train_zero.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 64 --micro-batch 8 --steps 30 --warmup-steps 10 --config snippets/ch05/zero3.json
# --8<-- [end:zero3-8gpu]

# --8<-- [start:fsdp2-8gpu]
torchrun --standalone --nproc-per-node 8 snippets/ch04/train_fsdp.py --device cuda --preset 1b --dtype bf16 --compile --global-batch 64 --micro-batch 8 --steps 30 --warmup-steps 10
# --8<-- [end:fsdp2-8gpu]
