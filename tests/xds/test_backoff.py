"""JitteredExponentialBackOff: Envoy's fully jittered exponential back-off."""

import random

import pytest

from pilotfish.xds.backoff import JitteredExponentialBackOff


class MaxRandom:
    """Always the largest 64-bit value: ``value % window`` shows the window."""

    def getrandbits(self, k):
        return (1 << k) - 1


def windows(strategy, n):
    out = []
    for _ in range(n):
        out.append(strategy.next_ms)
        strategy.next_backoff_ms()
    return out


def test_window_doubles_then_stays_at_max():
    # Router defaults: base 25 ms, max 10x base -> windows 25, 50, 100, 200, then 250.
    s = JitteredExponentialBackOff(25, 250, MaxRandom())
    assert windows(s, 7) == [25, 50, 100, 200, 250, 250, 250]


def test_values_are_below_the_window():
    rng = random.Random(7)
    s = JitteredExponentialBackOff(25, 250, rng)
    for window in (25, 50, 100, 200, 250, 250):
        assert 0 <= s.next_backoff_ms() < window


def test_uses_random_modulo_window():
    class Fixed:
        def getrandbits(self, k):
            return 999

    s = JitteredExponentialBackOff(500, 30000, Fixed())
    assert s.next_backoff_ms() == 999 % 500
    assert s.next_backoff_ms() == 999 % 1000
    s.reset()
    assert s.next_backoff_ms() == 499
    assert s.next_backoff() == pytest.approx(0.999)


def test_base_equal_to_max():
    s = JitteredExponentialBackOff(10, 10, MaxRandom())
    assert windows(s, 3) == [10, 10, 10]


def test_rejects_bad_bounds():
    with pytest.raises(ValueError):
        JitteredExponentialBackOff(0, 10, MaxRandom())
    with pytest.raises(ValueError):
        JitteredExponentialBackOff(20, 10, MaxRandom())


def test_backoff_is_jittered_exponential_and_capped() -> None:
    b = JitteredExponentialBackOff(500, 4000, random.Random(1))
    delays = [b.next_backoff() for _ in range(10)]
    assert all(0 <= d < 4.0 for d in delays)
    assert delays[0] < 0.5 and delays[1] < 1.0
    b.reset()
    assert b.next_backoff() < 0.5
