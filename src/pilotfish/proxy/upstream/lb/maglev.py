"""MAGLEV as Envoy builds it (Eisenbud et al., pseudocode listing 1, weighted): each host
has offset = xxHash64(key) % M and skip = xxHash64(key, seed 1) % (M - 1) + 1, and claims the
next free slot of its permutation (offset + skip * j) % M in turn; a host of weight w takes a
turn in iteration i only while i * w reaches its running target (steps of the largest weight).
A request hash picks slot hash % M."""

from __future__ import annotations

from typing import Any, Sequence

import xxhash

DEFAULT_TABLE_SIZE = 65537


class MaglevTable:
    __slots__ = ("table", "size")

    def __init__(self, weighted: Sequence[tuple[Any, float]], max_weight: float,
                 table_size: int = DEFAULT_TABLE_SIZE) -> None:
        m = table_size
        self.size = m
        self.table: list[Any] = []
        if not weighted:
            return
        hash64 = xxhash.xxh64_intdigest
        hosts = [h for h, _ in weighted]
        weights = [w for _, w in weighted]
        offsets, skips = [], []
        for h in hosts:
            key = h.hash_key.encode()
            offsets.append(hash64(key) % m)
            skips.append(hash64(key, 1) % (m - 1) + 1)
        targets = [0.0] * len(hosts)
        nexts = [0] * len(hosts)
        table: list[Any] = [None] * m
        filled = 0
        iteration = 1
        n = len(hosts)
        while filled < m:
            for i in range(n):
                if filled >= m:
                    break
                if iteration * weights[i] < targets[i]:
                    continue
                targets[i] += max_weight
                offset, skip, j = offsets[i], skips[i], nexts[i]
                c = (offset + skip * j) % m
                while table[c] is not None:
                    j += 1
                    c = (offset + skip * j) % m
                table[c] = hosts[i]
                nexts[i] = j + 1
                filled += 1
            iteration += 1
        self.table = table

    def choose(self, h: int) -> Any:
        table = self.table
        return table[h % self.size] if table else None
