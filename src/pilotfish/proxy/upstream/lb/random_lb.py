"""RANDOM: a uniformly random host of the chosen set. Like Envoy's RandomLoadBalancer it does
not look at endpoint weights."""

from __future__ import annotations

import random
from typing import Any, Sequence


class RandomLB:
    __slots__ = ("hosts", "rng")

    def __init__(self, hosts: Sequence[Any], rng: random.Random, **_: Any) -> None:
        self.hosts = tuple(hosts)
        self.rng = rng

    def choose_host(self, context: object) -> Any:
        hosts = self.hosts
        if not hosts:
            return None
        return hosts[self.rng.getrandbits(64) % len(hosts)]
