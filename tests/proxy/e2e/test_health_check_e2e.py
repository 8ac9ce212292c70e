"""Active HTTP health checking over loopback: probes, failing and recovering hosts, traffic
following them, no_traffic_interval, priority failover, EDS health combined, timeouts, stop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from pilotfish.proxy.compile.bootstrap_file import parse_bootstrap
from pilotfish.proxy.compile import compile_bootstrap
from pilotfish.proxy.common.errors import ProxyConfigError

from ..conftest import Backend, Reply, Seen, admin_get, bootstrap, cluster, first_words, port_of, running_proxy, sa, until

ROUTE = [{"match": {"prefix": "/"}, "route": {"cluster": "c"}}]


def hc(**fields: Any) -> list[dict[str, Any]]:
    base = {"timeout": "0.5s", "interval": "0.05s", "no_traffic_interval": "0.05s", "unhealthy_threshold": 2,
            "healthy_threshold": 2, "http_health_check": {"path": "/healthz"}}
    return [{**base, **fields}]


def checked(backend: Backend, sick: dict[str, int]) -> Callable[[Seen], Reply]:
    """/healthz answers sick[name] (200 when unset); other paths answer with the backend's name."""
    def handle(s: Seen) -> Reply:
        if s.path == "/healthz":
            status = sick.get(backend.name, 200)
            return Reply(status) if status else Reply(delay=2.0)  # 0: never answer in time
        return Reply(body=f"{backend.name} {s.path}".encode())
    return handle


def probes(backend: Backend) -> list[Seen]:
    return [s for s in backend.seen if s.path == "/healthz"]


@pytest.fixture
async def backend_c() -> Any:
    b = await Backend("c").start()
    yield b
    await b.stop()


async def test_failing_host_is_skipped_and_returns_after_healthy_threshold(backend: Backend,
                                                                           backend_b: Backend) -> None:
    sick: dict[str, int] = {}
    backend.handler, backend_b.handler = checked(backend, sick), checked(backend_b, sick)
    doc = bootstrap(ROUTE, [cluster("c", backend.port, backend_b.port, health_checks=hc())])
    async with running_proxy(doc) as proxy:
        c = proxy.config.clusters["c"]
        a = next(h for h in c.hosts if h.port == backend.port)
        assert all(h.healthy for h in c.hosts)  # warmed: every host checked once before start returned
        port = port_of(proxy)
        assert set(await first_words(port, 6)) == {"a", "b"}
        sick["a"] = 503  # not an expected status: unhealthy at once
        await until(lambda: not a.healthy)
        assert await first_words(port, 6) == {"b": 6}
        clusters = await admin_get(proxy, "/clusters")
        assert f"c::127.0.0.1:{backend.port}::health_flags::/failed_active_hc" in clusters
        assert f"c::127.0.0.1:{backend_b.port}::health_flags::healthy" in clusters
        del sick["a"]
        n = len(probes(backend))
        await until(lambda: a.healthy)
        assert len(probes(backend)) >= n + 2  # healthy_threshold successes in a row
        assert set(await first_words(port, 6)) == {"a", "b"}
        stats = await admin_get(proxy, "/stats?filter=health_check")
        assert "cluster.c.health_check.healthy: 2" in stats
        counters = dict(line.split(": ") for line in stats.splitlines())
        assert int(counters["cluster.c.health_check.failure"]) >= 1
        assert int(counters["cluster.c.health_check.attempt"]) >= int(counters["cluster.c.health_check.success"]) > 2
    probe = probes(backend)[0]
    assert probe.method == "GET" and probe.headers["host"] == "c" and probe.headers["user-agent"] == "Envoy/HC"


