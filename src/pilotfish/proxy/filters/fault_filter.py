"""The ``envoy.filters.http.fault`` HTTP filter on the request path.

fault.py decides; this module compiles the filter of an HttpConnectionManager's chain and acts
for one stream: an abort is a local reply with flag FI (for gRPC a trailers-only reply: HTTP 200,
``content-type: application/grpc``, ``grpc-status``, ``grpc-message``), a delay sets flag DI and
re-enters ``Stream.begin`` from a ``loop.call_later`` timer, so a delayed request holds no task
and other requests on the loop are not held up. The body arriving meanwhile waits in the stream's
pending buffer, as for a request waiting for an upstream connection.

A route's or virtual host's ``typed_per_filter_config`` entry under the filter's name replaces
the filter's configuration whole (``fault.resolve``). Stats (``http.<stat_prefix>.fault.*``)
live in one ``ActiveFaults`` per connection manager prefix, kept across config updates so the
``active_faults`` gauge stays right for requests started on an older config.
"""

from __future__ import annotations

from typing import Any

from envoy.extensions.filters.http.fault.v3 import fault_pb2  # noqa: F401  (registers HTTPFault for unpack_any)

from ..common.response_flags import DI, FI
from .fault import ActiveFaults, FaultDecision, FaultPolicy
from ..common.stats import StatsStore
from ..common.stream_states import DONE

FAULT_TYPE = "envoy.extensions.filters.http.fault.v3.HTTPFault"
_ABORT_BODY = b"fault filter abort"
_GRPC_CONTENT_TYPE = (b"content-type", b"application/grpc")
_GRPC_MESSAGE = (b"grpc-message", _ABORT_BODY)

# Envoy's Grpc::Utility::httpToGrpcStatus, for an HTTP abort answering a gRPC request.
_HTTP_TO_GRPC = {400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14}
_GRPC_UNKNOWN = 2


def _is_grpc(headers: list[tuple[bytes, bytes]]) -> bool:
    for k, v in headers:
        if k == b"content-type":
            return v.startswith(b"application/grpc") and (len(v) == 16 or v[16:17] in (b"+", b";"))
    return False


class FaultFilter:
    """One fault filter in a connection manager's chain (compiled once per config)."""

    __slots__ = ("name", "policy", "active")

    def __init__(self, name: str, policy: FaultPolicy, active: ActiveFaults) -> None:
        self.name = name
        self.policy = policy
        self.active = active

    def intercept(self, stream: Any, route: Any, cluster: str) -> bool:
        """Apply the faults for this request; True when the stream was taken (answered, or held
        by a delay that re-enters ``stream.begin()`` when it ends)."""
        if stream.fault_resumed:
            return False
        policy = route.typed_per_filter.get(self.name, self.policy) if route.typed_per_filter else self.policy
        if policy.never:
            return False
        if policy.by_downstream is not None:
            policy = policy.for_request(stream.head.headers)
        d = policy.decide(stream.head.headers, cluster, stream.conn.rng, self.active)
        if d.delay is not None:
            stream.flags |= DI
            stream.conn.loop.call_later(d.delay, self._delay_over, stream, d)
            return True
        if d.http_status is not None:
            self._abort(stream, d)
            return True
        return False

    def _delay_over(self, stream: Any, d: FaultDecision) -> None:
        if stream.resp is DONE:  # reset, or answered (413) while held
            self.active.release()
            return
        if d.http_status is not None:
            self._abort(stream, d)
        else:
            self.active.release()  # a delay alone stops counting once it is over, as Envoy
            stream.fault_resumed = True
            stream.begin()
        conn = stream.conn
        if conn.out:
            conn.flush()

    def _abort(self, stream: Any, d: FaultDecision) -> None:
        stream.flags |= FI
        status = d.http_status
        grpc = d.grpc_status
        if grpc is None and _is_grpc(stream.head.headers):
            grpc = _HTTP_TO_GRPC.get(status, _GRPC_UNKNOWN)  # type: ignore[arg-type]
            status = 200
        if grpc is not None:
            stream.local_reply(200, b"", extra=(_GRPC_CONTENT_TYPE, (b"grpc-status", b"%d" % grpc),
                                                _GRPC_MESSAGE))
        else:
            stream.local_reply(status, _ABORT_BODY)
        self.active.release()


def active_faults(stats: StatsStore, stat_prefix: str) -> ActiveFaults:
    """The ``http.<stat_prefix>.fault.*`` scope, made once per prefix and kept across configs."""
    stats.http(stat_prefix)  # the connection manager's own scope comes first: stats.http() finds it
    prefix = f"http.{stat_prefix}"
    for p, family, _, _, scope in stats.scopes:
        if family == "http" and p == prefix and isinstance(scope, ActiveFaults):
            return scope
    active = ActiveFaults()
    stats.scopes.append((prefix, "http", "envoy_http_conn_manager_prefix", stat_prefix, active))  # type: ignore[arg-type]
    return active
