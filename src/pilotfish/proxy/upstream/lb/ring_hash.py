"""RING_HASH as Envoy builds it (ketama-style): every host gets ``scale * normalized_weight``
points, point i of a host hashing ``"<hash key>_<i>"`` with xxHash64; ``scale`` makes the
lightest host whole, bounded by ``maximum_ring_size``. A request hash maps to the first point
at or after it, wrapping to the start."""

from __future__ import annotations

import bisect
import math
from typing import Any, Sequence

import xxhash

DEFAULT_MIN_RING = 1024
DEFAULT_MAX_RING = 8 * 1024 * 1024


class Ring:
    __slots__ = ("hashes", "hosts")

    def __init__(self, weighted: Sequence[tuple[Any, float]], min_weight: float,
                 minimum_ring_size: int = DEFAULT_MIN_RING, maximum_ring_size: int = DEFAULT_MAX_RING) -> None:
        points: list[tuple[int, Any]] = []
        if weighted:
            scale = min(math.ceil(min_weight * minimum_ring_size) / min_weight, float(maximum_ring_size))
            hash64 = xxhash.xxh64_intdigest
            current = 0.0
            target = 0.0
            for host, weight in weighted:
                prefix = host.hash_key + "_"
                target += scale * weight
                i = 0
                while current < target:
                    points.append((hash64(f"{prefix}{i}".encode()), host))
                    i += 1
                    current += 1
            points.sort(key=lambda p: p[0])
        self.hashes = [p[0] for p in points]
        self.hosts = [p[1] for p in points]

    def choose(self, h: int) -> Any:
        hashes = self.hashes
        if not hashes:
            return None
        i = bisect.bisect_left(hashes, h)
        return self.hosts[i if i < len(hashes) else 0]

    def __len__(self) -> int:
        return len(self.hashes)
