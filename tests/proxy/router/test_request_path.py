"""The request path without sockets: a DownstreamConnection and its Streams driven through the
codec with pilotfish.proxy.testing's fake transports and manual clock. What is asserted is what
a user sees: bytes on the wire, stats, response flags. Every test runs in milliseconds."""

from __future__ import annotations

from typing import Any

from pilotfish.proxy.testing import Proxy, attach_upstream, bootstrap, static_cluster

GET = b"GET /a HTTP/1.1\r\nHost: web\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
UNAVAILABLE = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"

#: Istio's default retry policy (every outbound route gets it).
ISTIO_RETRY = {
    "retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
    "num_retries": 2,
    "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}],
    "host_selection_retry_max_attempts": 5,
    "retriable_status_codes": [503],
}


def proxy(route: dict[str, Any] | None = None, ports: tuple[int, ...] = (8080,), **hcm: Any) -> Proxy:
    """One route for "/" to cluster "web" (``route``: more of its RouteAction)."""
    routes = [{"match": {"prefix": "/"}, "route": {"cluster": "web", **(route or {})}}]
    return Proxy(bootstrap(routes, [static_cluster("web", *ports)], **hcm))


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def head_lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def test_a_get_goes_to_the_upstream_and_its_response_back() -> None:
    p = proxy()
    c = p.connect()
    c.send(GET)
    (up,) = p.upstreams
    sent = head_lines(up.received())
    assert sent[0] == b"GET /a HTTP/1.1" and b"host: web" in sent and b"x-forwarded-proto: http" in sent
    assert any(line.startswith(b"x-request-id: ") for line in sent)
    p.loop.advance(0.0051)  # the upstream takes 5 ms
    up.respond(OK)
    out = c.received()
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"\r\n\r\nhi")
    assert b"x-envoy-upstream-service-time: 5" in head_lines(out)
    assert p.flags() == "-" and p.stats.rq_class[2] == 1 and p.stats.downstream_rq_active == 0
    assert p.clusters["web"].stats.upstream_rq_total == 1
    assert not c.closed and c.transport.reading


def test_an_upstream_proxys_service_time_is_replaced_not_repeated() -> None:
    """As Envoy's router sets x-envoy-upstream-service-time: behind another proxy (sidecar to
    sidecar) the client sees one, this proxy's; with a response mutation too."""
    mutated = [{"match": {"prefix": "/"}, "route": {"cluster": "web"},
                "response_headers_to_add": [{"header": {"key": "x-a", "value": "1"}}]}]
    for p in (proxy(), Proxy(bootstrap(mutated, [static_cluster("web", 8080)]))):
        c = p.connect()
        c.send(GET)
        (up,) = p.upstreams
        up.received()
        p.loop.advance(0.0071)
        up.respond(b"HTTP/1.1 200 OK\r\nx-envoy-upstream-service-time: 999\r\nContent-Length: 2\r\n\r\nhi")
        lines = head_lines(c.received())
        assert [line for line in lines if line.startswith(b"x-envoy-upstream-service-time")] == [
            b"x-envoy-upstream-service-time: 7"]
        c.send(GET)  # the next response has none of its own
        up.received()
        up.respond(OK)
        assert sum(line.startswith(b"x-envoy-upstream-service-time") for line in head_lines(c.received())) == 1


def test_pipelined_requests_are_answered_in_order_on_one_upstream_connection() -> None:
    p = proxy()
    (up,) = p.upstream("web")  # idle in the pool beforehand: both requests reuse it
    c = p.connect()
    c.send(b"GET /1 HTTP/1.1\r\nHost: web\r\n\r\nGET /2 HTTP/1.1\r\nHost: web\r\n\r\n")
    assert not c.transport.reading  # the second waits; reading pauses meanwhile
    assert up.received().startswith(b"GET /1 ")
    up.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1")
    assert up.received().startswith(b"GET /2 ")  # only once the first is answered
    up.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2")
    out = c.received()
    assert out.count(b"HTTP/1.1 200 OK") == 2 and out.index(b"\r\n\r\n1") < out.index(b"\r\n\r\n2")
    assert c.transport.reading and len(p.upstreams) == 1 and p.stats.rq_class[2] == 2


