"""Request mirroring (route ``request_mirror_policies``): Envoy's shadow writer.

A mirrored request is a copy of the main request's upstream head with the Host suffixed
``-shadow`` (``foo`` → ``foo-shadow``, ``foo:8080`` → ``foo-shadow:8080``; not with
``disable_shadow_host_suffix_append``), ``x-envoy-internal: true`` and the proxy's address
appended to ``x-forwarded-for`` (what Envoy's async client adds), sent to a host of the mirror
cluster over that cluster's own connection pools. Body bytes are copied as the main request
reads them (streaming, as Envoy's ``streaming_shadow``); the response is read and dropped.

Fire and forget: a mirror's connect failure, reset, slowness or timeout (the route's timeout,
as Envoy) never reaches the main stream, which only calls ``feed``/``end``/``cancel``. Memory is
bounded two ways: body bytes waiting for the mirror (for its connection, or in its socket's
write buffer) past the buffer limit abandon the mirror (``retry_or_shadow_abandoned`` on the
main route's cluster), and the mirror cluster's circuit breaker ``max_requests`` (DEFAULT
priority) caps how many mirrors run at once; over it the mirror is skipped
(``upstream_rq_pending_overflow``). A main stream that ends before its request was read whole
cancels its mirrors (Envoy resets unfinished shadow streams with the router).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..common.fractional import Fraction
from ..common.stream_states import BODY, COMPLETE, DONE, WAITING

SUFFIX = b"-shadow"


@dataclass(frozen=True, slots=True)
class MirrorPolicy:
    """One RouteAction.RequestMirrorPolicy."""

    cluster: str
    fraction: Fraction = Fraction(100, 100)  # runtime_fraction (its runtime key resolved); unset: always
    suffix: bool = True  # not disable_shadow_host_suffix_append
    cluster_header: bytes = b""  # the request header naming the mirror cluster (instead of cluster)


def port_start(host: bytes) -> int:
    """Envoy's HeaderUtility::getPortStart: the index of ':' before a numeric port, or -1."""
    i = host.rfind(b":")
    if i == -1:
        return -1
    v6_end = host.rfind(b"]")
    if v6_end != -1 and v6_end > i:
        return -1
    port = host[i + 1:]
    return i if port.isdigit() else -1


def shadow_host(host: bytes) -> bytes:
    i = port_start(host)
    return host + SUFFIX if i == -1 else host[:i] + SUFFIX + host[i:]


def shadow_head(headers: list[tuple[bytes, bytes]], suffix: bool, local_ip: bytes) -> list[tuple[bytes, bytes]]:
    """The main request's upstream headers, edited as Envoy's shadow writer and async client do."""
    out = []
    xff = False
    for name, value in headers:
        if name == b"host" and suffix and value:
            value = shadow_host(value)
        elif name == b"x-envoy-internal":
            continue
        elif name == b"x-forwarded-for" and local_ip:
            value = value + b"," + local_ip
            xff = True
        out.append((name, value))
    out.append((b"x-envoy-internal", b"true"))
    if not xff and local_ip:
        out.append((b"x-forwarded-for", local_ip))
    return out


class _NullConn:
    """What the upstream pool and connection expect of ``stream.conn``: a mirror has no
    downstream to flush to or to pause."""

    __slots__ = ()
    out: tuple = ()

    def flush(self) -> None:
        pass

    def pause_reading_for_upstream(self, on: bool) -> None:
        pass


_NULL_CONN = _NullConn()


class ShadowCounters:
    """``retry_or_shadow_abandoned`` for a cluster that has no other owner of the counter."""

    __slots__ = ("retry_or_shadow_abandoned",)

    def __init__(self) -> None:
        self.retry_or_shadow_abandoned = 0

    def values(self) -> Any:
        yield "retry_or_shadow_abandoned", self.retry_or_shadow_abandoned, True


def count_abandoned(cluster: Any) -> None:
    """One more ``cluster.<name>.retry_or_shadow_abandoned`` (shared with retries when their
    counters are already among the cluster's stats)."""
    stats = cluster.stats
    if hasattr(stats, "retry_or_shadow_abandoned"):
        stats.retry_or_shadow_abandoned += 1
        return
    for part in stats.extra:
        if hasattr(part, "retry_or_shadow_abandoned"):
            part.retry_or_shadow_abandoned += 1
            return
    part = ShadowCounters()
    part.retry_or_shadow_abandoned = 1
    stats.extra = (*stats.extra, part)


