"""Priority load, panic and locality weighting without sockets, from Envoy's documented tables
(arch_overview/upstream/load_balancing: priority, panic_threshold, locality_weight,
overprovisioning) and Envoy's own unit tests."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from pilotfish.proxy.upstream.host_set import DEGRADED, DRAINING, HEALTHY, UNHEALTHY, Host, build_levels
from pilotfish.proxy.upstream.lb import HashBalancer, LbOptions, PriorityBalancer, build
from pilotfish.proxy.upstream.priority import choose_priority, effective_locality_weights, priority_load


def level(priority: int, healthy_percent: int, total: int = 100, *, locality: str = "",
          locality_weight: int = 0, unhealthy: int = UNHEALTHY) -> list[Host]:
    """``total`` hosts at ``priority``, ``healthy_percent`` of them healthy."""
    n_healthy = total * healthy_percent // 100
    return [Host(f"10.{priority}.{len(locality)}.{i}", 80, priority=priority,
                 locality=("r", locality, ""), locality_weight=locality_weight,
                 eds_health=HEALTHY if i < n_healthy else unhealthy)
            for i in range(total)]


def load_of(*percents: int, **kw: int) -> tuple[int, ...]:
    hosts = [h for p, pct in enumerate(percents) for h in level(p, pct)]
    return priority_load(build_levels(hosts), **kw).healthy


def test_brief_example_two_of_four_healthy() -> None:
    hosts = level(0, 50, total=4) + level(1, 100, total=4)
    load = priority_load(build_levels(hosts))
    assert load.healthy == (70, 30) and load.panic == (False, False)


@pytest.mark.parametrize(("p0", "expected"), [
    (100, (100, 0)), (72, (100, 0)), (71, (99, 1)), (50, (70, 30)), (25, (35, 65)), (0, (0, 100)),
])
def test_priority_table_p1_fully_healthy(p0: int, expected: tuple[int, int]) -> None:
    assert load_of(p0, 100) == expected


@pytest.mark.parametrize(("p0", "p1", "expected"), [
    (100, 100, (100, 0)), (72, 72, (100, 0)), (71, 71, (99, 1)), (50, 50, (70, 30)),
    (25, 100, (35, 65)), (25, 25, (50, 50)),
])
def test_priority_table_normalized_total_health(p0: int, p1: int, expected: tuple[int, int]) -> None:
    assert load_of(p0, p1) == expected


@pytest.mark.parametrize(("health", "expected"), [
    ((100, 100, 100), (100, 0, 0)), ((72, 72, 100), (100, 0, 0)), ((71, 71, 100), (99, 1, 0)),
    ((50, 50, 100), (70, 30, 0)), ((25, 100, 100), (35, 65, 0)), ((25, 25, 100), (35, 35, 30)),
])
def test_priority_table_three_levels(health: tuple[int, int, int], expected: tuple[int, ...]) -> None:
    assert load_of(*health) == expected


def test_rounding_leftover_goes_to_the_first_healthy_level() -> None:
    # health 35/35/28: normalized 98; shares round down to 35+35+28 = 98, +2 to P0 (panic off:
    # with the default threshold every level panics and load follows host counts instead).
    assert load_of(25, 25, 20, panic_threshold=0) == (37, 35, 28)
    assert load_of(25, 25, 20) == (34, 33, 33)


def test_overprovisioning_factor_from_the_assignment() -> None:
    assert load_of(50, 100, overprovisioning_factor=200) == (100, 0)
    assert load_of(50, 100, overprovisioning_factor=100) == (50, 50)


def test_panic_table() -> None:
    # P=1 fully healthy: normalized total is 100, P=0 never panics even at 0%.
    for p0 in (72, 50, 25, 0):
        hosts = level(0, p0) + level(1, 100)
        assert priority_load(build_levels(hosts)).panic == (False, False)
    # Both at 25%: normalized total 70, both below the 50% threshold: total panic, load by host count.
    load = priority_load(build_levels(level(0, 25) + level(1, 25)))
    assert load.panic == (True, True) and load.healthy == (50, 50)


def test_total_panic_shares_by_host_count_and_threshold_zero_disables_panic() -> None:
    hosts = level(0, 0, total=3) + level(1, 0, total=1)
    assert priority_load(build_levels(hosts)).healthy == (75, 25)
    off = priority_load(build_levels(hosts), panic_threshold=0)
    assert off.panic == (False, False) and off.healthy == (100, 0)
    lb = build(LbOptions(panic_threshold=0), build_levels(hosts), off, random.Random(0), 140)
    assert lb.choose_host(None) is None  # 503 "no healthy upstream"


def test_partial_panic_balances_over_all_hosts_of_that_level() -> None:
    hosts = level(0, 25, total=4) + level(1, 60, total=5)  # health 35 and 84: total 100 → no panic
    assert priority_load(build_levels(hosts)).panic == (False, False)
    hosts = level(0, 25, total=4) + level(1, 40, total=5)  # 35 + 56 = 91: P0 (25%) panics, P1 (40%) too
    load = priority_load(build_levels(hosts))
    assert load.panic == (True, True)
    hosts = level(0, 20, total=5) + level(1, 60, total=5, unhealthy=DRAINING)  # P1: 3 of 3 counted
    load = priority_load(build_levels(hosts))
    assert load.health == (28, 100) and load.panic == (False, False)


def test_draining_is_excluded_unhealthy_counts() -> None:
    drained = level(0, 50, total=4, unhealthy=DRAINING) + level(1, 100, total=4)
    assert priority_load(build_levels(drained)).healthy == (100, 0)  # 2 of 2 counted hosts
    failed = level(0, 50, total=4, unhealthy=UNHEALTHY) + level(1, 100, total=4)
    assert priority_load(build_levels(failed)).healthy == (70, 30)


def test_degraded_hosts_take_load_after_healthy_ones() -> None:
    hosts = level(0, 0, total=2, unhealthy=DEGRADED) + level(1, 50, total=2)
    load = priority_load(build_levels(hosts))
    assert load.health == (0, 70) and load.degraded_health == (100, 0)
    assert load.healthy == (0, 70) and load.degraded == (30, 0)
    assert choose_priority(69, load) == (1, False) and choose_priority(70, load) == (0, True)


def test_weighted_priority_health_uses_endpoint_weights() -> None:
    hosts = level(0, 50, total=2) + level(1, 100, total=2)
    hosts[0].weight = 3  # the healthy P0 host carries 3 of 4 weight units
    assert priority_load(build_levels(hosts)).healthy == (70, 30)
    assert priority_load(build_levels(hosts), weighted_priority_health=True).healthy == (100, 0)


def test_choose_priority_boundaries() -> None:
    load = priority_load(build_levels(level(0, 50, total=2) + level(1, 100, total=2)))
    assert [choose_priority(v, load)[0] for v in (0, 69, 70, 99, 169, 170)] == [0, 0, 1, 1, 0, 1]


def test_failover_balancer_sends_70_percent_to_p0_healthy_hosts_only() -> None:
    hosts = level(0, 50, total=4) + level(1, 100, total=4)
    levels = build_levels(hosts)
    lb = build(LbOptions(), levels, priority_load(levels), random.Random(3), 140)
    assert isinstance(lb, PriorityBalancer)
    picks = Counter(lb.choose_host(None).priority for _ in range(10000))
    assert 6800 < picks[0] < 7200
    chosen = {lb.choose_host(None).eds_health for _ in range(500)}
    assert chosen == {HEALTHY}


def test_all_p0_unhealthy_fails_over_completely() -> None:
    levels = build_levels(level(0, 0, total=2) + level(1, 100, total=2))
    for policy in ("ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "RING_HASH", "MAGLEV"):
        opts = LbOptions(policy=policy, table_size=7)
        lb = build(opts, levels, priority_load(levels), random.Random(0), 140)
        assert {lb.choose_host(None).priority for _ in range(50)} == {1}, policy


# ---- localities ------------------------------------------------------------------------------
@pytest.mark.parametrize(("x_healthy", "x_share"), [(100, 33), (70, 33), (69, 32), (50, 26), (25, 15), (0, 0)])
def test_locality_weight_table(x_healthy: int, x_share: int) -> None:
    """X weight 1, Y weight 2 (100% available), overprovisioning 1.4."""
    hosts = level(0, x_healthy, locality="x", locality_weight=1) + level(0, 100, locality="y", locality_weight=2)
    lvl = build_levels(hosts)[0]
    weights = effective_locality_weights(lvl)
    assert abs(100 * weights[0] / sum(weights) - x_share) < 1  # the table rounds whole percents
    lb = build(LbOptions(locality_weighted=True), (lvl,), priority_load((lvl,)), random.Random(0), 140)
    picks = Counter(lb.choose_host(None).locality[1] for _ in range(3000))
    assert abs(picks["x"] / 3000 - weights[0] / sum(weights)) < 0.01


def test_locality_weights_only_with_locality_weighted_lb_config() -> None:
    hosts = level(0, 100, total=1, locality="x", locality_weight=1) + level(0, 100, total=3, locality="y",
                                                                          locality_weight=1)
    levels = build_levels(hosts)
    flat = build(LbOptions(), levels, priority_load(levels), random.Random(0), 140)
    assert Counter(flat.choose_host(None).locality[1] for _ in range(400)) == {"x": 100, "y": 300}
    weighted = build(LbOptions(locality_weighted=True), levels, priority_load(levels), random.Random(0), 140)
    assert Counter(weighted.choose_host(None).locality[1] for _ in range(400)) == {"x": 200, "y": 200}


def test_locality_without_weight_gets_no_traffic() -> None:
    hosts = level(0, 100, total=2, locality="x") + level(0, 100, total=2, locality="y", locality_weight=5)
    levels = build_levels(hosts)
    lb = build(LbOptions(locality_weighted=True), levels, priority_load(levels), random.Random(0), 140)
    assert {lb.choose_host(None).locality[1] for _ in range(100)} == {"y"}


def test_hash_balancer_normalizes_locality_weights() -> None:
    hosts = level(0, 100, total=1, locality="x", locality_weight=3) + level(0, 100, total=3, locality="y",
                                                                          locality_weight=1)
    levels = build_levels(hosts)
    lb = build(LbOptions(policy="MAGLEV", locality_weighted=True), levels, priority_load(levels),
               random.Random(0), 140)
    assert isinstance(lb, HashBalancer)
    share = Counter(h.locality[1] for h in lb.slots[0].table)["x"] / 65537
    assert abs(share - 0.75) < 0.01


def test_ring_hash_failover_follows_the_hash() -> None:
    """Envoy's RingHashFailoverTest: P0 one of two healthy → 70/30 by hash % 100."""
    p0 = [Host("127.0.0.1", 80, priority=0), Host("127.0.0.1", 81, priority=0, eds_health=UNHEALTHY)]
    p1 = [Host("127.0.0.1", 82, priority=1)]
    levels = build_levels(p0 + p1)
    lb = build(LbOptions(policy="RING_HASH", minimum_ring_size=12), levels, priority_load(levels),
               random.Random(0), 140)
    assert lb.slots[69].choose(69) is p0[0]
    assert lb.slots[71].choose(71) is p1[0]
