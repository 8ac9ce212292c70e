"""LEAST_REQUEST as Envoy: with equal weights, the fewest active requests among ``choice_count``
random picks (power of two choices by default); with unequal weights, or an explicit
``active_request_bias``, an EDF schedule where a host's weight is
``load_balancing_weight / (active_requests + 1) ** active_request_bias``, evaluated each time
the host is (re)scheduled."""

from __future__ import annotations

import random
from typing import Any, Sequence

from .edf import EdfScheduler


class LeastRequest:
    __slots__ = ("hosts", "rng", "choices", "bias", "edf")

    def __init__(self, hosts: Sequence[Any], rng: random.Random, choice_count: int = 2,
                 active_request_bias: float | None = None, **_: Any) -> None:
        self.hosts = tuple(hosts)
        self.rng = rng
        self.choices = max(2, choice_count)
        bias = 1.0 if active_request_bias is None else active_request_bias
        self.bias = 1.0 if bias < 0.0 or bias != bias else bias  # negative or NaN: Envoy uses 1.0
        self.edf: EdfScheduler[Any] | None = None
        weighted = len({h.weight for h in self.hosts}) > 1 or active_request_bias is not None
        if weighted and len(self.hosts) > 1:
            edf: EdfScheduler[Any] = EdfScheduler()
            for h in self.hosts:
                edf.add(self.host_weight(h), h)
            for _ in range(rng.randrange(len(self.hosts))):  # a random start, as createWithPicks
                edf.pick_and_add(self.host_weight)
            self.edf = edf

    def host_weight(self, host: Any) -> float:
        bias = self.bias
        if bias == 1.0:
            return host.weight / (host.active_rq + 1)
        if bias == 0.0:
            return float(host.weight)
        return host.weight / (host.active_rq + 1) ** bias

    def choose_host(self, context: object) -> Any:
        if self.edf is not None:
            return self.edf.pick_and_add(self.host_weight)
        hosts = self.hosts
        n = len(hosts)
        if n < 2:
            return hosts[0] if hosts else None
        bits = self.rng.getrandbits  # Envoy: random() % size
        best = hosts[bits(64) % n]
        for _ in range(self.choices - 1):
            other = hosts[bits(64) % n]
            if other.active_rq < best.active_rq:
                best = other
        return best