class Shadow:
    """One mirrored request: the upstream handler for the mirror cluster's connection."""

    __slots__ = ("main_cluster", "cluster", "host", "manager", "upstream", "pending", "pending_bytes",
                 "limit", "req", "resp", "timer", "status", "keep_alive", "method", "path",
                 "headers", "chunked")

    conn = _NULL_CONN

    def __init__(self, main_cluster: Any, cluster: Any, host: Any, manager: Any, method: bytes, path: bytes,
                 headers: list[tuple[bytes, bytes]], chunked: bool, limit: int) -> None:
        self.main_cluster = main_cluster
        self.cluster = cluster
        self.host = host
        self.manager = manager
        self.upstream: Any = None
        self.method = method
        self.path = path
        self.headers = headers
        self.chunked = chunked
        self.pending: list[bytes] | None = []  # body bytes waiting for the mirror's connection
        self.pending_bytes = 0
        self.limit = limit
        self.req = BODY
        self.resp = WAITING
        self.timer: Any = None
        self.status = 0
        self.keep_alive = False

    # ---- from the main stream ------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if self.resp is DONE:
            return
        up = self.upstream
        n = len(data)
        if up is None:
            self.pending.append(data)  # type: ignore[union-attr]
            self.pending_bytes += n
            if self.pending_bytes > self.limit:
                self.abandon()
            return
        transport = up.transport
        if transport is not None and transport.get_write_buffer_size() + n > self.limit:
            self.abandon()
            return
        up.send_body(data)

    def end(self) -> None:
        self.req = COMPLETE
        if self.upstream is not None and self.resp is not DONE:
            self.upstream.send_end(None)

    def abandon(self) -> None:
        """The mirror fell too far behind the main request: give it up."""
        if self.resp is DONE:
            return
        count_abandoned(self.main_cluster)
        self.cancel()

    def cancel(self) -> None:
        up = self.upstream
        if up is not None:
            self.upstream = None
            up.detach()
            up.close()
            if up.transport is not None:
                up.transport.abort()  # close() would wait to flush what a stalled mirror never reads
        self.finish()

    # ---- from the mirror's connection ------------------------------------------------------
    def on_upstream_ready(self, up: Any, reused: bool) -> None:
        if self.resp is DONE:
            up.pool.release(up)
            return
        self.upstream = up
        pending = self.pending
        self.pending = None
        up.send_head(self, self.method, self.path, self.headers, self.chunked, False)
        if pending:
            up.send_body(b"".join(pending))
        if self.req is COMPLETE:
            up.send_end(None)

    def on_upstream_connect_failure(self, reason: str) -> None:
        self.finish()

    def on_upstream_overflow(self, no_pool: bool = False) -> None:
        self.finish()  # a pool's circuit breaker said no: the mirror is skipped

    def on_upstream_reset(self, up: Any, protocol_error: bool) -> None:
        self.upstream = None
        self.finish()

    def on_response_head(self, status: int, headers: Any, keep_alive: bool,
                         content_length: int | None, chunked: bool) -> None:
        self.status = status
        self.keep_alive = keep_alive
        if self.method == b"HEAD":  # the parser cannot be told a HEAD response has no body
            self.cancel()

    def on_response_body(self, data: bytes) -> None:
        pass  # read and dropped

    def on_response_end(self) -> None:
        up = self.upstream
        self.upstream = None
        if up is not None:
            if self.keep_alive and self.req is COMPLETE:
                up.pool.release(up)
            else:
                up.detach()
                up.close()
        self.finish()

    def on_timeout(self) -> None:
        self.timer = None
        if self.resp is not DONE:
            self.cluster.stats.upstream_rq_timeout += 1
            self.cancel()

    def finish(self) -> None:
        if self.resp is DONE:
            return
        self.resp = DONE
        self.pending = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.manager.requests.dec()
        self.host.active_rq -= 1
        stats = self.cluster.stats
        stats.rq_code[self.status if self.status < 600 else 0] += 1  # (the end of upstream_rq_active)


def start(stream: Any, policies: Sequence[MirrorPolicy]) -> list[Shadow] | None:
    """Start the mirrors the route asks for (called once the main request's head is built)."""
    conn = stream.conn
    head = stream.head
    if head.method == b"CONNECT":
        return None
    shadows = None
    local_ip = b""
    for p in policies:
        if not p.fraction.sample(conn.rng):
            continue
        name = p.cluster
        if p.cluster_header:  # Envoy: no such header, or no such cluster, and nothing is mirrored
            name = ""
            for k, v in head.headers:
                if k == p.cluster_header:
                    name = v.decode("latin-1")
                    break
        cluster = stream.hcm.clusters.get(name)
        if cluster is None:  # removed by CDS since the route was compiled (or a header's unknown name)
            continue
        manager = cluster.resources.managers[0]
        if not manager.try_request():
            continue
        host = cluster.choose_host(stream)
        if host is None:
            manager.requests.dec()
            cluster.stats.upstream_cx_none_healthy += 1
            continue
        if not local_ip and conn.transport is not None:
            sock = conn.transport.get_extra_info("sockname")
            local_ip = sock[0].encode() if sock else b""
        s = Shadow(stream.cluster, cluster, host, manager, head.method, stream.upstream_path,
                   shadow_head(stream.upstream_headers, p.suffix, local_ip), head.chunked,
                   stream.hcm.buffer_limit)
        if stream.pending:
            for data in stream.pending:  # body read while the main request waited (a fault delay)
                s.feed(data)
        if stream.req is COMPLETE:
            s.req = COMPLETE
        stats = cluster.stats
        stats.upstream_rq_total += 1  # (also the start of upstream_rq_active: stats.py)
        host.active_rq += 1
        host.rq_total += 1
        timeout = stream.timeout
        if timeout:
            s.timer = conn.loop.call_later(timeout, s.on_timeout)
        if shadows is None:
            shadows = []
        shadows.append(s)
        host.pool.acquire(s)
    return shadows


def feed(shadows: list[Shadow], data: bytes) -> None:
    for s in shadows:
        s.feed(data)


def end(shadows: list[Shadow]) -> None:
    for s in shadows:
        s.end()


def cancel_unfinished(shadows: list[Shadow]) -> None:
    """The main stream ended before its request was read whole: reset its mirrors."""
    for s in shadows:
        if s.req is BODY:
            s.cancel()
