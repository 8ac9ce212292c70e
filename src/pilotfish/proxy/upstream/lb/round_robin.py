"""ROUND_ROBIN: equal weights cycle the hosts; unequal weights follow a precomputed smooth
weighted round-robin sequence (nginx's algorithm), so a pick is one step of a cycle over it."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any, Callable, Sequence

_MAX_SEQUENCE = 4096


class RoundRobin:
    __slots__ = ("sequence", "next_host")

    def __init__(self, hosts: Sequence[Any], rng: random.Random, **_: int) -> None:
        seq = self.sequence = _sequence(hosts)
        # Envoy starts each worker at a random offset so workers do not move in lock-step.
        start = rng.randrange(len(seq)) if seq else 0
        # The pick as one C call with no Python frame (the stream calls it directly).
        self.next_host: Callable[[], Any] = (itertools.cycle(seq[start:] + seq[:start]).__next__ if seq
                                             else itertools.repeat(None).__next__)

    def choose_host(self, context: object) -> Any:
        return self.next_host()


def _sequence(hosts: Sequence[Any]) -> list[Any]:
    if not hosts:
        return []
    weights = [max(1, h.weight) for h in hosts]
    if len(set(weights)) == 1:
        return list(hosts)
    g = math.gcd(*weights)
    weights = [w // g for w in weights]
    total = sum(weights)
    if total > _MAX_SEQUENCE:  # scale down, keeping every host at least once
        weights = [max(1, w * _MAX_SEQUENCE // total) for w in weights]
        total = sum(weights)
    current = [0] * len(hosts)
    out = []
    for _ in range(total):
        for i, w in enumerate(weights):
            current[i] += w
        best = max(range(len(hosts)), key=current.__getitem__)
        current[best] -= total
        out.append(hosts[best])
    return out
