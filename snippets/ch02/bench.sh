# Commands shown in chapter 2's benchmarking sections. Each named section is one block.

# --8<-- [start:matmul-cpu]
python snippets/ch02/matmul_bench.py
# --8<-- [end:matmul-cpu]

# --8<-- [start:matmul-gpu]
python snippets/ch02/matmul_bench.py --device cuda --dtype bf16 fp16 tf32 fp32 --sizes 1024 2048 4096 8192
# --8<-- [end:matmul-gpu]

# --8<-- [start:collectives-cpu]
torchrun --nproc-per-node 2 snippets/ch02/collective_bench.py --device cpu
# --8<-- [end:collectives-cpu]

# --8<-- [start:collectives-gpu]
torchrun --nproc-per-node 2 snippets/ch02/collective_bench.py --device cuda --max-size 4GiB
# --8<-- [end:collectives-gpu]

# --8<-- [start:topology]
nvidia-smi topo -m
# --8<-- [end:topology]

# --8<-- [start:clocks]
nvidia-smi -q -d PERFORMANCE
nvidia-smi --query-gpu=index,clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu --format=csv
# --8<-- [end:clocks]

# --8<-- [start:nccl-tests]
git clone https://github.com/NVIDIA/nccl-tests.git runs/nccl-tests
make -C runs/nccl-tests MPI=0
runs/nccl-tests/build/all_reduce_perf -b 1K -e 4G -f 2 -g 2
# --8<-- [end:nccl-tests]

# --8<-- [start:nccl-env-gpu]
python snippets/ch02/nccl_env.py --device cuda --repeats 3
# --8<-- [end:nccl-env-gpu]

# --8<-- [start:collectives-4gpu]
torchrun --nproc-per-node 4 snippets/ch02/collective_bench.py --device cuda --max-size 4GiB
# --8<-- [end:collectives-4gpu]

# --8<-- [start:collectives-8gpu]
torchrun --nproc-per-node 8 snippets/ch02/collective_bench.py --device cuda --max-size 4GiB
# --8<-- [end:collectives-8gpu]

# --8<-- [start:collectives-alltoall-cpu]
torchrun --nproc-per-node 2 snippets/ch02/alltoall_bench.py --device cpu
# --8<-- [end:collectives-alltoall-cpu]

# --8<-- [start:collectives-alltoall-4gpu]
torchrun --nproc-per-node 4 snippets/ch02/alltoall_bench.py --device cuda --max-size 4GiB
# --8<-- [end:collectives-alltoall-4gpu]

# --8<-- [start:collectives-alltoall-8gpu]
torchrun --nproc-per-node 8 snippets/ch02/alltoall_bench.py --device cuda --max-size 4GiB
# --8<-- [end:collectives-alltoall-8gpu]
