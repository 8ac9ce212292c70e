"""Envoy's substitution format strings (``SubstitutionFormatString``): access-log ``log_format``
and the local reply ``body_format``, compiled once into a list of parts.

``text_format``/``text_format_source`` give a line of literal text and command operators
(``%REQ(X?Y):Z%``, ``%RESPONSE_CODE%``, ...; ``%%`` is a literal ``%``); a value that is not
there prints ``-`` (nothing with ``omit_empty_values``). ``json_format`` gives one JSON object per
line, keys sorted, compact, as Envoy's: a value that is a single operator keeps its type (numbers
for codes, bytes and durations; ``null``, or the key left out with ``omit_empty_values``), any
other template becomes a string. An unknown operator is a config error, as in Envoy.

Operators read a finished stream's access-log entry (``local_reply.py``: a tuple of raw values,
extended with the stream and the socket addresses only when a configured format asks for them:
``Format.needs``), so formatting runs in the log's flush, off the request path.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Callable
from typing import Any

from ..common.response_flags import flags_string

# The access-log entry (LocalReplyMixin._log_entry); optional parts follow when needed.
(START, METHOD, PATH, VERSION, STATUS, FLAGS, RX, TX, DURATION, SERVICE_TIME, XFF, UA, REQUEST_ID,
 AUTHORITY, UPSTREAM_HOST, STREAM, PEER, SOCK, LOCAL_BODY) = range(19)
NEED_STREAM, NEED_ADDRESSES, NEED_RESPONSE = 1, 2, 4

Value = str | int | None
Getter = Callable[[tuple], Value]

_COMMAND = re.compile(r"%([A-Z0-9_]+)(?:\(([^)]*)\))?(?::([0-9]+))?%")


class FormatError(ValueError):
    """A format string Envoy would refuse (the compiler names the field)."""


def _s(v: bytes | None) -> str | None:
    return None if v is None or v == b"" else v.decode("latin-1")


def _start_time(fmt: str) -> Getter:
    if not fmt:
        def default(e: tuple) -> str:
            start = e[START]
            return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start)) + f".{int((start % 1) * 1000):03d}Z"
        return default
    # Envoy's additions to strftime: %s (epoch seconds), %[1-9]f / %f (fraction of a second),
    # %E[1-9]S / %E*S (seconds with a fraction)
    extra = re.compile(r"%([1-9]?)f|%s|%E([1-9*])S")

    def custom(e: tuple) -> str:
        start = e[START]
        nanos = f"{int((start % 1) * 10 ** 9):09d}"

        def sub(m: re.Match) -> str:
            if m.group(0) == "%s":
                return str(int(start))
            if m.group(2) is not None:
                digits = 9 if m.group(2) == "*" else int(m.group(2))
                return f"{time.gmtime(start).tm_sec:02d}.{nanos[:digits]}"
            return nanos[:int(m.group(1) or 9)]
        return time.strftime(extra.sub(sub, fmt), time.gmtime(start))
    return custom


def _request_header(name: str) -> tuple[Getter, int]:
    """%REQ(name)%: the request as the router saw it."""
    n = name.lower()
    if n == ":method":
        return (lambda e: _s(e[METHOD])), 0
    if n == ":path":
        return (lambda e: _s(e[STREAM].head.path)), NEED_STREAM
    if n in (":authority", "host"):
        return (lambda e: _s(e[AUTHORITY])), 0
    if n == ":scheme":
        return (lambda e: "http"), 0
    if n == "x-forwarded-for":
        return (lambda e: _s(e[XFF])), 0
    if n == "user-agent":
        return (lambda e: _s(e[UA])), 0
    if n == "x-request-id":
        return (lambda e: _s(e[REQUEST_ID])), 0
    if n == "x-envoy-original-path":
        return (lambda e: _s(e[STREAM].original_path)), NEED_STREAM
    key = n.encode()

    def get(e: tuple) -> Value:
        for k, v in e[STREAM].head.headers:
            if k == key:
                return _s(v)
        return None
    return get, NEED_STREAM


def response_headers(stream: Any) -> list[tuple[bytes, bytes]] | None:
    """The response head a stream sent, when a format asked to keep it (a local reply's, or the
    upstream's through ResponseHeaderCapture)."""
    if stream.reply_headers is not None:
        return stream.reply_headers
    for m in stream.response_extras:
        if m.__class__ is ResponseHeaderCapture:
            return m.headers
    return None


class ResponseHeaderCapture:
    """A response "mutation" that only remembers the final header list (for ``%RESP(X)%``)."""

    __slots__ = ("headers",)

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] | None = None

    def apply(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        self.headers = headers
        return headers


def _response_header(name: str) -> tuple[Getter, int]:
    n = name.lower()
    if n == "x-envoy-upstream-service-time":
        return (lambda e: None if e[SERVICE_TIME] is None else str(e[SERVICE_TIME])), 0
    key = n.encode()

    def get(e: tuple) -> Value:
        headers = response_headers(e[STREAM])
        for k, v in headers or ():
            if k == key:
                return _s(v)
        return None
    return get, NEED_STREAM | NEED_RESPONSE


def _details(e: tuple) -> Value:
    s = e[STREAM]
    details = s.details
    if details is not None:
        return details
    return "via_upstream" if s.status else None


def _address(index: int, with_port: bool) -> Getter:
    def get(e: tuple) -> Value:
        addr = e[index]
        if not addr:
            return None
        host, port = addr[0], addr[1]
        if not with_port:
            return host
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return get


def _cluster(e: tuple) -> Value:
    c = e[STREAM].cluster
    return c.name if c is not None else None


def _route_name(e: tuple) -> Value:
    r = e[STREAM].route
    return (r.name or None) if r is not None else None


def _protocol(e: tuple) -> str:
    return "HTTP/" + e[VERSION]


_NONE: Getter = lambda e: None  # noqa: E731  (what has no source without TLS or HTTP/2)

#: Operators without an argument: (getter, what the entry needs, value is a number).
_SIMPLE: dict[str, tuple[Getter, int, bool]] = {
    "PROTOCOL": (_protocol, 0, False),
    "RESPONSE_CODE": (lambda e: e[STATUS], 0, True),
    "RESPONSE_FLAGS": (lambda e: flags_string(e[FLAGS]), 0, False),
    "RESPONSE_CODE_DETAILS": (_details, NEED_STREAM, False),
    "BYTES_RECEIVED": (lambda e: e[RX], 0, True),
    "BYTES_SENT": (lambda e: e[TX], 0, True),
    "DURATION": (lambda e: e[DURATION], 0, True),
    "UPSTREAM_HOST": (lambda e: e[UPSTREAM_HOST], 0, False),
    "UPSTREAM_CLUSTER": (_cluster, NEED_STREAM, False),
    "UPSTREAM_CLUSTER_RAW": (_cluster, NEED_STREAM, False),
    "ROUTE_NAME": (_route_name, NEED_STREAM, False),
    "DOWNSTREAM_REMOTE_ADDRESS": (_address(PEER, True), NEED_ADDRESSES, False),
    "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT": (_address(PEER, False), NEED_ADDRESSES, False),
    "DOWNSTREAM_DIRECT_REMOTE_ADDRESS": (_address(PEER, True), NEED_ADDRESSES, False),
    "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT": (_address(PEER, False), NEED_ADDRESSES, False),
    "DOWNSTREAM_LOCAL_ADDRESS": (_address(SOCK, True), NEED_ADDRESSES, False),
    "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT": (_address(SOCK, False), NEED_ADDRESSES, False),
    "DOWNSTREAM_LOCAL_PORT": (lambda e: e[SOCK][1] if e[SOCK] else None, NEED_ADDRESSES, True),
    "REQUESTED_SERVER_NAME": (_NONE, 0, False),  # SNI: no TLS listeners yet
    "UPSTREAM_TRANSPORT_FAILURE_REASON": (_NONE, 0, False),  # no TLS upstreams yet
    "CONNECTION_TERMINATION_DETAILS": (_NONE, 0, False),
    "UPSTREAM_LOCAL_ADDRESS": (_NONE, 0, False),  # not kept once the connection is back in its pool
    "LOCAL_REPLY_BODY": (lambda e: e[LOCAL_BODY] if len(e) > LOCAL_BODY else None, 0, False),
    "HOSTNAME": (lambda e: _HOSTNAME, 0, False),
}

_HOSTNAME = socket.gethostname()


class Part:
    """One operator in a format: how to get its value, and how long it may be."""

    __slots__ = ("get", "max_len", "number")

    def __init__(self, get: Getter, max_len: int | None, number: bool) -> None:
        self.get = get
        self.max_len = max_len
        self.number = number

    def value(self, e: tuple) -> Value:
        v = self.get(e)
        if v is None:
            return None
        if self.max_len is not None:
            v = str(v)[:self.max_len]
        return v


def parse_template(fmt: str) -> tuple[list[str | Part], int]:
    """A text template → literal strings and Parts, and what the entry must carry."""
    parts: list[str | Part] = []
    needs = 0
    literal: list[str] = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%":
            literal.append(c)
            i += 1
            continue
        if fmt.startswith("%%", i):
            literal.append("%")
            i += 2
            continue
        m = _COMMAND.match(fmt, i)
        if m is None:
            raise FormatError(f"incorrect configuration: {fmt[i:]!r}: expected a command operator "
                              "such as %RESPONSE_CODE% or %REQ(X?Y):Z%")
        if literal:
            parts.append("".join(literal))
            literal = []
        command, arg, length = m.group(1), m.group(2), m.group(3)
        part, need = _operator(command, arg)
        part.max_len = int(length) if length else None
        parts.append(part)
        needs |= need
        i = m.end()
    if literal:
        parts.append("".join(literal))
    return parts, needs


def _operator(command: str, arg: str | None) -> tuple[Part, int]:
    if command == "REQ" and arg and arg.upper() == "X-ENVOY-ORIGINAL-PATH?:PATH":
        return Part(lambda e: _s(e[PATH]), None, False), 0  # the entry's path is exactly that
    if command in ("REQ", "RESP"):
        if not arg:
            raise FormatError(f"%{command}(...)% needs a header name")
        main, _, alt = arg.partition("?")
        lookup = _request_header if command == "REQ" else _response_header
        get, need = lookup(main)
        if alt:
            alt_get, alt_need = lookup(alt)
            need |= alt_need
            first = get

            def get(e: tuple, first: Getter = first, alt_get: Getter = alt_get) -> Value:
                v = first(e)
                return v if v is not None else alt_get(e)
        return Part(get, None, False), need
    if command == "START_TIME":
        return Part(_start_time(arg or ""), None, False), 0
    entry = _SIMPLE.get(command)
    if entry is None or arg is not None:
        raise FormatError(f"not supported field in StreamInfo: {command}")
    get, need, number = entry
    return Part(get, None, number), need


class Format:
    """A compiled SubstitutionFormatString."""

    __slots__ = ("text", "json", "omit_empty", "content_type", "needs")

    def __init__(self, text: list[str | Part] | None, json_tree: Any, omit_empty: bool,
                 content_type: str, needs: int) -> None:
        self.text = text
        self.json = json_tree
        self.omit_empty = omit_empty
        self.content_type = content_type
        self.needs = needs

    def format(self, e: tuple) -> str:
        if self.text is not None:
            empty = "" if self.omit_empty else "-"
            out = []
            for p in self.text:
                if p.__class__ is str:
                    out.append(p)  # type: ignore[arg-type]
                else:
                    v = p.value(e)  # type: ignore[union-attr]
                    out.append(empty if v is None else str(v))
            return "".join(out)
        obj = _render(self.json, e, self.omit_empty)
        return json.dumps(obj if obj is not _OMIT else {}, separators=(",", ":"), ensure_ascii=False) + "\n"


_OMIT = object()


def _render(node: Any, e: tuple, omit: bool) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            r = _render(v, e, omit)
            if r is not _OMIT:
                out[k] = r
        return out if out or not omit else _OMIT
    if isinstance(node, list):
        return [r for r in (_render(v, e, omit) for v in node) if r is not _OMIT]
    if isinstance(node, Part):
        v = node.value(e)
        if v is None:
            return _OMIT if omit else None
        if node.number and node.max_len is None:
            return v
        return str(v)
    if isinstance(node, tuple):  # a template of several parts: always a string
        empty = "" if omit else "-"
        out = []
        for p in node:
            if isinstance(p, str):
                out.append(p)
            else:
                v = p.value(e)
                out.append(empty if v is None else str(v))
        return "".join(out)
    return node  # a constant


def _json_tree(value: Any) -> tuple[Any, int]:
    """A json_format Struct (as Python values) → a tree of constants, Parts and templates."""
    if isinstance(value, dict):
        needs = 0
        out = {}
        for k in sorted(value):
            if value[k] is None:
                continue
            out[k], n = _json_tree(value[k])
            needs |= n
        return out, needs
    if isinstance(value, list):
        needs = 0
        items = []
        for v in value:
            if v is None:
                continue
            t, n = _json_tree(v)
            items.append(t)
            needs |= n
        return items, needs
    if isinstance(value, str) and "%" in value:
        parts, needs = parse_template(value)
        if len(parts) == 1 and isinstance(parts[0], Part):
            return parts[0], needs
        if all(isinstance(p, str) for p in parts):
            return "".join(parts), needs  # type: ignore[arg-type]
        return tuple(parts), needs
    if isinstance(value, float) and value.is_integer():
        return int(value), 0
    return value, 0


def text_format(fmt: str, omit_empty: bool = False, content_type: str = "text/plain") -> Format:
    parts, needs = parse_template(fmt)
    return Format(parts, None, omit_empty, content_type, needs)


def json_format(struct: dict, omit_empty: bool = False, content_type: str = "application/json") -> Format:
    tree, needs = _json_tree(struct)
    return Format(None, tree, omit_empty, content_type, needs)


#: Envoy's default access-log format.
DEFAULT_FORMAT = ('[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
                  '%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
                  '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
                  '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n')
