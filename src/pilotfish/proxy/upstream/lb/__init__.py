"""Load balancers, one module per policy, each behind ``choose_host(context)``.

A balancer is built for one immutable host snapshot; when membership or health changes the
cluster builds a new one, so ``choose_host`` never sees a list being mutated. ``context`` is
the request stream (Envoy's LoadBalancerContext): hashing policies read the route's
``hash_policy`` from it, ORIGINAL_DST its headers and socket.

``build`` composes Envoy's layers: priority and locality selection (``priority_lb``,
``consistent_hash``) in front of the per-host policy. A single all-healthy priority without
locality weighting needs no selection, so the policy's own balancer is returned and a request
pays for nothing else.
"""

from __future__ import annotations

import random as _random
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, Sequence

from ..host_set import Level
from ..priority import DEFAULT_PANIC_THRESHOLD, PriorityLoad
from .consistent_hash import HashBalancer
from .least_request import LeastRequest
from .maglev import DEFAULT_TABLE_SIZE, MaglevTable
from .original_dst import OriginalDst
from .priority_lb import PriorityBalancer
from .random_lb import RandomLB
from .ring_hash import DEFAULT_MAX_RING, DEFAULT_MIN_RING, Ring
from .round_robin import RoundRobin

__all__ = ["HashBalancer", "LbOptions", "LeastRequest", "LoadBalancer", "MaglevTable", "OriginalDst",
           "PriorityBalancer", "RandomLB",
           "Ring", "RoundRobin", "build"]

ROUND_ROBIN, LEAST_REQUEST, RANDOM = "ROUND_ROBIN", "LEAST_REQUEST", "RANDOM"
RING_HASH, MAGLEV, CLUSTER_PROVIDED = "RING_HASH", "MAGLEV", "CLUSTER_PROVIDED"


class LoadBalancer(Protocol):
    def choose_host(self, context: object) -> Any: ...


@dataclass(frozen=True, slots=True)
class LbOptions:
    policy: str = ROUND_ROBIN
    choice_count: int = 2
    active_request_bias: float | None = None  # None: not configured (1.0, P2C for equal weights)
    minimum_ring_size: int = DEFAULT_MIN_RING
    maximum_ring_size: int = DEFAULT_MAX_RING
    table_size: int = DEFAULT_TABLE_SIZE
    panic_threshold: int = DEFAULT_PANIC_THRESHOLD
    locality_weighted: bool = False
    use_hostname_for_hashing: bool = False


POLICIES = {ROUND_ROBIN: RoundRobin, LEAST_REQUEST: LeastRequest, RANDOM: RandomLB}


def host_balancer(options: LbOptions, hosts: Sequence[Any], rng: _random.Random) -> LoadBalancer:
    """The per-host policy over one flat host list."""
    return POLICIES[options.policy](hosts, rng, choice_count=options.choice_count,  # type: ignore[no-any-return]
                                    active_request_bias=options.active_request_bias)


def build(options: LbOptions, levels: Sequence[Level], load: PriorityLoad, rng: _random.Random,
          overprovisioning_factor: int) -> LoadBalancer:
    if options.policy == RING_HASH:
        make_table: Any = lambda w, lo, hi: Ring(w, lo, options.minimum_ring_size, options.maximum_ring_size)
        return HashBalancer(levels, load, make_table, rng, options.locality_weighted)
    if options.policy == MAGLEV:
        make_table = lambda w, lo, hi: MaglevTable(w, hi, options.table_size)
        return HashBalancer(levels, load, make_table, rng, options.locality_weighted)
    make = partial(host_balancer, options, rng=rng)
    if (len(levels) == 1 and load.healthy[0] == 100 and not load.panic[0]
            and not options.locality_weighted):
        return make(levels[0].healthy)
    return PriorityBalancer(levels, load, make, rng, options.locality_weighted, overprovisioning_factor)