def test_no_route_is_a_local_404_nr() -> None:
    p = Proxy(bootstrap([{"match": {"prefix": "/api"}, "route": {"cluster": "web"}}],
                        [static_cluster("web", 8080)]))
    c = p.connect()
    c.send(GET)
    out = c.received()
    assert status(out) == 404 and b"content-length: 0" in head_lines(out)
    assert p.flags() == "NR" and p.stats.no_route == 1 and p.stats.rq_class[4] == 1
    assert p.upstreams == [] and not c.closed


def test_the_route_timeout_answers_504_ut_and_closes_the_upstream_connection() -> None:
    p = proxy({"timeout": "2s"})
    c = p.connect()
    c.send(GET)
    (up,) = p.upstreams
    p.loop.advance(1.999)
    assert c.received() == b""
    p.loop.advance(0.001)
    out = c.received()
    assert status(out) == 504 and out.endswith(b"upstream request timeout")
    assert p.flags() == "UT" and p.clusters["web"].stats.upstream_rq_timeout == 1
    assert up.transport.closed and not c.closed


def test_the_stream_idle_timeout_fires_on_the_manual_clock() -> None:
    p = proxy({"timeout": "0s"}, stream_idle_timeout="10s")  # no route timeout: only the idle one
    c = p.connect()
    c.send(GET)
    (up,) = p.upstreams
    p.loop.advance(9.5)
    assert c.received() == b""
    p.loop.advance(1)
    out = c.received()
    assert status(out) == 504 and out.endswith(b"stream timeout")
    assert p.flags() == "SI" and p.stats.downstream_rq_idle_timeout == 1 and up.transport.closed


def test_a_503_is_retried_on_another_host_with_istios_retry_policy() -> None:
    p = proxy({"retry_policy": ISTIO_RETRY}, ports=(8080, 8081))
    c = p.connect()
    c.send(GET)
    first = p.upstreams[0]
    assert first.received().startswith(b"GET /a ")
    first.respond(UNAVAILABLE)
    assert c.received() == b""  # nothing reaches the client: a retry waits its back-off
    p.loop.advance(0.1)  # (25 ms base interval, jittered)
    second = p.upstreams[-1]
    assert second is not first
    assert second.transport.get_extra_info("peername") != first.transport.get_extra_info("peername")
    assert second.received().startswith(b"GET /a ")  # previous_hosts: the other host
    second.respond(OK)
    out = c.received()
    assert status(out) == 200 and out.endswith(b"hi")
    stats = p.clusters["web"].stats
    assert stats.upstream_rq_retry == 1 and p.flags() == "-" and p.stats.rq_class[2] == 1


def test_retries_run_out_and_the_last_503_reaches_the_client() -> None:
    p = proxy({"retry_policy": ISTIO_RETRY}, ports=(8080, 8081))
    c = p.connect()
    c.send(GET)
    for attempt in range(3):  # the first try and Istio's two retries
        p.upstreams[-1].respond(UNAVAILABLE)
        if attempt < 2:
            p.loop.advance(1.0)
    out = c.received()
    assert status(out) == 503
    assert p.clusters["web"].stats.upstream_rq_retry == 2 and p.stats.rq_class[5] == 1


def test_a_connect_failure_is_503_uf_and_retried_by_istios_policy() -> None:
    p = proxy(ports=(8080,))
    p.refused.add(("127.0.0.1", 8080))
    c = p.connect()
    c.send(GET)
    out = c.received()
    assert status(out) == 503 and b"Connection refused" in out and p.flags() == "UF"

    p = proxy({"retry_policy": ISTIO_RETRY}, ports=(8080, 8081))
    p.refused.add(("127.0.0.1", 8080))
    c = p.connect()
    for _ in range(2):  # round robin tries 8080 first once: retried on 8081
        c.send(GET)
        p.loop.advance(1.0)
        p.upstreams[-1].respond(OK)
        assert status(c.received()) == 200
    assert p.clusters["web"].stats.upstream_cx_connect_fail >= 1


