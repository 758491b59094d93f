"""A radix-tree prefix cache over token ids: the idea behind SGLang's RadixAttention.

Each edge of the tree holds a run of tokens; a path from the root spells a prefix whose
KV cache is resident. A new request walks the tree as far as its tokens match and
reuses that much; a finished request inserts its tokens, splitting an edge where it
diverges. When the cache is full, the least recently used leaves go first.

    python snippets/ch07/radix_cache.py                  # a three-request example
    python snippets/ch07/radix_cache.py --page-size 16   # the same at 16-token pages
"""

import argparse
import itertools
import json

# --8<-- [start:tree]
CLOCK = itertools.count()  # a logical clock: the order of use, for LRU eviction


class Node:
    def __init__(self, key=(), parent=None):
        self.key = key  # the tokens on the edge from the parent to this node
        self.parent = parent
        self.children = {}  # first page of a child's key -> child
        self.last_used = next(CLOCK)


class RadixCache:
    def __init__(self, capacity=None, page_size=1):
        self.root = Node()
        self.capacity = capacity  # in tokens; None keeps everything
        self.page_size = page_size  # 1: token-level, like SGLang; 16: vLLM's blocks
        self.size = 0

    def _page(self, tokens, i=0):
        return tuple(tokens[i : i + self.page_size])

    def _common(self, key, tokens):
        n = 0
        while n < len(key) and n < len(tokens) and key[n] == tokens[n]:
            n += 1
        return n - n % self.page_size  # only whole pages are shared

    def match(self, tokens):
        """How many leading tokens of `tokens` have their KV cache in the tree."""
        tokens = tokens[: len(tokens) - len(tokens) % self.page_size]
        node, matched = self.root, 0
        while matched < len(tokens):
            child = node.children.get(self._page(tokens, matched))
            if child is None:
                break
            child.last_used = next(CLOCK)
            n = self._common(child.key, tokens[matched:])
            matched += n
            if n < len(child.key):
                break
            node = child
        return matched

    def insert(self, tokens):
        """Keep the KV cache of `tokens` (whole pages only); return how many were new."""
        tokens = tuple(tokens[: len(tokens) - len(tokens) % self.page_size])
        node, i = self.root, 0
        while i < len(tokens):
            child = node.children.get(self._page(tokens, i))
            if child is None:  # a new leaf holds the rest
                leaf = Node(tokens[i:], node)
                node.children[self._page(tokens, i)] = leaf
                self.size += len(leaf.key)
                break
            child.last_used = next(CLOCK)
            n = self._common(child.key, tokens[i:])
            if n < len(child.key):  # diverges inside the edge: split it
                mid = Node(child.key[:n], node)
                node.children[self._page(child.key)] = mid
                child.key, child.parent = child.key[n:], mid
                mid.children[self._page(child.key)] = child
                child = mid
            node, i = child, i + n
        new = len(tokens) - i
        if self.capacity is not None and self.size > self.capacity:
            self.evict(self.size - self.capacity)
        return new

    def evict(self, n_tokens):
        """Drop least recently used leaves until `n_tokens` are freed."""
        freed = 0
        while freed < n_tokens:
            leaves, todo = [], [self.root]
            while todo:
                node = todo.pop()
                todo.extend(node.children.values())
                if not node.children and node is not self.root:
                    leaves.append(node)
            if not leaves:
                break
            leaf = min(leaves, key=lambda x: x.last_used)
            del leaf.parent.children[self._page(leaf.key)]
            freed += len(leaf.key)
            self.size -= len(leaf.key)
        return freed
# --8<-- [end:tree]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--page-size", type=int, default=1)
    args = ap.parse_args()
    if args.page_size < 1:
        raise SystemExit("error: --page-size must be at least 1")
    cache = RadixCache(page_size=args.page_size)
    system = list(range(100, 140))  # a 40-token system prompt every request starts with
    requests = {
        "A": system + [7, 8, 9] * 5,
        "B": system + [7, 8, 9] * 2 + [5] * 10,
        "C": system + [1, 2] * 12,
    }
    hits = total = 0
    for name, tokens in requests.items():
        reused = cache.match(tokens)
        cache.insert(tokens)
        hits, total = hits + reused, total + len(tokens)
        print(f"request {name}: {len(tokens)} tokens, {reused} reused from the cache")
    print(f"page size {args.page_size}: {hits} of {total} prompt tokens reused, "
          f"{cache.size} tokens cached")
    print(json.dumps({"page_size": args.page_size, "hits": hits, "queries": total,
                      "cached_tokens": cache.size}))


if __name__ == "__main__":
    main()
