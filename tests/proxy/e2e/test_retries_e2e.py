"""Retries over loopback with backends that fail on purpose: retry_on conditions, attempt counts,
body re-sending and its limit, the x-envoy-* retry headers, previous_hosts, URX."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from pilotfish.proxy.compile.bootstrap_file import parse_bootstrap
from pilotfish.proxy.compile import compile_bootstrap
from pilotfish.proxy.common.errors import ProxyConfigError

from ..conftest import Backend, Reply, Seen, client, port_of, running_proxy
from .helpers import PREVIOUS_HOSTS, doc_for

def failing(n: int, status: int = 503) -> Any:
    """A handler answering ``status`` to the first n requests, then 200."""
    def handler(s: Seen) -> Reply:
        count = handler.count = handler.count + 1  # type: ignore[attr-defined]
        return Reply(status, body=b"bad") if count <= n else Reply(200, body=b"ok " + s.body)
    handler.count = 0  # type: ignore[attr-defined]
    return handler


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_503_then_200_is_retried(backend: Backend) -> None:
    backend.handler = failing(1)
    async with running_proxy(doc_for([backend.port], {"retry_on": "5xx", "num_retries": 2})) as proxy:
        async with client(port_of(proxy)) as c:
            r = await c.request()
        assert r.status == 200 and r.body == b"ok "
        assert [s.headers.get("x-envoy-attempt-count") for s in backend.seen] == ["1", "2"]
        stats = proxy.config.clusters["c"].stats
        assert stats.upstream_rq_retry == 1 and stats.upstream_rq_retry_success == 1
        assert stats.upstream_rq_retry_backoff_exponential == 1


async def test_retries_exhausted_forwards_last_response_with_urx(backend: Backend, tmp_path: Path) -> None:
    backend.handler = lambda s: Reply(503, body=b"down")
    log = tmp_path / "access.log"
    doc = doc_for([backend.port], {"retry_on": "5xx", "num_retries": 2}, log=log)
    async with running_proxy(doc) as proxy:
        async with client(port_of(proxy)) as c:
            r = await c.request()
        assert r.status == 503 and r.body == b"down"
        assert len(backend.seen) == 3
        assert proxy.config.clusters["c"].stats.upstream_rq_retry_limit_exceeded == 1
    assert " 503 URX " in log.read_text()


async def test_status_not_in_retry_on_is_not_retried(backend: Backend) -> None:
    backend.handler = failing(1, 404)
    doc = doc_for([backend.port], {"retry_on": "gateway-error,retriable-status-codes",
                                   "retriable_status_codes": [409]})
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        assert (await c.request()).status == 404
        assert len(backend.seen) == 1


async def test_retriable_status_codes(backend: Backend) -> None:
    backend.handler = failing(1, 409)
    doc = doc_for([backend.port], {"retry_on": "retriable-status-codes", "retriable_status_codes": [409]})
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        assert (await c.request()).status == 200
        assert len(backend.seen) == 2


async def test_connect_refused_then_good_host_with_previous_hosts(backend: Backend) -> None:
    dead = dead_port()
    retry = {"retry_on": "connect-failure", "num_retries": 1, "retry_host_predicate": [PREVIOUS_HOSTS],
             "host_selection_retry_max_attempts": 20}
    async with running_proxy(doc_for([dead, backend.port], retry, lb_policy="RANDOM")) as proxy:
        async with client(port_of(proxy)) as c:
            for _ in range(12):
                r = await c.request()
                assert r.status == 200
        stats = proxy.config.clusters["c"].stats
        assert stats.upstream_cx_connect_fail >= 1 and stats.upstream_rq_retry == stats.upstream_cx_connect_fail


async def test_reset_is_retried(backend: Backend) -> None:
    count = 0

    def handler(s: Seen) -> Reply:
        nonlocal count
        count += 1
        return Reply(raw=b"") if count == 1 else Reply(body=b"fine")  # the first: closed, no response

    backend.handler = handler
    async with running_proxy(doc_for([backend.port], {"retry_on": "reset"})) as proxy, \
            client(port_of(proxy)) as c:
        r = await c.request()
        assert r.status == 200 and r.body == b"fine"


async def test_body_is_sent_again_on_retry(backend: Backend) -> None:
    backend.handler = failing(1)
    body = b"x" * 5000
    async with running_proxy(doc_for([backend.port], {"retry_on": "5xx"})) as proxy, client(port_of(proxy)) as c:
        r = await c.request("POST", body=body)
        assert r.status == 200 and r.body == b"ok " + body
        assert [s.body for s in backend.seen] == [body, body]


async def test_chunked_body_is_sent_again_on_retry(backend: Backend) -> None:
    backend.handler = failing(1)
    async with running_proxy(doc_for([backend.port], {"retry_on": "5xx"})) as proxy, client(port_of(proxy)) as c:
        c.send(b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        r = await c.read_response()
        assert r.status == 200 and r.body == b"ok hello"
        assert [s.body for s in backend.seen] == [b"hello", b"hello"]


async def test_body_over_the_retry_buffer_is_not_retried(backend: Backend) -> None:
    backend.handler = failing(1)
    doc = doc_for([backend.port], {"retry_on": "5xx"}, vhost={"per_request_buffer_limit_bytes": 100})
    async with running_proxy(doc) as proxy:
        async with client(port_of(proxy)) as c:
            r = await c.request("POST", body=b"y" * 1000)
            assert r.status == 503
            assert len(backend.seen) == 1
            backend.handler = failing(1)
            r = await c.request("POST", body=b"y" * 50)  # small enough: retried
            assert r.status == 200 and len(backend.seen) == 3
        assert "cluster.c.retry_or_shadow_abandoned: 1" in proxy.stats.text()


async def test_retry_headers_without_a_route_policy(backend: Backend) -> None:
    backend.handler = failing(3)
    async with running_proxy(doc_for([backend.port])) as proxy, client(port_of(proxy)) as c:
        r = await c.request(headers={"x-envoy-retry-on": "5xx", "x-envoy-max-retries": "3"})
        assert r.status == 200
        assert len(backend.seen) == 4
        assert all("x-envoy-retry-on" not in s.headers and "x-envoy-max-retries" not in s.headers
                   for s in backend.seen)
        backend.handler = failing(3)
        r = await c.request(headers={"x-envoy-retry-on": "5xx", "x-envoy-max-retries": "1"})
        assert r.status == 503 and len(backend.seen) == 6


async def test_max_retries_header_overrides_the_policy(backend: Backend) -> None:
    backend.handler = lambda s: Reply(502)
    doc = doc_for([backend.port], {"retry_on": "gateway-error", "num_retries": 1})
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        r = await c.request(headers={"x-envoy-max-retries": "3"})
        assert r.status == 502 and len(backend.seen) == 4


async def test_attempt_count_in_response(backend: Backend) -> None:
    backend.handler = failing(1)
    doc = doc_for([backend.port], {"retry_on": "5xx"}, vhost={"include_attempt_count_in_response": True})
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        r = await c.request()
        assert r.status == 200 and r.headers["x-envoy-attempt-count"] == "2"


async def test_consecutive_5xx_from_traffic_eject_the_host(backend: Backend, backend_b: Backend) -> None:
    backend.handler = lambda s: Reply(503, body=b"a bad")
    od = {"consecutive_5xx": 3, "interval": "10s", "base_ejection_time": "10s", "max_ejection_percent": 100}
    doc = doc_for([backend.port, backend_b.port], outlier_detection=od)
    async with running_proxy(doc) as proxy:
        async with client(port_of(proxy)) as c:
            bodies = [(await c.request()).body for _ in range(12)]
        assert bodies.count(b"a bad") == 3  # round robin: a's third 5xx ejects it
        assert bodies[-6:] == [b"b /"] * 6
        host = next(h for h in proxy.config.clusters["c"].hosts if h.port == backend.port)
        assert not host.healthy


def test_unsupported_retry_fields_name_their_path() -> None:
    for retry, route, field in [
        ({"retry_on": "5xx", "retry_priority": {"name": "x"}}, {}, "route.retry_policy.retry_priority"),
        (None, {"max_stream_duration": {"grpc_timeout_header_max": "1s"}},
         "route.max_stream_duration.grpc_timeout_header_max"),
    ]:
        with pytest.raises(ProxyConfigError) as e:
            loaded = parse_bootstrap(doc_for([1], retry, route=route))
            compile_bootstrap(loaded.message, warnings=loaded.warnings)
        assert field in str(e.value)


async def test_grpc_trailers_only_unavailable_is_retried(backend: Backend, tmp_path: Path) -> None:
    grpc = [("content-type", "application/grpc")]

    def handler(s: Seen) -> Reply:
        if len(backend.seen) == 1:  # trailers-only: the status in the response headers
            return Reply(200, headers=grpc + [("grpc-status", "14"), ("grpc-message", "try later")])
        return Reply(200, headers=grpc + [("grpc-status", "0")])

    backend.handler = handler
    log = tmp_path / "access.log"
    retry = {"retry_on": "unavailable", "num_retries": 2}
    async with running_proxy(doc_for([backend.port], retry, log=log)) as proxy:
        async with client(port_of(proxy)) as c:
            r = await c.request("POST", "/pkg.Svc/Call", headers={"content-type": "application/grpc", "te": "trailers"},
                                body=b"\x00\x00\x00\x00\x00")
        assert r.status == 200 and r.headers["grpc-status"] == "0"
        assert [s.body for s in backend.seen] == [b"\x00\x00\x00\x00\x00"] * 2  # the body re-sent
        stats = proxy.config.clusters["c"].stats
        assert stats.upstream_rq_retry == 1 and stats.upstream_rq_retry_success == 1
    assert " 200 - 5 0 " in log.read_text()


async def test_grpc_status_not_in_retry_on_is_passed_through(backend: Backend) -> None:
    backend.handler = lambda s: Reply(200, headers=[("content-type", "application/grpc"), ("grpc-status", "13")])
    async with running_proxy(doc_for([backend.port], {"retry_on": "unavailable,cancelled"})) as proxy:
        async with client(port_of(proxy)) as c:
            r = await c.request("POST", "/pkg.Svc/Call", headers={"content-type": "application/grpc"})
        assert r.status == 200 and r.headers["grpc-status"] == "13" and len(backend.seen) == 1
        assert proxy.config.clusters["c"].stats.upstream_rq_retry == 0
