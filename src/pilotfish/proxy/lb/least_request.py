"""LEAST_REQUEST: power of N choices (default two) on active requests, weight-adjusted when
hosts have different weights (active / weight, Envoy's behaviour with active_request_bias 1)."""

from __future__ import annotations

import random
from typing import Any, Sequence


class LeastRequest:
    __slots__ = ("hosts", "rng", "choices", "weighted")

    def __init__(self, hosts: Sequence[Any], rng: random.Random, choice_count: int = 2, **_: int) -> None:
        self.hosts = tuple(hosts)
        self.rng = rng
        self.choices = max(2, choice_count)
        self.weighted = len({h.weight for h in hosts}) > 1

    def choose_host(self, context: object) -> Any:
        hosts = self.hosts
        n = len(hosts)
        if n < 2:
            return hosts[0] if hosts else None
        rand = self.rng.randrange
        best = hosts[rand(n)]
        for _ in range(self.choices - 1):
            other = hosts[rand(n)]
            if self.weighted:
                if other.active_rq * best.weight < best.active_rq * other.weight:
                    best = other
            elif other.active_rq < best.active_rq:
                best = other
        return best
