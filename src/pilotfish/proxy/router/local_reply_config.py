"""The connection manager's ``local_reply_config`` and Envoy's access-log filters.

Every reply the proxy makes itself (404 NR, 503 UH, direct responses, health checks, ...) goes
through ``LocalReplyRewriter.rewrite``, as Envoy's ``LocalReplyImpl::rewrite``: the first mapper
whose filter matches may change the status, replace the body, add headers and choose its own
body format; the body is then formatted with that format, or the top-level ``body_format``, in
which ``%LOCAL_REPLY_BODY%`` is the body so far. A connection manager with neither a
``local_reply_config`` nor an access-log format that reads local-reply details has no rewriter.

Filters (``AccessLogFilter``: ``status_code_filter``, ``duration_filter``, ``header_filter``,
``response_flag_filter``, ``not_health_check_filter``, ``traceable_filter``, ``and_filter``,
``or_filter``) are predicates over an access-log entry (common/substitution_format.py), shared by
mappers and access-log ``filter``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..common.response_flags import DT, FI, FLAG_BITS, NC, NR, SI, UC, UF, UH, UO, UPE, UT
from ..common.substitution_format import (
    DURATION,
    FLAGS,
    STATUS,
    STREAM,
    Format,
)
from .route_table import DIRECT, HeaderMatcher

Predicate = Callable[[tuple], bool]

# ComparisonFilter.Op
EQ, GE, LE = range(3)


def compare(op: int, value: int) -> Callable[[int], bool]:
    if op == EQ:
        return value.__eq__
    if op == GE:
        return value.__le__
    return value.__ge__


def status_filter(op: int, value: int) -> Predicate:
    test = compare(op, value)
    return lambda e: test(e[STATUS])


def duration_filter(op: int, value: int) -> Predicate:
    test = compare(op, value)
    return lambda e: test(e[DURATION])


def header_filter(matcher: HeaderMatcher) -> Predicate:
    def test(e: tuple) -> bool:
        head = e[STREAM].head
        headers = head.headers
        if matcher.name.startswith(b":"):
            headers = [(b":path", head.path), (b":method", head.method), *headers]
        return matcher.matches(headers)
    return test


def response_flag_filter(names: tuple[str, ...]) -> Predicate:
    """Any of the named flags (any flag at all when none is named)."""
    if not names:
        return lambda e: e[FLAGS] != 0
    mask = 0
    for n in names:
        mask |= FLAG_BITS[n]
    return lambda e: bool(e[FLAGS] & mask)


def not_health_check(e: tuple) -> bool:
    return not e[STREAM].health_check


def never(e: tuple) -> bool:
    return False


def all_of(preds: tuple[Predicate, ...]) -> Predicate:
    return lambda e: all(p(e) for p in preds)


def any_of(preds: tuple[Predicate, ...]) -> Predicate:
    return lambda e: any(p(e) for p in preds)


_RESET = "upstream_reset_before_response_started{%s}"
#: Envoy's response code details of the local replies that carry a response flag.
_FLAG_DETAILS = ((NR, "route_not_found"), (NC, "cluster_not_found"), (UH, "no_healthy_upstream"),
                 (UF, _RESET % "connection_failure"), (UC, _RESET % "connection_termination"),
                 (UO, _RESET % "overflow"), (UPE, _RESET % "protocol_error"),
                 (UT, "upstream_response_timeout"), (FI, "fault_filter_abort"),
                 (SI, "stream_idle_timeout"), (DT, "max_duration_timeout"))
_STATUS_DETAILS = {413: "request_payload_too_large", 400: "missing_host_header"}


def local_details(stream: Any, status: int) -> str:
    """The details of a local reply whose caller named none, from its flags (or route, status)."""
    flags = stream.flags
    for bit, name in _FLAG_DETAILS:
        if flags & bit:
            return name
    route = stream.route
    if route is not None and route.action_kind == DIRECT:
        return "direct_response"
    return _STATUS_DETAILS.get(status, "local_reply")


class Mapper:
    """One ``ResponseMapper``."""

    __slots__ = ("filter", "status", "body", "body_format", "headers")

    def __init__(self, filter: Predicate, status: int | None, body: bytes | None,
                 body_format: Format | None, headers: tuple[Any, ...]) -> None:
        self.filter = filter
        self.status = status
        self.body = body
        self.body_format = body_format
        self.headers = headers  # route_table header mutations (headers_to_add)


class LocalReplyRewriter:
    """What the connection manager does to each local reply (see the module docstring)."""

    __slots__ = ("mappers", "body_format", "entry", "keep_headers")

    def __init__(self, mappers: tuple[Mapper, ...], body_format: Format | None,
                 entry: Callable[[Any, bytes], tuple], keep_headers: bool) -> None:
        self.mappers = mappers
        self.body_format = body_format
        self.entry = entry  # (stream, body) -> access-log entry, as the formats need it
        self.keep_headers = keep_headers  # an access-log format reads %RESP(...)%

    def rewrite(self, stream: Any, status: int, body: bytes,
                extra: tuple[tuple[bytes, bytes], ...]) -> tuple[int, bytes, bytes | None, tuple]:
        """(status, body, content type or None for text/plain, extra headers)."""
        fmt = self.body_format
        if self.mappers or fmt is not None:
            stream.status = status
            e = self.entry(stream, body)
            for m in self.mappers:
                if m.filter(e):
                    if m.body is not None:
                        body = m.body
                    if m.headers:
                        added: list[tuple[bytes, bytes]] = list(extra)
                        for mutation in m.headers:
                            added = mutation.apply(added)
                        extra = tuple(added)
                    if m.status is not None and m.status != status:
                        status = stream.status = m.status
                    if m.body_format is not None:
                        fmt = m.body_format
                    break
            if fmt is not None:
                e = self.entry(stream, body)
                return status, fmt.format(e).encode(), fmt.content_type.encode(), extra
        return status, body, None, extra
