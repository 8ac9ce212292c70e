"""Load balancers as pure objects with an injected random source; vectors from Envoy's tests."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from pilotfish.proxy.upstream.host_set import Host
from pilotfish.proxy.upstream.lb import LeastRequest, MaglevTable, RandomLB, Ring, RoundRobin
from pilotfish.proxy.upstream.lb.edf import EdfScheduler


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


def test_least_request_choice_count_sharpens_the_choice() -> None:
    hosts = [H(str(i), active_rq=i) for i in range(10)]
    lb2, lb5 = LeastRequest(hosts, random.Random(1)), LeastRequest(hosts, random.Random(1), choice_count=5)
    two = Counter(lb2.choose_host(None).name for _ in range(2000))
    five = Counter(lb5.choose_host(None).name for _ in range(2000))
    assert five["0"] > two["0"] and five["9"] < two["9"]


def test_weighted_least_request_divides_weight_by_active_requests() -> None:
    """Unequal weights: EDF on weight / (active + 1) (active_request_bias 1.0)."""
    a, b = H("a", weight=2), H("b", weight=1)
    lb = LeastRequest([a, b], random.Random(0))
    assert lb.edf is not None
    assert Counter(lb.choose_host(None).name for _ in range(300)) == {"a": 200, "b": 100}
    a.active_rq = 3  # a: 2/4 = 0.5, b: 1/1 = 1 → b now gets twice a's share
    assert Counter(lb.choose_host(None).name for _ in range(300)) == {"a": 100, "b": 200}


def test_active_request_bias_zero_is_weighted_round_robin_and_explicit_bias_forces_edf() -> None:
    a, b = H("a", weight=3, active_rq=50), H("b", weight=1)
    lb = LeastRequest([a, b], random.Random(0), active_request_bias=0.0)
    assert Counter(lb.choose_host(None).name for _ in range(400)) == {"a": 300, "b": 100}
    equal = LeastRequest([H("x"), H("y")], random.Random(0), active_request_bias=2.0)
    assert equal.edf is not None
    assert equal.host_weight(H("z", weight=4, active_rq=1)) == 1.0  # 4 / 2**2


def test_random_ignores_weights_like_envoy() -> None:
    lb = RandomLB([H("a", 3), H("b", 1)], random.Random(0))
    picks = Counter(lb.choose_host(None).name for _ in range(4000))
    assert 1800 < picks["a"] < 2200


def test_empty_host_sets() -> None:
    for cls in (RoundRobin, LeastRequest, RandomLB):
        assert cls([], random.Random(0)).choose_host(None) is None
    assert Ring([], 1.0).choose(5) is None
    assert MaglevTable([], 0.0, 7).choose(5) is None


def test_edf_breaks_ties_by_insertion_order() -> None:
    edf: EdfScheduler[str] = EdfScheduler()
    for name in "abc":
        edf.add(1.0, name)
    assert [edf.pick_and_add(lambda _: 1.0) for _ in range(6)] == list("abcabc")


def _hosts(keys: bool) -> list[Host]:
    return [Host("127.0.0.1", p, hash_key=str(p) if keys else "") for p in range(90, 96)]


def test_ring_hash_matches_envoy_ring() -> None:
    """Envoy's ring_hash_lb_test BasicWithHostname: 6 hosts, minimum_ring_size 12."""
    hosts = _hosts(keys=True)
    ring = Ring([(h, 1 / 6) for h in hosts], 1 / 6, minimum_ring_size=12)
    assert len(ring) == 12
    assert ring.hashes[:3] == [1975508444536362413, 2376063919839173711, 2386806903309390596]
    assert [h.port for h in ring.hosts[:3]] == [95, 95, 93]
    assert ring.choose(0) is hosts[5]
    assert ring.choose(2**64 - 1) is hosts[5]  # past the last point: wraps to the first
    assert ring.choose(7225015537174310577) is hosts[2]
    assert ring.choose(6803900775736438537) is hosts[3]


def test_ring_size_follows_weights_and_bounds() -> None:
    a, b = Host("10.0.0.1", 80, 1), Host("10.0.0.2", 80, 3)
    ring = Ring([(a, 0.25), (b, 0.75)], 0.25, minimum_ring_size=8)
    assert Counter(h.port and h.address for h in ring.hosts) == {"10.0.0.1": 2, "10.0.0.2": 6}
    assert len(Ring([(a, 0.25), (b, 0.75)], 0.25, minimum_ring_size=1024, maximum_ring_size=100)) == 100


def test_maglev_matches_envoy_table() -> None:
    """Envoy's maglev_lb_test Basic and BasicWithHostName, table size 7."""
    hosts = _hosts(keys=False)
    table = MaglevTable([(h, 1 / 6) for h in hosts], 1 / 6, 7)
    assert [hosts.index(table.choose(i)) for i in range(14)] == [2, 4, 0, 1, 5, 0, 3] * 2
    hosts = _hosts(keys=True)
    table = MaglevTable([(h, 1 / 6) for h in hosts], 1 / 6, 7)
    assert [hosts.index(table.choose(i)) for i in range(7)] == [2, 5, 0, 3, 4, 1, 0]


def test_maglev_weights_and_default_table() -> None:
    a, b = Host("10.0.0.1", 80, 1), Host("10.0.0.2", 80, 3)
    table = MaglevTable([(a, 0.25), (b, 0.75)], 0.75)
    assert len(table.table) == 65537
    share = Counter(h.address for h in table.table)["10.0.0.1"] / 65537
    assert abs(share - 0.25) < 0.01
