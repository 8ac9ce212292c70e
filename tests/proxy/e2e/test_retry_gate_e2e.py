"""Istio's default retry_on over real sockets: responses below the lowest retriable status are
retried only when a response header (grpc-status) asks for it; streams of a route table with
retries are made resilient up front."""

from __future__ import annotations

from typing import Any

from envoy.config.route.v3 import route_components_pb2

from pilotfish.proxy.compile.resilience import compile_retry_policy
from pilotfish.proxy.compile.routes import _retry_min_status

from ..conftest import Backend, Reply, Seen, client, port_of, running_proxy
from .helpers import doc_for

ISTIO_RETRY = {"retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
               "num_retries": 2, "retriable_status_codes": [503]}


async def test_grpc_status_below_min_status_is_retried(backend: Backend) -> None:
    def handler(s: Seen) -> Reply:
        handler.count += 1  # type: ignore[attr-defined]
        if handler.count == 1:  # type: ignore[attr-defined]
            return Reply(200, headers=[("grpc-status", "14")], body=b"")  # unavailable
        return Reply(200, body=b"ok")
    handler.count = 0  # type: ignore[attr-defined]
    backend.handler = handler
    async with running_proxy(doc_for([backend.port], ISTIO_RETRY)) as proxy:
        async with client(port_of(proxy)) as c:
            r = await c.request()
        assert (r.status, r.body) == (200, b"ok")
        assert len(backend.seen) == 2
        assert proxy.config.clusters["c"].stats.upstream_rq_retry == 1


async def test_plain_200_makes_no_retry(backend: Backend) -> None:
    backend.handler = lambda s: Reply(200, body=b"ok")
    async with running_proxy(doc_for([backend.port], ISTIO_RETRY)) as proxy:
        async with client(port_of(proxy)) as c:
            for _ in range(3):
                assert (await c.request()).status == 200
        assert len(backend.seen) == 3
        stats = proxy.config.clusters["c"].stats
        assert stats.upstream_rq_retry == 0 and stats.upstream_rq_retry_success == 0


def test_retry_gate_of_istio_default() -> None:
    msg = route_components_pb2.RetryPolicy(retry_on=ISTIO_RETRY["retry_on"], num_retries={"value": 2},
                                           retriable_status_codes=[503])
    low, gate = _retry_min_status(compile_retry_policy(msg, "p"))
    assert (low, gate) == (503, frozenset({b"grpc-status"}))


def test_a_route_with_retries_gives_its_streams_a_resilience() -> None:
    from pilotfish.proxy.compile.bootstrap_file import parse_bootstrap
    from pilotfish.proxy.compile import compile_bootstrap

    def table(retry: dict | None) -> Any:
        doc = doc_for([1], retry, vhost={"include_request_attempt_count": False})
        return compile_bootstrap(parse_bootstrap(doc).message).runtime.listeners[0].hcm.route_table

    assert table(ISTIO_RETRY).default.routes[0].action.resilient
    assert not table(None).default.routes[0].action.resilient