async def test_probe_host_header_and_connection_reuse(backend: Backend) -> None:
    backend.handler = checked(backend, {})
    doc = bootstrap(ROUTE, [cluster("c", backend.port, health_checks=hc(
        http_health_check={"path": "/healthz", "host": "health.local",
                           "request_headers_to_add": [{"header": {"key": "x-probe", "value": "1"}}]}))])
    async with running_proxy(doc):
        await until(lambda: len(probes(backend)) >= 3)
    seen = probes(backend)
    assert seen[0].headers["host"] == "health.local" and seen[0].headers["x-probe"] == "1"
    assert len({s.conn_id for s in seen}) == 1  # reuse_connection (the default) keeps one connection


async def test_timeouts_fail_after_unhealthy_threshold(backend: Backend, backend_b: Backend) -> None:
    sick: dict[str, int] = {}
    backend.handler, backend_b.handler = checked(backend, sick), checked(backend_b, sick)
    doc = bootstrap(ROUTE, [cluster("c", backend.port, backend_b.port, health_checks=hc(timeout="0.1s"))])
    async with running_proxy(doc) as proxy:
        c = proxy.config.clusters["c"]
        a = next(h for h in c.hosts if h.port == backend.port)
        sick["a"] = 0  # never answers within the timeout
        loop = asyncio.get_running_loop()
        start = loop.time()
        await until(lambda: not a.healthy)
        assert loop.time() - start >= 0.2  # two timeouts in a row (unhealthy_threshold 2)
        assert "::health_flags::/failed_active_hc/active_hc_timeout" in await admin_get(proxy, "/clusters")
        assert await first_words(port_of(proxy), 4) == {"b": 4}


async def test_no_traffic_interval_until_the_cluster_has_traffic(backend: Backend) -> None:
    backend.handler = checked(backend, {})
    doc = bootstrap(ROUTE, [cluster("c", backend.port, health_checks=hc(no_traffic_interval="0.6s"))])
    async with running_proxy(doc) as proxy:
        await asyncio.sleep(0.3)
        assert len(probes(backend)) == 1  # the first check, then nothing for no_traffic_interval
        assert await first_words(port_of(proxy), 1) == {"a": 1}
        await asyncio.sleep(0.6)  # the pending quiet-interval check runs, then every 0.05 s
        assert len(probes(backend)) >= 4


async def test_all_p0_hosts_failing_fails_over_to_p1(backend: Backend, backend_b: Backend,
                                                    backend_c: Backend) -> None:
    sick: dict[str, int] = {}
    for b in (backend, backend_b, backend_c):
        b.handler = checked(b, sick)

    def eps(*bs: Backend) -> list[dict[str, Any]]:
        return [{"endpoint": {"address": sa(b.port)}} for b in bs]

    doc = bootstrap(ROUTE, [{
        "name": "c", "type": "STATIC", "connect_timeout": "1s", "health_checks": hc(),
        "load_assignment": {"cluster_name": "c", "endpoints": [
            {"priority": 0, "lb_endpoints": eps(backend, backend_c)},
            {"priority": 1, "lb_endpoints": eps(backend_b)}]}}])
    async with running_proxy(doc) as proxy:
        c = proxy.config.clusters["c"]
        port = port_of(proxy)
        assert set(await first_words(port, 6)) == {"a", "c"}
        sick["a"] = sick["c"] = 500
        await until(lambda: not any(h.healthy for h in c.hosts if h.priority == 0))
        assert await first_words(port, 6) == {"b": 6}
        sick.clear()
        await until(lambda: all(h.healthy for h in c.hosts))
        assert set(await first_words(port, 6)) == {"a", "c"}


async def test_eds_health_and_active_health_both_count(backend: Backend, backend_b: Backend) -> None:
    backend.handler, backend_b.handler = checked(backend, {}), checked(backend_b, {})
    doc = bootstrap(ROUTE, [{
        "name": "c", "type": "STATIC", "connect_timeout": "1s", "health_checks": hc(),
        "common_lb_config": {"healthy_panic_threshold": {"value": 0}},
        "load_assignment": {"cluster_name": "c", "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": sa(backend.port)}, "health_status": "UNHEALTHY"},
            {"endpoint": {"address": sa(backend_b.port)}}]}]}}])
    async with running_proxy(doc) as proxy:
        assert await first_words(port_of(proxy), 4) == {"b": 4}  # passing its checks does not override EDS
        assert f"c::127.0.0.1:{backend.port}::health_flags::/failed_eds_health" in await admin_get(proxy, "/clusters")


