"""Jittered exponential back-off for reconnecting to the management server (Envoy's defaults)."""

from __future__ import annotations

import random


class Backoff:
    """Full jitter: the n-th delay is uniform in [0, min(base * 2**n, cap)).

    Envoy's gRPC mux uses a 500 ms base and a 30 s cap; a stream that delivered a response
    resets the sequence. ``rng`` is injected so tests can pin the delays.
    """

    __slots__ = ("base", "cap", "rng", "attempt")

    def __init__(self, rng: random.Random, base: float = 0.5, cap: float = 30.0) -> None:
        self.base = base
        self.cap = cap
        self.rng = rng
        self.attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self.base * (2 ** self.attempt), self.cap)
        if ceiling < self.cap:
            self.attempt += 1
        return self.rng.uniform(0, ceiling)

    def reset(self) -> None:
        self.attempt = 0
