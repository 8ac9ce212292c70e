"""Priority load, panic and locality weights: Envoy's LoadBalancerBase arithmetic, pure.

Everything is integer percentages as in Envoy (``load_balancer_impl.cc``):

* a level's health = min(100, overprovisioning_factor * healthy / (hosts - excluded)),
  degraded likewise; counts, or weights when ``weighted_priority_health`` is set;
* normalized total availability = min(100, sum of health + degraded over levels);
* load is handed out level by level, each taking health * 100 / total (capped by what is
  left), healthy first, then degraded; rounding leftovers go to the first available level;
* a level is in panic when (healthy + degraded) / (hosts - excluded) < panic threshold, unless
  the normalized total is 100; when every level panics, load follows raw host counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .host_set import Level

DEFAULT_OVERPROVISIONING = 140
DEFAULT_PANIC_THRESHOLD = 50


@dataclass(frozen=True, slots=True)
class PriorityLoad:
    healthy: tuple[int, ...]  # percent of requests to each level's healthy hosts
    degraded: tuple[int, ...]  # percent of requests to each level's degraded hosts
    panic: tuple[bool, ...]  # level balances over all its hosts, ignoring health
    health: tuple[int, ...]  # each level's health score (0-100)
    degraded_health: tuple[int, ...]


def _distribute(availability: Sequence[int], total_load: int, normalized: int) -> tuple[list[int], int, int]:
    load = []
    first = -1
    for i, a in enumerate(availability):
        if first < 0 and a > 0:
            first = i
        share = min(total_load, a * 100 // normalized)
        load.append(share)
        total_load -= share
    return load, first, total_load


def priority_load(levels: Sequence[Level], overprovisioning_factor: int = DEFAULT_OVERPROVISIONING,
                  panic_threshold: int = DEFAULT_PANIC_THRESHOLD,
                  weighted_priority_health: bool = False) -> PriorityLoad:
    n = len(levels)
    health = [0] * n
    degraded = [0] * n
    for i, level in enumerate(levels):
        count = len(level.hosts) - len(level.excluded)
        if count <= 0:
            continue
        if weighted_priority_health:
            h = sum(x.weight for x in level.healthy)
            d = sum(x.weight for x in level.degraded)
            total = sum(x.weight for x in level.hosts) - sum(x.weight for x in level.excluded)
        else:
            h, d, total = len(level.healthy), len(level.degraded), count
        health[i] = min(100, overprovisioning_factor * h // total)
        degraded[i] = min(100, overprovisioning_factor * d // total)
    normalized = min(100, sum(health) + sum(degraded))
    healthy_load = [0] * n
    degraded_load = [0] * n
    if normalized > 0:
        healthy_load, first_healthy, left = _distribute(health, 100, normalized)
        degraded_load, first_degraded, left = _distribute(degraded, left, normalized)
        if left:
            if first_healthy != -1:
                healthy_load[first_healthy] += left
            else:
                degraded_load[first_degraded] += left
    threshold = min(100, panic_threshold)
    panic = [False] * n
    if threshold == 0 and normalized == 0:
        healthy_load = [100] + [0] * (n - 1)  # nothing routable; choosePriority still needs 100
    else:
        for i, level in enumerate(levels):
            panic[i] = normalized != 100 and in_panic(level, threshold)
        if all(panic):
            healthy_load, degraded_load = _total_panic(levels)
    return PriorityLoad(tuple(healthy_load), tuple(degraded_load), tuple(panic), tuple(health),
                        tuple(degraded))


def in_panic(level: Level, threshold: int) -> bool:
    count = len(level.hosts) - len(level.excluded)
    if count <= 0:
        return 0.0 < threshold
    available = 100.0 * (len(level.healthy) + len(level.degraded)) / count
    return available < threshold


def _total_panic(levels: Sequence[Level]) -> tuple[list[int], list[int]]:
    """Every level panics: load by host count, health ignored (recalculateLoadInTotalPanic)."""
    n = len(levels)
    total = sum(len(level.hosts) for level in levels)
    if total == 0:
        return [100] + [0] * (n - 1), [0] * n
    load = [100 * len(level.hosts) // total for level in levels]
    first = next(i for i, level in enumerate(levels) if level.hosts)
    load[first] += 100 - sum(load)
    return load, [0] * n


def choose_priority(value: int, load: PriorityLoad) -> tuple[int, bool]:
    """(level, degraded?) for a random or hash value, as Envoy's choosePriority."""
    x = value % 100 + 1
    acc = 0
    for i, share in enumerate(load.healthy):
        acc += share
        if x <= acc:
            return i, False
    for i, share in enumerate(load.degraded):
        acc += share
        if x <= acc:
            return i, True
    return 0, False


def effective_locality_weights(level: Level, overprovisioning_factor: int = DEFAULT_OVERPROVISIONING,
                               degraded: bool = False) -> list[float]:
    """Locality weight scaled by its availability (Envoy's effectiveLocalityWeight)."""
    out = []
    for loc in level.localities:
        count = len(loc.hosts) - len(loc.excluded)
        if count <= 0:
            out.append(0.0)
            continue
        eligible = len(loc.degraded if degraded else loc.healthy)
        ratio = min(1.0, overprovisioning_factor / 100.0 * eligible / count)
        out.append(loc.weight * ratio)
    return out