async def test_degraded_host_takes_load_only_after_healthy_ones(backend: Backend, backend_b: Backend) -> None:
    backend.handler = lambda s: (Reply(headers=[("x-envoy-degraded", "1")]) if s.path == "/healthz"
                                 else Reply(body=b"a /"))
    backend_b.handler = checked(backend_b, {})
    doc = bootstrap(ROUTE, [cluster("c", backend.port, backend_b.port, health_checks=hc())])
    # One healthy host of two is 100% available with overprovisioning 200: nothing spills to
    # the degraded one (with the default 140, 30% would).
    doc["static_resources"]["clusters"][0]["load_assignment"]["policy"] = {"overprovisioning_factor": 200}
    async with running_proxy(doc) as proxy:
        c = proxy.config.clusters["c"]
        assert c.health_flags(c.hosts[0]) == "/degraded_active_hc"
        assert await first_words(port_of(proxy), 6) == {"b": 6}


async def test_endpoint_health_check_config(backend: Backend, backend_b: Backend, backend_c: Backend) -> None:
    """port_value sends a host's probes elsewhere; disable_active_health_check skips them."""
    sick = {"b": 503}
    for b in (backend, backend_b, backend_c):
        b.handler = checked(b, sick)
    doc = bootstrap(ROUTE, [{
        "name": "c", "type": "STATIC", "connect_timeout": "1s", "health_checks": hc(),
        "load_assignment": {"cluster_name": "c", "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": sa(backend.port),
                          "health_check_config": {"port_value": backend_b.port, "hostname": "alt.local"}}},
            {"endpoint": {"address": sa(backend_c.port), "health_check_config": {"disable_active_health_check": True}}},
        ]}]}}])
    async with running_proxy(doc) as proxy:
        c = proxy.config.clusters["c"]
        assert [h.healthy for h in c.hosts] == [False, True]
        assert probes(backend) == [] and probes(backend_c) == []
        assert probes(backend_b)[0].headers["host"] == "alt.local"
        sick.clear()
        await until(lambda: all(h.healthy for h in c.hosts))


async def test_checks_stop_when_the_proxy_stops(backend: Backend) -> None:
    backend.handler = checked(backend, {})
    doc = bootstrap(ROUTE, [cluster("c", backend.port, health_checks=hc())])
    async with running_proxy(doc):
        await until(lambda: len(probes(backend)) >= 2)
    n = len(probes(backend))
    await asyncio.sleep(0.2)
    assert len(probes(backend)) <= n + 1  # at most one that was already in flight


@pytest.mark.parametrize(("change", "path"), [
    ({"http_health_check": None, "tcp_health_check": {}}, "health_checks[0].tcp_health_check"),
    ({"alt_port": 9000}, "health_checks[0].alt_port"),
    ({"http_health_check": {"path": "/h", "codec_client_type": "HTTP2"}},
     "health_checks[0].http_health_check.codec_client_type"),
])
def test_unsupported_health_checks_name_the_field(change: dict[str, Any], path: str) -> None:
    check = {**hc()[0], **change}
    check = {k: v for k, v in check.items() if v is not None}
    doc = bootstrap(ROUTE, [cluster("c", 8080, health_checks=[check])])
    with pytest.raises(ProxyConfigError) as info:
        loaded = parse_bootstrap(doc)
        compile_bootstrap(loaded.message, warnings=loaded.warnings)
    assert info.value.field_path.endswith(path), info.value.field_path


def test_event_log_fields_are_warnings() -> None:
    doc = bootstrap(ROUTE, [cluster("c", 8080, health_checks=hc(always_log_health_check_failures=True))])
    loaded = parse_bootstrap(doc)
    assert any("always_log_health_check_failures" in w for w in loaded.warnings)
