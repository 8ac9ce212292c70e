"""Envoy's fully jittered exponential back-off (JitteredExponentialBackOffStrategy).

The n-th call returns a uniformly random whole number of milliseconds in [0, base * 2^(n-1)),
the window doubling until it would pass ``max_ms`` and then staying at ``max_ms``. With the
router's defaults (25 ms base, 10x cap) the first retry waits 0-24 ms, the second 0-49 ms, the
third 0-99 ms, then 0-199 ms and 0-249 ms from then on. The random source is injected: any
object with ``getrandbits(64)`` (``random.Random``), as Envoy's ``random() % window``.
"""

from __future__ import annotations

from typing import Protocol


class RandomSource(Protocol):
    def getrandbits(self, k: int, /) -> int: ...


DEFAULT_BASE_MS = 25  # runtime key upstream.base_retry_backoff_ms


class JitteredExponentialBackOff:
    __slots__ = ("base_ms", "max_ms", "next_ms", "doubling_limit", "rng")

    def __init__(self, base_ms: int, max_ms: int, rng: RandomSource) -> None:
        if base_ms <= 0 or max_ms < base_ms:
            raise ValueError("back-off needs 0 < base_ms <= max_ms")
        self.base_ms = base_ms
        self.max_ms = max_ms
        self.next_ms = base_ms
        self.doubling_limit = max_ms // 2  # doubling past this would exceed the max
        self.rng = rng

    def next_backoff_ms(self) -> int:
        window = self.next_ms
        self.next_ms = window * 2 if window < self.doubling_limit else self.max_ms
        return self.rng.getrandbits(64) % window

    def next_backoff(self) -> float:
        """The next delay in seconds."""
        return self.next_backoff_ms() / 1000.0

    def reset(self) -> None:
        self.next_ms = self.base_ms
