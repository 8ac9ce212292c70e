"""One HTTP request/response exchange: the router filter joining downstream and upstream.

A Stream is driven by callbacks only: the downstream connection feeds it request events, the
upstream connection's codec feeds it response events. It builds the upstream request once
(in ``begin`` when only appending, else request_head.py) and sends it through the upstream
connection's codec (http/codec.py), then
moves body bytes through as they arrive; the response side is in
response.py, local replies (404 NR, 503 UH/UF/UC, 504 UT, redirects, direct responses) and
the end-of-stream bookkeeping in local_reply.py.

Per-request cost matters here more than anywhere: a stream is slotted (stream_state.py), and
what only some routes need (retries, per-try and stream timeouts, outlier reports) lives in a
``Resilience`` (resilience.py) made for those routes only; a plain stream reads one field for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import shadow
from ..http import tunnel
from ..http.flow_control import CLIENT_FULL
from ..common.response_flags import DC, NC, NR, UC, UF, UH, UO, UPE, UT
from ..upstream.lb.round_robin import RoundRobin
from ..http.request_ids import RequestIds, request_id
from .route_table import FORWARD, header_value
from .routing import pick_weighted, select_route
from .request_head import _ATTEMPT_1, RequestHeadMixin
from .response import ResponseMixin
from .resilience import Resilience
from .stream_state import _RESET_BEFORE_HEADERS, _XFP_HTTP
from ..common.stream_states import COMPLETE, DONE, WAITING

if TYPE_CHECKING:
    from ..http.upstream_connection import UpstreamConnection

__all__ = ["RequestIds", "Stream", "request_id"]


class Stream(ResponseMixin, RequestHeadMixin):
    """One request/response exchange; see the module docstring."""

    __slots__ = ()

    # ---- request side ------------------------------------------------------------------
    def begin(self) -> None:
        """Route the request and either reply locally or ask a pool for a connection."""
        hcm = self.hcm
        head = self.head
        authority = self.authority = head.authority
        if head.upgrade or head.version != "1.1" or not authority or hcm.strip_port:
            authority = self._check_head(hcm, head, authority)
            if authority is None:
                return
        if hcm.pre_route is not None and hcm.pre_route(self):
            return  # path normalization or the health_check filter answered (compile/edge.py)
        limit = hcm.max_request_bytes
        if limit and head.content_length is not None and head.content_length > limit:
            hcm.stats.downstream_rq_too_large += 1
            return self.local_reply(413, b"Payload Too Large", close=True)
        table = hcm.route_table
        # select_route's first test, inlined: 0.8k instructions less per request on a plain
        # route (benchmarks/instructions.py, 114.0k against 114.8k).
        route = table.first_route
        if route is None or not head.path.startswith(table.first_prefix):
            route = select_route(table, head, authority)
        if route is None:
            hcm.stats.no_route += 1
            self.flags |= NR
            return self.local_reply(404, b"")
        self.route = route
        action = route.action
        if route.action_kind != FORWARD:
            return self._reply_by_route(route, action, authority)
        if head.upgrade and not tunnel.admit(self, route):
            return
        entry = None
        if action.weighted:
            entry = pick_weighted(action, self.conn.rng)
            name = entry.cluster
        elif action.cluster_header:
            value = header_value(head.headers, action.cluster_header)
            name = value.decode("latin-1") if value else ""
        else:
            name = action.cluster
        if hcm.after_route is not None and hcm.after_route(self, route, name):
            return  # answered (CORS preflight, fault abort) or held (fault delay: begin() runs again)
        cluster = hcm.clusters.get(name)
        if cluster is None:
            hcm.stats.no_cluster += 1
            self.flags |= NC
            return self.local_reply(action.not_found_status, b"")
        self.cluster = cluster
        # Cluster.choose_host, inlined, and round robin without a Python frame: 0.3k instructions
        # less per request (114.0k against 114.3k).
        lb = cluster.lb
        host = lb.next_host() if lb.__class__ is RoundRobin else lb.choose_host(self)
        if host is None:
            cluster.stats.upstream_cx_none_healthy += 1
            self.flags |= UH
            return self.local_reply(503, b"no healthy upstream")
        rm = self.rm = cluster.resources.managers[action.priority]  # circuit breakers of the route's priority
        requests = rm.requests
        if requests.count >= requests.max:
            rm.rq_pending_overflow += 1
            return self.on_upstream_overflow()
        requests.count += 1
        self.host = host
        cstats = cluster.stats
        cstats.upstream_rq_total += 1  # (also the start of upstream_rq_active: stats.py)
        host.active_rq += 1
        host.rq_total += 1
        self.timeout = action.timeout
        if action.resilient or head.envoy_control or cluster.outlier is not None:
            if action.eager_resilience or head.envoy_control or cluster.outlier is not None:
                rz = self.rz = Resilience()  # retries, timeouts, outlier reports
                rz.setup(self, action, host)
            else:  # a retry policy alone: its state when a retry may follow (resilience.py)
                self.retry_policy = action.retry_policy
        if entry is not None:
            self.resp_mutations = entry.response_mutations + route.response_mutations
            self.upstream_headers = self._edited_upstream_head(route, action, entry, host)
        else:
            if route.response_mutations:
                self.resp_mutations = route.response_mutations
            if route.edits_request or hcm.edits_request:
                self.upstream_headers = self._edited_upstream_head(route, action, None, host)
            else:  # no configured edit needs more than appending: the head is built here, a call less
                hs = head.headers
                if hs and hs[0][0] == b"host":  # (where the codec puts it): a copy, not a filtering loop
                    headers = hs.copy()
                    if hs[0][1] is not authority:  # (a port stripped, an absolute-form target's)
                        headers[0] = (b"host", authority)
                else:
                    headers = [(b"host", authority)]
                    for h in hs:  # a loop, not a comprehension: no function object and frame per request
                        if h[0] != b"host":
                            headers.append(h)
                if hcm.generate_request_id:
                    rid = head.request_id
                    if rid is None:
                        ids = self.conn.request_ids
                        rid = ids.ready.pop() if ids.ready else ids()
                        headers.append((b"x-request-id", rid))
                    self.request_id = rid
                if head.forwarded_proto is None:
                    headers.append(_XFP_HTTP)
                if self.timeout and not hcm.suppress_envoy_headers:
                    headers.append(action.timeout_header)
                if action.attempt_count_upstream:  # the first attempt (a retry rebuilds the head)
                    headers.append(_ATTEMPT_1)
                self.upstream_path = self._rewrite(head.path, headers) if action.rewrites_path else head.path
                self.upstream_headers = headers
        if action.mirrors:
            shadows = shadow.start(self, action.mirrors)
            if shadows is not None:
                self.shadows = shadows
        if self.response_extras:
            self.resp_mutations += self.response_extras
        if head.expect_continue:
            self.conn.send_continue()
        if self.req is COMPLETE and self.timeout and self.rz is None:
            # Read whole (a request without a body, or a pipelined one read while it waited): the
            # route timeout runs from now, as from on_request_end (Resilience.setup arms its own).
            conn = self.conn
            deadline = self.deadline = conn.loop.time() + self.timeout
            if conn.timer is None or conn.timer_when > deadline:
                conn.arm(deadline)
        if head.upgrade and head.method == b"CONNECT":
            return tunnel.connect(self, host)
        host.pool.acquire(self)

    def on_body(self, data: bytes) -> None:
        self.rx += len(data)
        limit = self.hcm.max_request_bytes
        if limit and self.rx > limit:
            if self.resp is WAITING:
                self.hcm.stats.downstream_rq_too_large += 1
                self._drop_upstream()
                self.local_reply(413, b"Payload Too Large", close=True)
            return
        if self.resp is DONE:
            return  # the response is complete: discard the rest of the body
        if self.shadows is not None:
            shadow.feed(self.shadows, data)
        self._send(data)

    def on_request_end(self) -> None:
        self.req = COMPLETE
        if self.resp is DONE:
            self.conn.stream_done(self)
            return
        up = self.upstream
        head = self.head
        if up is not None and (head.chunked or head.content_length):  # (else it ended with the head)
            up.send_end(head.trailers)  # (else sent when the connection comes)
        if self.shadows is not None:
            shadow.end(self.shadows)
        conn = self.conn
        now = self.complete_at = conn.loop.time()
        rz = self.rz
        if rz is not None:
            if self.timeout or rz.per_try:
                rz.on_request_end(self, now)
        elif self.host is not None and self.timeout:  # (no timeout before a host: see StreamState)
            deadline = self.deadline = now + self.timeout
            if conn.timer is None or conn.timer_when > deadline:
                conn.arm(deadline)

    def _send(self, data: bytes) -> None:
        """Request body bytes to the upstream, or kept until it is there; and kept for a retry
        while one is possible."""
        rz = self.rz
        if rz is None and self.retry_policy is not None:
            rz = self._resilience()
        if rz is not None and rz.policy is not None and not rz.keep_body(self, data):
            return  # answered (507)
        up = self.upstream
        if up is not None:
            up.send_body(data)
            replay = self.replay
            if replay is not None:
                if self.rx > self.hcm.buffer_limit:  # (the body read so far: no field of its own)
                    self.replay = None
                else:
                    replay.append(data)
        elif self.resp is not DONE:
            pending = self.pending
            if pending is None:
                pending = self.pending = []
                self.pending_bytes = 0  # (set with a pending list, read only with one: StreamState)
            pending.append(data)
            self.pending_bytes += len(data)
            if self.pending_bytes > self.hcm.buffer_limit:
                self.conn.pause_reading_for_buffer(True)

    # ---- upstream side -----------------------------------------------------------------
    def on_upstream_ready(self, up: UpstreamConnection, reused: bool) -> None:
        rz = self.rz
        if rz is not None and rz.on_ready:
            rz.before_ready(self, reused)
        self.upstream = up
        self.reused = reused
        head = self.head
        # A request without a body (RFC 9112 §6.3: no Content-Length, not chunked) ends with its head.
        end_stream = not (head.chunked or head.content_length)
        up.send_head(self, head.method, self.upstream_path, self.upstream_headers, head.chunked, end_stream)
        pending = self.pending
        if pending:
            self.pending = None
            body = b"".join(pending)  # (of one piece: that piece, not a copy)
            up.send_body(body)
            if self.pending_bytes > self.hcm.buffer_limit:
                self.conn.pause_reading_for_buffer(False)
            if reused and len(body) <= self.hcm.buffer_limit:
                self.replay = [body]
            elif self.replay is not None:
                self.replay = None
        elif reused:
            self.replay = []
        elif self.replay is not None:
            self.replay = None
        if self.req is COMPLETE and not end_stream:
            up.send_end(head.trailers)
        if self.conn.write_paused:
            up.reads.set(CLIENT_FULL, True)
        if rz is not None and rz.on_ready:
            rz.after_ready(self)

    def on_upstream_connect_failure(self, reason: str) -> None:
        if self.resp is DONE:
            return
        rz = self.rz
        if rz is None and self.retry_policy is not None:
            rz = self._resilience()
        if rz is not None and rz.on_connect_failure(self, reason):
            return  # retried
        self.flags |= UF
        self.local_reply(503, _RESET_BEFORE_HEADERS + b"connection failure, transport failure reason: "
                         + reason.encode())

    def on_upstream_reset(self, up: UpstreamConnection, protocol_error: bool) -> None:
        """The upstream connection closed (or sent garbage) while serving this stream."""
        self.upstream = None
        if self.resp is DONE:
            return
        if self.resp is WAITING:
            rz = self.rz
            if rz is None and self.retry_policy is not None:
                rz = self._resilience()
            if rz is not None and rz.on_reset(self, protocol_error):
                return  # retried
            if protocol_error:
                self.flags |= UPE
                self.local_reply(502, _RESET_BEFORE_HEADERS + b"protocol error")
            elif self.reused and self.replay is not None and not self.retried:
                # A keep-alive connection the upstream had already closed: send again, once, on
                # a fresh connection. Nothing of a response was seen, so nothing is duplicated.
                self.retried = True
                self.cluster.stats.upstream_rq_retry += 1
                self.pending = self.replay
                self.pending_bytes = 0
                self.replay = None
                self.host.pool.acquire(self, fresh=True)
            else:
                self.flags |= UC
                self.local_reply(503, _RESET_BEFORE_HEADERS + b"connection termination")
            return
        if not protocol_error and not up.codec.has_framing:
            # A response with neither Content-Length nor chunked framing ends with the connection.
            self.on_response_end_after_close()
            return
        self.flags |= UPE if protocol_error else UC
        self.conn.reset()
        self.finish()

    def on_upstream_overflow(self, no_pool: bool = False) -> None:
        """A circuit breaker is open (max_requests, max_pending_requests): 503 UO at once."""
        if self.resp is DONE:
            return
        if no_pool:  # max_connection_pools: Envoy finds no pool, as with no host
            self.flags |= UH
            return self.local_reply(503, b"no healthy upstream")
        self.flags |= UO
        extra = () if self.hcm.suppress_envoy_headers else ((b"x-envoy-overloaded", b"true"),)
        self.local_reply(503, _RESET_BEFORE_HEADERS + b"overflow", extra=extra)

    def on_timeout(self) -> None:
        """The connection's timer reached ``deadline``."""
        if self.resp is DONE:
            return
        if self.rz is not None:
            return self.rz.on_timeout(self)
        self.route_timeout()

    def route_timeout(self) -> None:
        """The route's timeout: 504 UT (a reset once the response started)."""
        self.flags |= UT
        if self.cluster is not None:
            self.cluster.stats.upstream_rq_timeout += 1
            if self.host is not None:
                self.host.rq_timeout += 1
        self._drop_upstream()
        self.local_reply(504, b"upstream request timeout")  # (a reset once the response started)

    def on_downstream_reset(self) -> None:
        if self.resp is DONE:
            return
        self.flags |= DC
        self._drop_upstream()
        self.finish()

    def _resilience(self) -> Resilience:
        """The Resilience of a stream whose route has a retry policy alone, made when a retry
        may follow (a failure, the first body byte, a retriable response)."""
        rz = self.rz = Resilience()
        rz.policy = self.retry_policy
        self.retry_policy = None
        return rz

    def _drop_upstream(self) -> None:
        up = self.upstream
        if up is not None:
            self.upstream = None
            up.detach()
            up.close()
        elif self.host is not None and self.host.pool.waiting:
            self.host.pool.cancel_wait(self)  # it waited for a connection slot
