"""Functional tests over loopback sockets: forwarding, keep-alive, streaming, pipelining."""

from __future__ import annotations

import asyncio

from ..conftest import Backend, Reply, bootstrap, client, cluster, port_of, running_proxy


def simple(backend: Backend, **hcm) -> dict:
    return bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "a"}}], [cluster("a", backend.port)], **hcm)


async def test_forwards_request_and_sets_envoy_headers(backend: Backend) -> None:
    async with running_proxy(simple(backend)) as proxy, client(port_of(proxy)) as c:
        r = await c.request(path="/hello?x=1", headers={"user-agent": "t"})
    assert r.status == 200
    assert r.body == b"a /hello?x=1"
    assert r.headers["server"] == "envoy"  # Envoy's default server_name
    assert int(r.headers["x-envoy-upstream-service-time"]) >= 0
    seen = backend.seen[0]
    assert seen.path == "/hello?x=1"
    assert seen.headers["host"] == "example.com"
    assert seen.headers["x-forwarded-proto"] == "http"
    assert len(seen.headers["x-request-id"]) == 36 and seen.headers["x-request-id"][14] == "4"
    assert seen.headers["x-envoy-expected-rq-timeout-ms"] == "15000"


async def test_existing_request_id_is_kept_and_xff_appended_with_use_remote_address(backend: Backend) -> None:
    doc = simple(backend, use_remote_address=True, always_set_request_id_in_response=True)
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        r = await c.request(headers={"x-request-id": "abc", "x-forwarded-for": "10.0.0.1"})
    assert backend.seen[0].headers["x-request-id"] == "abc"
    assert backend.seen[0].headers["x-forwarded-for"] == "10.0.0.1,127.0.0.1"
    assert r.headers["x-request-id"] == "abc"


async def test_server_name_is_configurable(backend: Backend) -> None:
    backend.handler = lambda s: Reply(headers=[("server", "nginx")])
    async with running_proxy(simple(backend, server_name="my-proxy")) as proxy, client(port_of(proxy)) as c:
        r = await c.request()
    assert r.headers["server"] == "my-proxy"


async def test_hop_by_hop_headers_are_not_forwarded(backend: Backend) -> None:
    async with running_proxy(simple(backend)) as proxy, client(port_of(proxy)) as c:
        await c.request(headers={"connection": "keep-alive, x-private", "x-private": "1", "keep-alive": "5",
                                 "te": "trailers, deflate", "x-public": "2"})
    h = backend.seen[0].headers
    assert "x-private" not in h and "keep-alive" not in h
    assert h["te"] == "trailers"  # TE is hop-by-hop; Envoy passes on only its "trailers" token
    assert h["x-public"] == "2"


async def test_keep_alive_reuses_one_upstream_connection(backend: Backend) -> None:
    async with running_proxy(simple(backend)) as proxy, client(port_of(proxy)) as c:
        for i in range(20):
            r = await c.request(path=f"/{i}")
            assert r.status == 200 and r.body == f"a /{i}".encode()
    assert backend.connections == 1
    assert {s.conn_id for s in backend.seen} == {1}


async def test_stale_keep_alive_is_retried_on_a_fresh_connection(backend: Backend) -> None:
    # The backend closes a connection when its second request arrives: the race in which an
    # upstream's keep-alive timeout fires just as we reuse the connection. Never a 503 UC.
    backend.max_requests_per_conn = 1
    async with running_proxy(simple(backend)) as proxy, client(port_of(proxy)) as c:
        for i in range(5):
            r = await c.request("POST", path=f"/{i}", body=b"payload-%d" % i)
            assert r.status == 200, r
        stats = proxy.config.clusters["a"].stats
        assert stats.upstream_rq_retry == 4
    assert [s.body for s in backend.seen] == [b"payload-%d" % i for i in range(5)]
    assert backend.connections == 5


