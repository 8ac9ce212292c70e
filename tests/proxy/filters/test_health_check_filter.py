"""The envoy.filters.http.health_check filter: answered by the proxy, 503 while draining or while
a watched cluster is short of healthy hosts, pass-through mode forwards."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from pilotfish.proxy.common.response_flags import LH
from pilotfish.proxy.common.errors import ProxyConfigError
from pilotfish.proxy.filters.health_check import HealthCheckFilter
from pilotfish.proxy.upstream.host_set import IS_UNHEALTHY

from ..conftest import bootstrap, client, cluster, port_of, running_proxy, until

HC = "type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck"


def _filter(**cfg: Any) -> dict:
    return {"name": "envoy.filters.http.health_check", "typed_config": {"@type": HC, **cfg}}


def _doc(backend_port: int, hc: dict, clusters: list | None = None, **hcm: Any) -> dict:
    routes = [{"match": {"prefix": "/"}, "route": {"cluster": "b"}}]
    return bootstrap(routes, clusters or [cluster("b", backend_port)], http_filters=[hc], **hcm)


HEALTHZ = [{"name": ":path", "string_match": {"exact": "/healthz"}}]


async def test_answers_matching_requests_itself(backend) -> None:
    doc = _doc(backend.port, _filter(pass_through_mode=False, headers=HEALTHZ))
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        r = await c.request(path="/healthz")
        assert (r.status, r.body) == (200, b"")
        assert r.headers["x-envoy-upstream-healthchecked-cluster"] == "test"  # the node's cluster
        r = await c.request(path="/healthz?probe=1")  # :path holds the query: not an exact match
        assert r.body == b"a /healthz?probe=1"
        r = await c.request(path="/other")
        assert r.status == 200 and r.body.startswith(b"a ")
    assert [s.path for s in backend.seen] == ["/healthz?probe=1", "/other"]


async def test_header_matchers_all_must_match(backend) -> None:
    headers = HEALTHZ + [{"name": "user-agent", "string_match": {"prefix": "ELB-"}},
                         {"name": ":method", "string_match": {"exact": "GET"}}]
    doc = _doc(backend.port, _filter(pass_through_mode=False, headers=headers))
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        assert (await c.request(path="/healthz", headers={"user-agent": "ELB-HealthChecker/2.0"})).body == b""
        assert (await c.request(path="/healthz", headers={"user-agent": "curl"})).body != b""
        r = await c.request("POST", "/healthz", headers={"user-agent": "ELB-x"})
        assert r.body != b""
    assert len(backend.seen) == 2


class _Stream:
    """What the filter reads of a stream, and the local reply it makes."""

    def __init__(self, path: bytes, draining: bool = False, clusters: dict | None = None) -> None:
        self.head = SimpleNamespace(path=path, method=b"GET", headers=[(b"host", b"x")])
        self.authority = b"x"
        self.conn = SimpleNamespace(shared=SimpleNamespace(draining=draining))
        self.hcm = SimpleNamespace(clusters=clusters or {})
        self.flags = 0
        self.health_check = False
        self.reply: tuple | None = None

    def local_reply(self, status: int, body: bytes, *, extra: tuple = (), details: str = "") -> None:
        self.reply = (status, body, extra, details)


def _hosts(*unhealthy: bool) -> SimpleNamespace:
    return SimpleNamespace(hosts=tuple(SimpleNamespace(health=IS_UNHEALTHY if u else 0) for u in unhealthy))


@pytest.mark.parametrize(("draining", "minimums", "clusters", "expected"), [
    (False, (), {}, (200, "health_check_ok")),
    (True, (), {}, (503, "health_check_failed")),
    (False, (("b", 50.0),), {"b": _hosts(True, False)}, (200, "health_check_ok_cluster_healthy")),
    (False, (("b", 51.0),), {"b": _hosts(True, False)}, (503, "health_check_failed_cluster_unhealthy")),
    (False, (("b", 0.0),), {}, (503, "health_check_failed_no_cluster_found")),
    (False, (("b", 1.0),), {"b": _hosts()}, (503, "health_check_failed_cluster_empty")),
    (False, (("b", 0.0),), {"b": _hosts()}, (200, "health_check_ok_cluster_healthy")),
    (False, (("a", 0.0), ("b", 100.0)), {"a": _hosts(), "b": _hosts(False, True)},
     (503, "health_check_failed_cluster_unhealthy")),
])
def test_answers(draining: bool, minimums: tuple, clusters: dict, expected: tuple) -> None:
    for pass_through in (False, True):
        f = HealthCheckFilter((), pass_through, minimums, "edge")
        s = _Stream(b"/healthz", draining, clusters)
        if pass_through and not draining:  # forwarded: the origin answers
            assert f(s) is False and s.health_check and s.reply is None
            continue
        assert f(s) is True and s.health_check
        status, body, extra, details = s.reply  # type: ignore[misc]
        assert (status, details) == expected and body == b""
        assert extra == ((b"x-envoy-upstream-healthchecked-cluster", b"edge"),)
        assert bool(s.flags & LH) == (status != 200)


async def test_cluster_min_healthy_percentages(backend, backend_b) -> None:
    # one of two hosts of "b" refuses connections once marked unhealthy below
    clusters = [cluster("b", backend.port, backend_b.port), cluster("empty")]
    hc = _filter(pass_through_mode=False, headers=HEALTHZ,
                 cluster_min_healthy_percentages={"b": {"value": 50.0}})
    async with running_proxy(_doc(backend.port, hc, clusters)) as proxy, client(port_of(proxy)) as c:
        assert (await c.request(path="/healthz")).status == 200
        hosts = proxy.config.clusters["b"].hosts  # (as outlier detection or health checks would)
        hosts[0].healthy = False
        assert (await c.request(path="/healthz")).status == 200  # 1 of 2 = 50%: enough
        hosts[1].healthy = False
        assert (await c.request(path="/healthz")).status == 503

    for name, pct, status in (("missing", 0.0, 503), ("empty", 10.0, 503), ("empty", 0.0, 200)):
        hc = _filter(pass_through_mode=False, headers=HEALTHZ,
                     cluster_min_healthy_percentages={name: {"value": pct}})
        async with running_proxy(_doc(backend.port, hc, clusters)) as proxy, client(port_of(proxy)) as c:
            assert (await c.request(path="/healthz")).status == status, (name, pct)


async def test_pass_through_forwards_and_not_health_check_filter(backend, tmp_path) -> None:
    log = tmp_path / "a.log"
    access_log = [{"name": "f", "filter": {"not_health_check_filter": {}}, "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "path": str(log), "log_format": {"text_format": "%REQ(:PATH)%\n"}}}]
    doc = _doc(backend.port, _filter(pass_through_mode=True, headers=HEALTHZ), access_log=access_log)
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        r = await c.request(path="/healthz")
        assert r.status == 200 and r.body == b"a /healthz"
        await c.request(path="/app")
        await until(lambda: log.exists() and log.read_text() == "/app\n")


async def test_config_errors(backend) -> None:
    for cfg, field in (({"headers": HEALTHZ}, "pass_through_mode"),
                       ({"pass_through_mode": True, "cache_time": "5s", "headers": HEALTHZ}, "cache_time"),
                       ({"pass_through_mode": False, "cluster_min_healthy_percentages": {"b": {"value": 150}}},
                        "cluster_min_healthy_percentages")):
        with pytest.raises(ProxyConfigError, match=rf"http_filters\[0\]\.typed_config\.{field}"):
            async with running_proxy(_doc(backend.port, _filter(**cfg))):
                pass
    # cache_time without pass-through cannot change an answer: accepted
    doc = _doc(backend.port, _filter(pass_through_mode=False, cache_time="5s", headers=HEALTHZ))
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        assert (await c.request(path="/healthz")).status == 200
