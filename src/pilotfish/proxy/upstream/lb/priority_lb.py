"""Priority and locality selection in front of a per-host policy (Envoy's
ZoneAwareLoadBalancerBase, without zone-aware routing).

Each request draws a value in [0, 100) that picks a level and whether its healthy or degraded
hosts serve it; the 100 outcomes are precomputed into a table of pickers. A picker is the
policy's balancer over one host source: all hosts (the level is in panic), one locality
(locality-weighted LB; the locality comes from an EDF schedule over effective weights), or the
level's healthy or degraded hosts. Every source has its own balancer state, as in Envoy.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Sequence

from ..host_set import Host, Level
from ..priority import PriorityLoad, choose_priority, effective_locality_weights
from .edf import EdfScheduler

Picker = Callable[[object], Any]
MakeBalancer = Callable[[Sequence[Host]], Any]


class LocalityPicker:
    """Locality-weighted LB: an EDF pick of a locality, then that locality's balancer."""

    __slots__ = ("schedule", "weights", "balancers")

    def __init__(self, weights: list[float], balancers: list[Any]) -> None:
        self.weights = weights
        self.balancers = balancers
        self.schedule: EdfScheduler[int] = EdfScheduler()
        for i, w in enumerate(weights):
            if w > 0:
                self.schedule.add(w, i)

    def choose_host(self, context: object) -> Any:
        i = self.schedule.pick_and_add(self.weights.__getitem__)
        return self.balancers[i].choose_host(context)  # type: ignore[index]


class PriorityBalancer:
    __slots__ = ("table", "rng")

    def __init__(self, levels: Sequence[Level], load: PriorityLoad, make: MakeBalancer,
                 rng: random.Random, locality_weighted: bool, overprovisioning_factor: int) -> None:
        self.rng = rng
        pickers: dict[tuple[int, bool], Picker] = {}
        for p, level in enumerate(levels):
            if load.panic[p]:
                every = make(level.hosts).choose_host
                pickers[(p, False)] = pickers[(p, True)] = every
                continue
            for degraded in (False, True):
                pickers[(p, degraded)] = _source(level, degraded, make, locality_weighted,
                                                 overprovisioning_factor)
        self.table = tuple(pickers[choose_priority(i, load)] for i in range(100))

    def choose_host(self, context: object) -> Any:
        return self.table[self.rng.getrandbits(64) % 100](context)


def _source(level: Level, degraded: bool, make: MakeBalancer, locality_weighted: bool,
            factor: int) -> Picker:
    if locality_weighted and level.localities:
        weights = effective_locality_weights(level, factor, degraded)
        if any(w > 0 for w in weights):
            balancers = [make(loc.degraded if degraded else loc.healthy) for loc in level.localities]
            return LocalityPicker(weights, balancers).choose_host
    return make(level.degraded if degraded else level.healthy).choose_host