def test_a_request_body_is_kept_until_a_connection_is_free_and_reading_pauses_past_the_limit() -> None:
    thresholds = {"thresholds": [{"max_connections": 1}]}
    p = Proxy(bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "web"}}],
                        [static_cluster("web", 8080, circuit_breakers=thresholds)]))
    p.listener.hcm.buffer_limit = 16  # (the listener's per_connection_buffer_limit_bytes)
    a, b = p.connect(), p.connect(("10.0.0.2", 40000))
    a.send(GET)  # takes the cluster's one connection
    (up,) = p.upstreams
    assert up.received().startswith(b"GET /a ")
    b.send(b"POST /up HTTP/1.1\r\nHost: web\r\nContent-Length: 40\r\n\r\n" + b"x" * 10)
    assert b.transport.reading and p.clusters["web"].stats.upstream_rq_pending_total == 2
    b.send(b"y" * 10)  # 20 bytes kept for the waiting stream: over the limit, reading pauses
    assert not b.transport.reading and len(p.upstreams) == 1
    up.respond(OK)  # the connection is free: b's stream takes it and what was kept goes out
    assert status(a.received()) == 200
    sent = up.received()
    assert sent.startswith(b"POST /up HTTP/1.1\r\n") and sent.endswith(b"x" * 10 + b"y" * 10)
    assert b.transport.reading
    b.send(b"z" * 20)
    assert up.received() == b"z" * 20  # the rest streams through
    up.respond(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
    assert status(b.received()) == 201 and len(p.upstreams) == 1


def test_attach_upstream_serves_a_routed_stream_that_has_no_connection() -> None:
    p = proxy()
    p.refused.add(("127.0.0.1", 8080))
    c = p.connect()
    c.send(b"POST /up HTTP/1.1\r\nHost: web\r\nContent-Length: 4\r\n\r\nbody")
    assert status(c.received()) == 503  # refused: 503 UF
    p.refused.clear()
    stream = p.streams[-1]
    c.send(b"GET /b HTTP/1.1\r\nHost: web\r\n\r\n")
    assert p.streams[-1] is not stream and p.upstreams[-1].received().startswith(b"GET /b ")
    up = attach_upstream(p.streams[-1], p.loop)  # (a second connection for the same stream, by hand)
    assert up.received().startswith(b"GET /b ") and up.conn.stream is p.streams[-1]


def test_a_client_reset_ends_the_stream_dc_and_closes_the_upstream_connection() -> None:
    p = proxy()
    c = p.connect()
    c.send(GET)
    (up,) = p.upstreams
    c.reset()
    assert p.flags() == "DC" and p.stats.downstream_rq_rx_reset == 1 and p.stats.rq_class[0] == 1
    assert up.transport.closed and p.stats.downstream_cx_active == 0
    up.respond(OK)  # a late response goes nowhere
    assert c.transport.writes == []


def test_the_connection_idle_timeout_closes_an_idle_client_connection() -> None:
    p = proxy(common_http_protocol_options={"idle_timeout": "30s"})
    c = p.connect()
    c.send(GET)
    p.upstreams[0].respond(OK)
    assert status(c.received()) == 200
    p.loop.advance(29)
    assert not c.closed
    p.loop.advance(1)
    assert c.closed and p.stats.downstream_cx_idle_timeout == 1


def test_an_upstream_reset_before_the_response_is_503_uc_and_after_its_head_a_client_reset() -> None:
    p = proxy()
    c = p.connect()
    c.send(GET)
    p.upstreams[0].reset()
    out = c.received()
    assert status(out) == 503 and out.endswith(b"connection termination") and p.flags() == "UC"
    c.send(GET)
    up = p.upstreams[-1]
    up.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
    up.reset()
    assert c.received().endswith(b"\r\n\r\nhalf") and c.transport.aborted and p.flags() == "UC"


def test_a_client_that_stops_reading_pauses_reading_from_the_upstream() -> None:
    p = proxy()
    c = p.connect()
    c.send(GET)
    (up,) = p.upstreams
    up.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nabcd")
    c.conn.pause_writing()  # the client's socket buffer is full
    assert not up.transport.reading
    c.conn.resume_writing()
    assert up.transport.reading
    up.respond(b"efgh")
    assert c.received().endswith(b"abcdefgh") and p.stats.rq_class[2] == 1
