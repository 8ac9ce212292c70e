"""ResourceManager: Envoy's circuit breakers and retry budget."""

from pilotfish.proxy.upstream.circuit_breaker import (
    UNLIMITED, CircuitBreakerSettings, ClusterResources, ResourceManager, Thresholds,
)


def test_envoy_defaults():
    rm = ResourceManager()
    assert (rm.connections.max, rm.pending_requests.max, rm.requests.max, rm.retries.max) == (1024, 1024, 1024, 3)
    assert rm.connection_pools.max == UNLIMITED


def test_try_and_release_count_overflow():
    rm = ResourceManager(Thresholds(max_connections=1, max_pending_requests=1, max_requests=2))
    assert rm.try_connection() and not rm.try_connection()
    assert rm.cx_overflow == 1
    rm.connections.dec()
    assert rm.try_connection()
    assert rm.try_pending() and not rm.try_pending()
    assert rm.try_request() and rm.try_request() and not rm.try_request()
    # A request overflowing max_requests is counted as upstream_rq_pending_overflow (Envoy).
    assert rm.rq_pending_overflow == 2
    assert dict(rm.counters())["upstream_rq_pending_overflow"] == 2


def test_max_retries_without_budget():
    rm = ResourceManager(Thresholds(max_retries=2))
    assert rm.try_retry() and rm.try_retry() and not rm.try_retry()
    assert rm.rq_retry_overflow == 1
    rm.retries.dec()
    assert rm.try_retry()


def test_retry_budget_scales_with_active_and_pending():
    # budget 20% of (active + pending), but never below min_retry_concurrency (3).
    rm = ResourceManager(Thresholds(max_retries=1, budget_percent=20.0))
    assert rm.retries.current_max() == 3  # max_retries is not used once a budget is set
    for _ in range(30):
        rm.try_request()
    for _ in range(10):
        rm.try_pending()
    assert rm.retries.current_max() == 8
    for _ in range(8):
        assert rm.try_retry()
    assert not rm.try_retry()


def test_budget_min_concurrency_only():
    rm = ResourceManager(Thresholds(min_retry_concurrency=1))
    assert rm.retries.uses_budget and rm.retries.current_max() == 1


def test_gauges_open_and_remaining():
    rm = ResourceManager(Thresholds(max_connections=1, track_remaining=True))
    g = dict(rm.gauges())
    assert g["circuit_breakers.default.cx_open"] == 0 and g["circuit_breakers.default.remaining_cx"] == 1
    rm.try_connection()
    g = dict(rm.gauges())
    assert g["circuit_breakers.default.cx_open"] == 1 and g["circuit_breakers.default.remaining_cx"] == 0
    assert "circuit_breakers.default.remaining_rq" in g
    assert not any("remaining" in k for k, _ in ResourceManager().gauges())


def test_cluster_resources_per_priority():
    cr = ClusterResources(CircuitBreakerSettings(high=Thresholds(max_requests=5)))
    assert cr[0].requests.max == 1024 and cr[1].requests.max == 5
    assert dict(cr[1].gauges()).keys() >= {"circuit_breakers.high.rq_open"}
