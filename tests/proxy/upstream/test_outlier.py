"""OutlierDetector: Envoy's ejection and return-to-service rules with a fake clock."""

from pilotfish.proxy.upstream.host_health import FAILED_ACTIVE_HC, HostHealth
from pilotfish.proxy.upstream.outlier import (
    LOCAL_ORIGIN_CONNECT_FAILED, LOCAL_ORIGIN_CONNECT_SUCCESS, LOCAL_ORIGIN_TIMEOUT, OutlierDetector,
    OutlierSettings,
)


class H:
    def __init__(self, name):
        self.name = name
        self.healthy = True

    def __repr__(self):
        return self.name


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


class Zero:
    def getrandbits(self, k):
        return 0


def make(n=10, **kw):
    hosts = [H(f"h{i}") for i in range(n)]
    changes = []
    health = HostHealth(lambda: changes.append(1))
    clock = Clock()
    od = OutlierDetector(OutlierSettings(**kw), health, clock, Zero())
    od.set_hosts(hosts)
    return od, hosts, clock, changes


def test_five_consecutive_5xx_eject():
    od, hosts, _, changes = make()
    h = hosts[0]
    for _ in range(4):
        od.put_http_status(h, 500)
    od.put_http_status(h, 200)  # a success resets the run
    for _ in range(4):
        od.put_http_status(h, 503)
    assert h.healthy
    od.put_http_status(h, 503)
    assert not h.healthy and od.is_ejected(h) and changes == [1]
    assert od.stats.ejections_enforced_consecutive_5xx == 1 and od.stats.ejections_active == 1


def test_gateway_failure_not_enforced_by_default():
    od, hosts, _, _ = make(consecutive_5xx=100)
    for _ in range(5):
        od.put_http_status(hosts[0], 502)
    # enforcing_consecutive_gateway_failure defaults to 0: detected, not ejected
    assert hosts[0].healthy and od.stats.ejections_detected_consecutive_gateway_failure == 1
    od2, hosts2, _, _ = make(consecutive_5xx=100, enforcing_consecutive_gateway_failure=100)
    for _ in range(5):
        od2.put_http_status(hosts2[0], 504)
    assert not hosts2[0].healthy


def test_max_ejection_percent_is_strict():
    # 10% of 5 hosts is less than one host: nothing is ejected unless always_eject_one_host.
    od, hosts, _, _ = make(n=5)
    for _ in range(5):
        od.put_http_status(hosts[0], 500)
    assert hosts[0].healthy and od.stats.ejections_overflow == 1
    od, hosts, _, _ = make(n=5, always_eject_one_host=True)
    for h in hosts[:2]:
        for _ in range(5):
            od.put_http_status(h, 500)
    assert not hosts[0].healthy and hosts[1].healthy  # only the first
    od, hosts, _, _ = make(n=10, max_ejection_percent=20)
    for h in hosts[:3]:
        for _ in range(5):
            od.put_http_status(h, 500)
    assert [h.healthy for h in hosts[:3]] == [False, False, True]


def test_ejection_time_grows_and_returns():
    od, hosts, clock, _ = make(base_ejection_time=30.0, interval=10.0)
    h = hosts[0]

    def eject():
        for _ in range(5):
            od.put_http_status(h, 500)
        assert not h.healthy

    eject()
    clock.t += 29.0
    od.on_interval()
    assert not h.healthy
    clock.t += 1.0
    assert od.on_interval() == 10.0
    assert h.healthy  # 30 s = base x 1
    eject()  # ejected again at once: 60 s this time
    clock.t += 59.0
    od.on_interval()
    assert not h.healthy
    clock.t += 1.0
    od.on_interval()
    assert h.healthy
    assert od.monitors[h].num_ejections == 2


def test_backoff_decays_while_healthy_and_caps_at_max():
    od, hosts, clock, _ = make(base_ejection_time=30.0, max_ejection_time=60.0, interval=10.0)
    h = hosts[0]
    m = od.monitors[h]
    for _ in range(3):
        for _ in range(5):
            od.put_http_status(h, 500)
        clock.t += 60.0
        od.on_interval()
        assert h.healthy
    assert m.backoff == 3  # min(30 * 3, 60) = 60 s ejections
    for _ in range(3):
        clock.t += 10.0
        od.on_interval()
    assert m.backoff == 0