async def test_upstream_keepalive_timeout_shorter_than_ours(backend: Backend) -> None:
    backend.keepalive_timeout = 0.05
    async with running_proxy(simple(backend)) as proxy, client(port_of(proxy)) as c:
        for _ in range(3):
            r = await c.request()
            assert r.status == 200
            await asyncio.sleep(0.1)
    assert backend.connections == 3


async def test_upstream_max_requests_per_connection(backend: Backend) -> None:
    doc = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "a"}}],
                    [cluster("a", backend.port, max_requests_per_connection=2)])
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        for _ in range(4):
            assert (await c.request()).status == 200
    assert backend.connections == 2


async def test_chunked_response_streams_without_buffering(backend: Backend) -> None:
    chunk = b"x" * 65536
    backend.handler = lambda s: Reply(chunks=[chunk] * 64, chunk_delay=0.002)  # 4 MiB
    async with running_proxy(simple(backend)) as proxy, client(port_of(proxy)) as c:
        c.send(b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n")
        # The first bytes arrive while the backend is still producing: nothing waited for the end.
        async with asyncio.timeout(5):
            while not c.body_chunks:
                c._parser.feed_data(await c.reader.read(65536))
        assert len(backend.seen) == 1
        r = await c.read_response()
    assert r.headers["transfer-encoding"] == "chunked"
    assert len(r.body) == 64 * 65536


async def test_chunked_request_body_streams_to_upstream(backend: Backend) -> None:
    async with running_proxy(simple(backend)) as proxy, client(port_of(proxy)) as c:
        c.send(b"POST /up HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
        async with asyncio.timeout(5):
            while not backend.body_events:
                await asyncio.sleep(0.005)
        assert backend.body_events[0][1] == b"hello"  # the first chunk is upstream before the rest is sent
        c.send(b"6\r\n world\r\n0\r\n\r\n")
        r = await c.read_response()
    assert r.status == 200
    assert backend.seen[0].body == b"hello world"


async def test_large_content_length_body_both_ways(backend: Backend) -> None:
    body = bytes(range(256)) * 8192  # 2 MiB
    backend.handler = lambda s: Reply(body=s.body[::-1])
    async with running_proxy(simple(backend)) as proxy, client(port_of(proxy)) as c:
        r = await c.request("PUT", body=body)
    assert r.status == 200 and r.body == body[::-1]


async def test_pipelined_requests_are_answered_in_order(backend: Backend) -> None:
    delays = {"/0": 0.05, "/1": 0.0, "/2": 0.02}
    backend.handler = lambda s: Reply(body=s.path.encode(), delay=delays.get(s.path, 0))
    async with running_proxy(simple(backend)) as proxy, client(port_of(proxy)) as c:
        c.send(b"".join(b"GET /%d HTTP/1.1\r\nhost: x\r\n\r\n" % i for i in range(5)))
        bodies = [(await c.read_response()).body for _ in range(5)]
    assert bodies == [b"/%d" % i for i in range(5)]


async def test_absolute_form_target_routes_by_its_authority(backend: Backend, backend_b: Backend) -> None:
    routes = {"virtual_hosts": [
        {"name": "reviews", "domains": ["reviews:9080"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "b"}}]},
        {"name": "rest", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "a"}}]}]}
    doc = bootstrap(routes, [cluster("a", backend.port), cluster("b", backend_b.port)])
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        c.send(b"GET http://reviews:9080/x?y=1 HTTP/1.1\r\nhost: other\r\n\r\n")
        r = await c.read_response()
    assert r.body == b"b /x?y=1"
    assert backend_b.seen[0].headers["host"] == "reviews:9080"


async def test_http10_is_rejected_with_426_unless_accepted(backend: Backend) -> None:
    async with running_proxy(simple(backend)) as proxy, client(port_of(proxy)) as c:
        c.send(b"GET / HTTP/1.0\r\nhost: x\r\n\r\n")
        assert (await c.read_response()).status == 426
    doc = simple(backend, http_protocol_options={"accept_http_10": True})
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        c.send(b"GET / HTTP/1.0\r\nhost: x\r\n\r\n")
        r = await c.read_response()
        assert r.status == 200 and r.headers.get("connection") == "close"


