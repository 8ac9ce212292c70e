"""RING_HASH and MAGLEV in front of priorities (Envoy's ThreadAwareLoadBalancerBase).

One table per priority, over its healthy hosts (all hosts when the level is in panic), with
weights normalized to sum to 1 — per locality times the locality's share when locality-weighted
LB is on. The request hash (route ``hash_policy``; a random value without one) picks the level
with ``hash % 100`` and the host from that level's table.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Sequence

from ..host_set import Host, Level
from ..priority import PriorityLoad, choose_priority

Weighted = list[tuple[Host, float]]
MakeTable = Callable[[Weighted, float, float], Any]  # (normalized, min weight, max weight)


def _normalize_hosts(hosts: Sequence[Host], share: float, out: Weighted) -> None:
    total = sum(h.weight for h in hosts)
    for h in hosts:
        out.append((h, h.weight * share / total))


def normalized_weights(level: Level, panic: bool, locality_weighted: bool) -> Weighted:
    out: Weighted = []
    if locality_weighted and level.localities:
        total = sum(loc.weight for loc in level.localities)
        if total == 0:
            return out
        for loc in level.localities:
            members = loc.hosts if panic else loc.healthy
            if loc.weight and members:
                _normalize_hosts(members, loc.weight / total, out)
        return out
    members = level.hosts if panic else level.healthy
    if members:
        _normalize_hosts(members, 1.0, out)
    return out


def request_hash(stream: Any) -> int | None:
    """The route's hash for this request (its HashPolicy, router/hash_policy.py, computes it),
    or None (no policy, or nothing to hash)."""
    route = getattr(stream, "route", None)
    policy = getattr(route.action, "hash_policy", None) if route is not None else None
    return policy.generate(stream) if policy is not None else None


class HashBalancer:
    __slots__ = ("slots", "rng")

    def __init__(self, levels: Sequence[Level], load: PriorityLoad, make_table: MakeTable,
                 rng: random.Random, locality_weighted: bool) -> None:
        self.rng = rng
        tables = []
        for p, level in enumerate(levels):
            weighted = normalized_weights(level, load.panic[p], locality_weighted)
            weights = [w for _, w in weighted]
            tables.append(make_table(weighted, min(weights, default=1.0), max(weights, default=0.0)))
        self.slots = tuple(tables[choose_priority(i, load)[0]] for i in range(100))

    def choose_host(self, context: object) -> Any:
        h = request_hash(context) if context is not None else None
        if h is None:
            h = self.rng.getrandbits(64)
        return self.slots[h % 100].choose(h)
