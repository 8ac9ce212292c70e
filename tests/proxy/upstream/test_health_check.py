"""HealthChecker: Envoy's active HTTP health-check state machine with a fake clock."""

import pytest

from pilotfish.proxy.upstream.health_check import (
    CHANGE_PENDING, CHANGED, UNCHANGED, HealthChecker, HealthCheckSettings, HttpCheck,
)
from pilotfish.proxy.upstream.host_health import (
    ACTIVE_HC_TIMEOUT, DEGRADED_ACTIVE_HC, EXCLUDED_VIA_IMMEDIATE_HC_FAIL, FAILED_OUTLIER_CHECK, HostHealth,
)


class H:
    def __init__(self):
        self.healthy = True


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class Zero:
    def getrandbits(self, k):
        return 0


def make(traffic=True, rng=None, **kw):
    base = dict(timeout=1.0, interval=5.0, unhealthy_threshold=3, healthy_threshold=2,
                http=HttpCheck(path=b"/healthz"))
    base.update(kw)
    clock = Clock()
    changes = []
    hc = HealthChecker(HealthCheckSettings(**base), HostHealth(lambda: changes.append(1)), clock, rng or Zero(),
                       has_traffic=lambda: traffic)
    host = H()
    (session,) = hc.set_hosts([host])
    return hc, session, host, clock, changes


def test_hosts_start_failed_and_first_success_is_enough():
    hc, s, host, clock, changes = make()
    assert not host.healthy  # FAILED_ACTIVE_HC until checked
    assert s.next_check_at == 0.0 and hc.due() == [s]
    s.begin_check()
    assert hc.due() == []  # in flight
    assert s.on_response(200) == CHANGED
    assert host.healthy and hc.stats.healthy == 1 and hc.stats.attempt == 1
    assert s.next_check_at == 5.0


def test_expected_statuses_default_is_200_only():
    hc, s, host, _, _ = make()
    s.on_response(200)
    assert s.on_response(204) == CHANGED  # not expected and not retriable: unhealthy at once
    assert not host.healthy


def test_network_failures_need_unhealthy_threshold():
    hc, s, host, clock, _ = make()
    s.on_response(200)
    assert s.on_network_failure() == CHANGE_PENDING
    assert s.on_timeout() == CHANGE_PENDING
    assert host.healthy
    assert s.on_network_failure() == CHANGED
    assert not host.healthy and hc.stats.network_failure == 3 and hc.stats.healthy == 0


def test_retriable_statuses_count_toward_threshold():
    hc, s, host, _, _ = make(http=HttpCheck(path=b"/", retriable=((503, 504),)))
    s.on_response(200)
    assert s.on_response(503) == CHANGE_PENDING
    assert s.on_response(503) == CHANGE_PENDING
    assert s.on_response(503) == CHANGED


def test_healthy_threshold_after_failure():
    hc, s, host, _, _ = make()
    s.on_response(500)  # first check fails: stays failed
    assert not host.healthy
    assert s.on_response(200) == CHANGE_PENDING
    assert s.on_response(200) == CHANGED and host.healthy


def test_intervals_edge_and_no_traffic():
    hc, s, host, clock, _ = make(unhealthy_interval=20.0, unhealthy_edge_interval=7.0, healthy_edge_interval=3.0)
    s.on_response(500)
    assert s.next_check_at == 20.0  # unhealthy_interval
    s.on_response(200)
    assert s.next_check_at == 3.0  # healthy_edge_interval while a change is pending
    s.on_response(200)
    assert s.next_check_at == 5.0
    s.on_network_failure()
    assert s.next_check_at == 7.0  # unhealthy_edge_interval (host still healthy, pending)
    hc2, s2, _, _, _ = make(traffic=False)
    s2.on_response(200)
    assert s2.next_check_at == 60.0  # no_traffic_interval default
    hc3, s3, _, _, _ = make(traffic=False, no_traffic_healthy_interval=90.0)
    s3.on_response(500)
    assert s3.next_check_at == 60.0
    s3.on_response(200)
    assert s3.next_check_at == 60.0  # pending
    s3.on_response(200)
    assert s3.next_check_at == 90.0


def test_jitter():
    class Seven:
        def getrandbits(self, k):
            return 7

    hc, s, _, _, _ = make(rng=Seven(), interval_jitter=1.0, interval_jitter_percent=10, initial_jitter=2.0)
    assert s.next_check_at == 0.007  # initial: random % 2000 ms
    s.on_response(200)
    assert s.next_check_at == pytest.approx(5.014)  # percent (random % 500) then absolute (random % 1000)


def test_timeout_flag_and_degraded_and_immediate_fail():
    hc, s, host, _, _ = make()
    s.on_response(200, [(b"x-envoy-degraded", b"")])
    assert hc.health.degraded(host) and hc.stats.degraded == 1
    s.on_response(200)
    assert not hc.health.get(host, DEGRADED_ACTIVE_HC)
    for _ in range(3):
        s.on_timeout()
    assert hc.health.get(host, ACTIVE_HC_TIMEOUT)
    s.on_response(503, [(b"x-envoy-immediate-health-check-fail", b"")])
    assert hc.health.get(host, EXCLUDED_VIA_IMMEDIATE_HC_FAIL) and not hc.health.get(host, ACTIVE_HC_TIMEOUT)
    s.on_response(200)
    s.on_response(200)
    assert host.healthy and not hc.health.get(host, EXCLUDED_VIA_IMMEDIATE_HC_FAIL)


def test_service_name_matcher():
    hc, s, host, _, _ = make(http=HttpCheck(path=b"/", service_name_matcher=lambda v: v.startswith(b"svc")))
    assert s.on_response(200, [(b"x-envoy-upstream-healthchecked-cluster", b"other")]) == UNCHANGED
    assert not host.healthy
    assert s.on_response(200, [(b"x-envoy-upstream-healthchecked-cluster", b"svc-a")]) == CHANGE_PENDING
    assert hc.stats.verify_cluster == 2


def test_outlier_ejection_keeps_host_out_and_success_callback():
    seen = []
    hc, s, host, _, _ = make()
    hc.on_success = seen.append
    hc.health.set(host, FAILED_OUTLIER_CHECK)
    s.on_response(200)
    assert not host.healthy and seen == [host]


def test_membership_and_request_head():
    hc, s, host, _, _ = make(http=HttpCheck(path=b"/hc", request_headers_to_add=((b"x-a", b"1"),)))
    other = H()
    added = hc.set_hosts([host, other])
    assert [x.host for x in added] == [other] and not other.healthy
    hc.set_hosts([other])
    assert host not in hc.sessions
    assert hc.request_head(other, "svc") == (b"GET /hc HTTP/1.1\r\nhost: svc\r\nuser-agent: Envoy/HC\r\n"
                                             b"x-a: 1\r\n\r\n")
    assert hc.next_check_at() == 0.0
