"""Load balancers, one module per policy, each behind ``choose_host(context)``.

A balancer is built for one immutable host set; when membership changes the cluster builds a
new one (a new snapshot), so ``choose_host`` never sees a list being mutated. ``context`` is the
request stream (Envoy's LoadBalancerContext); the policies here do not need it yet.
"""

from __future__ import annotations

import random as _random
from typing import Protocol, Sequence

from .least_request import LeastRequest
from .random_lb import RandomLB
from .round_robin import RoundRobin


class HostLike(Protocol):
    weight: int
    active_rq: int


class LoadBalancer(Protocol):
    def choose_host(self, context: object) -> HostLike | None: ...


POLICIES = {"ROUND_ROBIN": RoundRobin, "LEAST_REQUEST": LeastRequest, "RANDOM": RandomLB}


def build(policy: str, hosts: Sequence[HostLike], rng: _random.Random, **options: int) -> LoadBalancer:
    return POLICIES[policy](hosts, rng, **options)
