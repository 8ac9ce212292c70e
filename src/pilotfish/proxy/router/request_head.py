"""Building the upstream request head of a Stream, and the route-level local replies.

The upstream request is a header list (``host`` first) and a path, kept on the stream and sent
through the upstream connection's codec (http/codec.py) once there is one; a retry sends it
again with its per-attempt headers redone (resilience.py). Headers are only appended to (in
``Stream.begin``), unless something configured (header mutations, peer metadata exchange,
use_remote_address, host rewrites) must edit the list (here).
"""

from __future__ import annotations

from typing import Any

from ..http.head import RequestHead
from .route_table import DIRECT, strip_port
from .routing import redirect_location, rewrite_path
from .stream_state import _XFF_XFP, StreamState


_ATTEMPT_1 = (b"x-envoy-attempt-count", b"1")


class RequestHeadMixin(StreamState):
    """Head checks, route-level replies and the upstream request head."""

    __slots__ = ()

    def _check_head(self, hcm: Any, head: RequestHead, authority: bytes) -> bytes | None:
        """Upgrades, HTTP/1.0, a missing host, port stripping: the authority to route by, or
        None when a local reply was sent."""
        if head.version == "1.0" and not hcm.accept_http_10:
            self.local_reply(426, b"", close=True)
            return None
        if not authority:
            if head.version == "1.0" and hcm.default_host_http10:
                authority = hcm.default_host_http10
            else:
                self.local_reply(400, b"missing host header", close=True)
                return None
        if hcm.strip_any_host_port:
            authority = strip_port(authority)
        elif hcm.strip_matching_host_port and authority.endswith(b":%d" % hcm.listener_port):
            authority = strip_port(authority)
        self.authority = authority
        return authority

    def _reply_by_route(self, route: Any, action: Any, authority: bytes) -> None:
        """direct_response and redirect routes."""
        stats = self.hcm.stats
        if route.action_kind == DIRECT:
            stats.rq_direct_response += 1
            return self.local_reply(action.status, action.body, mutations=route.response_mutations)
        stats.rq_redirect += 1
        head = self.head
        scheme = head.forwarded_proto or b"http"
        location = redirect_location(route, action, head, authority, scheme)
        return self.local_reply(action.status, b"", extra=((b"location", location),),
                                mutations=route.response_mutations)

    def _rewrite(self, path: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
        route = self.route
        action = route.action
        head = self.head
        new_path = rewrite_path(route, path, head.path_only, action.prefix_rewrite, action.regex_rewrite)
        if new_path == path:
            return path
        self.original_path = path
        if not self.hcm.suppress_envoy_headers:
            headers.append((b"x-envoy-original-path", path))
        return new_path

    def _edited_upstream_head(self, route: Any, action: Any, entry: Any, host: Any) -> list[tuple[bytes, bytes]]:
        """The request head as a header list that mutations and filters may edit."""
        hcm = self.hcm
        head = self.head
        hs = head.headers
        if hs and hs[0][0] == b"host":  # (where the codec puts it): a copy, not a filtering pass
            headers = hs.copy()
            headers[0] = (b"host", self.authority)
        else:
            headers = [h for h in hs if h[0] != b"host"]
            headers.insert(0, (b"host", self.authority))
        if hcm.generate_request_id:
            rid = head.request_id
            if rid is None:
                rid = self.conn.request_ids()
                headers.append((b"x-request-id", rid))
            self.request_id = rid
        if hcm.use_remote_address:
            ip = self.conn.remote_ip
            xff = head.forwarded_for
            if head.forwarded_for is not None or head.forwarded_proto is not None:
                headers = [h for h in headers if h[0] not in _XFF_XFP]
            headers.append((b"x-forwarded-for", ip if xff is None else xff + b"," + ip))
            headers.append((b"x-forwarded-proto", b"http"))
        elif head.forwarded_proto is None:
            headers.append((b"x-forwarded-proto", b"http"))
        if self.timeout and not hcm.suppress_envoy_headers:
            headers.append((b"x-envoy-expected-rq-timeout-ms", b"%d" % int(self.timeout * 1000)))
        if action.attempt_count_upstream:
            headers.append(_ATTEMPT_1)
        if entry is not None:
            for m in entry.request_mutations:
                headers = m.apply(headers)
        for m in route.request_mutations:
            headers = m.apply(headers)
        new_host = action.host_rewrite
        if new_host is None and action.auto_host_rewrite:
            new_host = host.hostname
        if new_host is not None:
            headers[0] = (b"host", new_host)
        path = head.path
        if action.prefix_rewrite is not None or action.regex_rewrite is not None:
            path = self._rewrite(path, headers)
        if hcm.peer_exchange is not None:
            headers = hcm.peer_exchange.request_headers(self, headers)
        self.upstream_path = path
        return headers