async def test_head_request_gets_headers_only(backend: Backend) -> None:
    async with running_proxy(simple(backend)) as proxy, client(port_of(proxy)) as c:
        c.send(b"HEAD / HTTP/1.1\r\nhost: x\r\n\r\n")
        await asyncio.sleep(0.1)
        c.send(b"GET /after HTTP/1.1\r\nhost: x\r\n\r\n")
        raw = b""
        async with asyncio.timeout(3):
            while b"a /after" not in raw:
                raw += await c.reader.read(65536)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert raw.count(b"HTTP/1.1 200") == 2


async def test_expect_100_continue_is_answered_by_the_proxy(backend: Backend) -> None:
    async with running_proxy(simple(backend)) as proxy, client(port_of(proxy)) as c:
        c.send(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\nexpect: 100-continue\r\n\r\n")
        line = await c.reader.readuntil(b"\r\n\r\n")
        assert line.startswith(b"HTTP/1.1 100 Continue")
        c.send(b"abc")
        r = await c.read_response()
    assert r.status == 200 and backend.seen[0].body == b"abc" and "expect" not in backend.seen[0].headers


async def test_drain_finishes_in_flight_request(backend: Backend) -> None:
    backend.handler = lambda s: Reply(body=b"slow", delay=0.2)
    async with running_proxy(simple(backend)) as proxy:
        async with client(port_of(proxy)) as c:
            c.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            await asyncio.sleep(0.05)
            stop = asyncio.create_task(proxy.stop(drain_time=2.0))
            r = await c.read_response()
            assert r.status == 200 and r.body == b"slow"
            assert r.headers["connection"] == "close"
            await stop


async def test_slow_client_back_pressures_the_upstream(backend: Backend) -> None:
    chunk = b"z" * 65536
    backend.handler = lambda s: Reply(chunks=[chunk] * 128)  # 8 MiB, as fast as it can
    async with running_proxy(simple(backend)) as proxy, client(port_of(proxy)) as c:
        c.send(b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n")
        await asyncio.sleep(0.3)  # the client reads nothing meanwhile
        (conn,) = proxy._shared.connections
        assert conn.transport.get_write_buffer_size() < 2 * 1024 * 1024
        r = await c.read_response(timeout=10)
    assert len(r.body) == 128 * 65536


async def test_many_connections_in_one_round_each_get_their_own_responses(backend: Backend) -> None:
    """Output is written after each round of events (OutputBatch); nothing may cross connections."""
    async with running_proxy(simple(backend)) as proxy:
        port = port_of(proxy)

        async def user(i: int) -> list[bytes]:
            async with client(port) as c:
                return [(await c.request(path=f"/{i}/{j}")).body for j in range(3)]

        bodies = await asyncio.gather(*(user(i) for i in range(20)))
    assert bodies == [[f"a /{i}/{j}".encode() for j in range(3)] for i in range(20)]


async def test_generated_request_id_is_a_fresh_uuid_per_request(backend: Backend) -> None:
    async with running_proxy(simple(backend)) as proxy, client(port_of(proxy)) as c:
        for _ in range(3):
            await c.request()
    ids = [s.headers["x-request-id"] for s in backend.seen]
    assert len(set(ids)) == 3 and all(len(i) == 36 and i[14] == "4" and i[19] in "89ab" for i in ids)


async def test_x_forwarded_proto_is_kept_unless_use_remote_address(backend: Backend) -> None:
    async with running_proxy(simple(backend)) as proxy, client(port_of(proxy)) as c:
        await c.request(headers={"x-forwarded-proto": "https"})
    assert backend.seen[0].headers["x-forwarded-proto"] == "https"
    async with running_proxy(simple(backend, use_remote_address=True)) as proxy, client(port_of(proxy)) as c:
        await c.request(headers={"x-forwarded-proto": "https"})
    assert backend.seen[1].headers["x-forwarded-proto"] == "http"
    assert backend.seen[1].headers["x-forwarded-for"] == "127.0.0.1"