def test_jitter_adds_to_ejection_time():
    class Big:
        def getrandbits(self, k):
            return 5000

    od = OutlierDetector(OutlierSettings(max_ejection_time_jitter=10.0), HostHealth(), Clock(), Big())
    hosts = [H(str(i)) for i in range(10)]
    od.set_hosts(hosts)
    for _ in range(5):
        od.put_http_status(hosts[0], 500)
    assert od.monitors[hosts[0]].jitter == 5.0  # random % (10000 ms + 1)


def test_local_origin_split():
    od, hosts, _, _ = make(split_external_local_origin_errors=True)
    h = hosts[0]
    for _ in range(4):
        od.put_result(h, LOCAL_ORIGIN_CONNECT_FAILED)
    od.put_result(h, LOCAL_ORIGIN_CONNECT_SUCCESS)
    for _ in range(4):
        od.put_result(h, LOCAL_ORIGIN_TIMEOUT)
    assert h.healthy and od.monitors[h].consecutive_5xx == 0  # not counted as 5xx when split
    od.put_result(h, LOCAL_ORIGIN_CONNECT_FAILED)
    assert not h.healthy and od.stats.ejections_enforced_consecutive_local_origin_failure == 1


def test_local_origin_without_split_counts_as_5xx():
    od, hosts, _, _ = make()
    for _ in range(5):
        od.put_result(hosts[0], LOCAL_ORIGIN_CONNECT_FAILED)  # mapped to 503
    assert not hosts[0].healthy


def test_success_rate_ejection():
    od, hosts, _, _ = make(n=10, max_ejection_percent=50)
    for i, h in enumerate(hosts):
        for n in range(100):
            od.put_http_status(h, 500 if (i == 0 and n % 2 == 0) else 200)
    od.on_interval()  # the counts become the previous interval's
    od.on_interval()
    assert not hosts[0].healthy and all(h.healthy for h in hosts[1:])
    assert od.stats.ejections_enforced_success_rate == 1
    assert od.sr_average[2] == -1.0 or od.sr_average[2] > 90  # recomputed at each sweep


def test_success_rate_needs_volume_and_hosts():
    od, hosts, _, _ = make(n=10, max_ejection_percent=50, consecutive_5xx=1000)
    for h in hosts[:4]:  # only 4 hosts with 100 requests: below success_rate_minimum_hosts
        for n in range(100):
            od.put_http_status(h, 500 if h is hosts[0] else 200)
    od.on_interval()
    od.on_interval()
    assert hosts[0].healthy and od.stats.ejections_detected_success_rate == 0


def test_failure_percentage_ejection():
    od, hosts, _, _ = make(n=10, max_ejection_percent=50, enforcing_failure_percentage=100,
                           enforcing_success_rate=0, consecutive_5xx=1000)
    for h in hosts:
        for n in range(50):
            od.put_http_status(h, 500 if (h is hosts[1] and n < 45) else 200)
    od.on_interval()
    assert not hosts[1].healthy and od.stats.ejections_enforced_failure_percentage == 1


def test_health_check_success_unejects_and_removal_forgets():
    od, hosts, _, _ = make()
    for _ in range(5):
        od.put_http_status(hosts[0], 500)
    od.on_health_check_success(hosts[0])
    assert hosts[0].healthy and od.stats.ejections_active == 0
    for _ in range(5):
        od.put_http_status(hosts[1], 500)
    od.set_hosts(hosts[2:])
    assert od.stats.ejections_active == 0 and hosts[1] not in od.monitors


def test_active_hc_failure_keeps_host_unhealthy_after_uneject():
    od, hosts, clock, _ = make()
    h = hosts[0]
    od.health.set(h, FAILED_ACTIVE_HC)
    for _ in range(5):
        od.put_http_status(h, 500)
    clock.t += 30.0
    od.on_interval()
    assert not od.is_ejected(h) and not h.healthy  # still failing active health checks
