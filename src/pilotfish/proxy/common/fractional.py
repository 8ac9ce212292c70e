"""Envoy's FractionalPercent (envoy.type.v3): a share of requests, drawn with an injected random
source."""

from __future__ import annotations

from dataclasses import dataclass

from ...xds.backoff import RandomSource

HUNDRED, TEN_THOUSAND, MILLION = 100, 10_000, 1_000_000


@dataclass(frozen=True, slots=True)
class Fraction:
    """envoy.type.v3.FractionalPercent (an unset percentage is 0/100: never)."""

    numerator: int = 0
    denominator: int = HUNDRED

    def sample(self, rng: RandomSource) -> bool:
        n = self.numerator
        if n <= 0:
            return False  # never and always draw nothing (the common Istio 0% and 100%)
        if n >= self.denominator:
            return True
        return rng.getrandbits(64) % self.denominator < n
