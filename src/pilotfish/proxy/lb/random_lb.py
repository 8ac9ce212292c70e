"""RANDOM: a host picked at random, in proportion to its weight."""

from __future__ import annotations

import bisect
import random
from itertools import accumulate
from typing import Any, Sequence


class RandomLB:
    __slots__ = ("hosts", "rng", "cumulative", "total")

    def __init__(self, hosts: Sequence[Any], rng: random.Random, **_: int) -> None:
        self.hosts = tuple(hosts)
        self.rng = rng
        self.cumulative = list(accumulate(max(1, h.weight) for h in hosts))
        self.total = self.cumulative[-1] if self.cumulative else 0

    def choose_host(self, context: object) -> Any:
        if not self.hosts:
            return None
        return self.hosts[bisect.bisect_right(self.cumulative, self.rng.randrange(self.total))]
