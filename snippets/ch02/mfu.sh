# Commands shown in chapter 2's section on MFU. Each named section is one block on the page.

# --8<-- [start:peaks]
python snippets/ch02/aicluster/cli.py peaks
# --8<-- [end:peaks]

# --8<-- [start:flops-llama2-7b]
python snippets/ch02/aicluster/cli.py flops --model llama2-7b
# --8<-- [end:flops-llama2-7b]

# --8<-- [start:flops-llama3-8b]
python snippets/ch02/aicluster/cli.py flops --model llama3-8b
# --8<-- [end:flops-llama3-8b]

# --8<-- [start:flops-mixtral]
python snippets/ch02/aicluster/cli.py flops --model mixtral-8x7b
# --8<-- [end:flops-mixtral]

# --8<-- [start:mfu-example]
python snippets/ch02/aicluster/cli.py mfu --model llama2-7b --gpu h100 --gpus 8 --tokens-per-s 64000 --recompute full
# --8<-- [end:mfu-example]

# --8<-- [start:days-example]
python snippets/ch02/aicluster/cli.py days --model llama3-8b --gpu h100 --gpus 512 --tokens 15e12 --mfu 0.4
# --8<-- [end:days-example]

# --8<-- [start:traffic-70b]
python snippets/ch02/aicluster/cli.py traffic --model llama2-70b --gpus 1024
# --8<-- [end:traffic-70b]

# --8<-- [start:traffic-7b-16]
python snippets/ch02/aicluster/cli.py traffic --model llama2-7b --gpus 16 --tp 1 --pp 1 --global-batch 16 --nics-per-node 1
# --8<-- [end:traffic-7b-16]

# --8<-- [start:traffic-mixtral]
python snippets/ch02/aicluster/cli.py traffic --model mixtral-8x7b --gpus 1024 --global-batch 128
# --8<-- [end:traffic-mixtral]

# --8<-- [start:unit-tests]
python -m pytest -q snippets/ch02/aicluster
# --8<-- [end:unit-tests]
