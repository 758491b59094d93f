# Commands shown in chapter 1. Each named section is one block on the page.

# --8<-- [start:setup]
make setup
source .venv/bin/activate
# --8<-- [end:setup]

# --8<-- [start:sizing]
python snippets/ch01/sizing.py
# --8<-- [end:sizing]

# --8<-- [start:sizing-own]
python snippets/ch01/sizing.py --gpu-hour-usd 2.50 --mfu 0.35 --train-tokens 15e12
# --8<-- [end:sizing-own]

# --8<-- [start:timing-cpu]
python snippets/ch01/timing.py
# --8<-- [end:timing-cpu]

# --8<-- [start:timing-gpu]
python snippets/ch01/timing.py --device cuda --width 8192 --batch 8192
# --8<-- [end:timing-gpu]

# --8<-- [start:allreduce-cpu]
torchrun --nproc-per-node 2 snippets/ch01/allreduce.py
# --8<-- [end:allreduce-cpu]

# --8<-- [start:allreduce-gpu]
torchrun --nproc-per-node 2 snippets/ch01/allreduce.py --device cuda
# --8<-- [end:allreduce-gpu]

# --8<-- [start:allreduce-no-torchrun]
python snippets/ch01/allreduce.py
# --8<-- [end:allreduce-no-torchrun]
