"""Chapter 2's MFU calculator: FLOPs per token, GPU peaks, MFU, HFU and days to train.

Run it from the repository root with `python snippets/ch02/aicluster/cli.py --help`.
"""
