"""Synthetic token data that a model can learn, made on the spot.

Each sequence is a walk through a fixed random bigram table in which every token
has four likely successors, so the loss falls from ln(vocab) towards ln(4) as the
model learns the table. Nothing is downloaded, and sample i is the same on every
rank and every run, which is what DistributedSampler needs.

    python snippets/ch03/data.py
"""

import torch
from torch.utils.data import Dataset


class BigramTokens(Dataset):
    def __init__(self, vocab_size, seq_len, num_samples=1024, seed=0, successors=4):
        g = torch.Generator().manual_seed(seed)
        table = torch.randint(vocab_size, (vocab_size, successors), generator=g)
        tokens = torch.empty(num_samples, seq_len + 1, dtype=torch.long)
        tokens[:, 0] = torch.randint(vocab_size, (num_samples,), generator=g)
        for t in range(seq_len):
            pick = torch.randint(successors, (num_samples,), generator=g)
            tokens[:, t + 1] = table[tokens[:, t], pick]
        self.tokens = tokens

    def __len__(self):
        return len(self.tokens)

    def __getitem__(self, i):
        # Inputs and next-token targets, shifted by one.
        return self.tokens[i, :-1], self.tokens[i, 1:]


if __name__ == "__main__":
    ds = BigramTokens(vocab_size=512, seq_len=16, num_samples=4)
    x, y = ds[0]
    print("inputs: ", x.tolist())
    print("targets:", y.tolist())
