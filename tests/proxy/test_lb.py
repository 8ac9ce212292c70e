"""Load balancers as pure objects with an injected random source."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from pilotfish.proxy.lb import LeastRequest, RandomLB, RoundRobin


@dataclass
class H:
    name: str
    weight: int = 1
    active_rq: int = 0


def test_round_robin_equal_weights_cycles() -> None:
    hosts = [H("a"), H("b"), H("c")]
    lb = RoundRobin(hosts, random.Random(0))
    picks = [lb.choose_host(None).name for _ in range(6)]
    assert sorted(picks[:3]) == ["a", "b", "c"] and picks[:3] == picks[3:]


def test_round_robin_weighted_is_smooth() -> None:
    lb = RoundRobin([H("a", 5), H("b", 1), H("c", 1)], random.Random(0))
    picks = [lb.choose_host(None).name for _ in range(70)]
    assert Counter(picks) == {"a": 50, "b": 10, "c": 10}
    assert "aaaaaa" not in "".join(picks)  # interleaved, not bursts


def test_least_request_prefers_idle_hosts() -> None:
    hosts = [H("busy", active_rq=10), H("idle")]
    lb = LeastRequest(hosts, random.Random(0))
    picks = Counter(lb.choose_host(None).name for _ in range(200))
    assert picks["idle"] > 140


def test_random_follows_weights() -> None:
    lb = RandomLB([H("a", 3), H("b", 1)], random.Random(0))
    picks = Counter(lb.choose_host(None).name for _ in range(4000))
    assert 2800 < picks["a"] < 3200


def test_empty_host_sets() -> None:
    for cls in (RoundRobin, LeastRequest, RandomLB):
        assert cls([], random.Random(0)).choose_host(None) is None
