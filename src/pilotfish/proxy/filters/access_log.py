"""The access logs (Envoy's default format, or a ``log_format``), written off
the critical path.

A finished stream appends one tuple of raw values to the sink's pending list; formatting and
the write happen in a batch at most every ``flush_interval`` seconds. An entry's start is the
event loop's time; the flush turns it into wall-clock time (one clock read per batch).
"""

from __future__ import annotations

import asyncio
import sys
import time
import weakref
from collections.abc import Callable
from typing import IO

from ..common.response_flags import flags_string

class AccessLogSink:
    """A file (or stdout/stderr) receiving Envoy's default format."""

    def __init__(self, path: str, flush_interval: float = 0.1) -> None:
        self.path = path
        self.flush_interval = flush_interval
        self.pending: list[tuple] = []
        self._file: IO[str] | None = None
        self._scheduled = False
        self.formatted: weakref.WeakSet[FormattedLog] = weakref.WeakSet()  # logs with their own format
        self.loop: asyncio.AbstractEventLoop | None = None  # the loop whose time entries carry

    def record(self, entry: tuple) -> None:
        self.pending.append(entry)
        if not self._scheduled:
            self._scheduled = True
            self.loop = asyncio.get_running_loop()
            self.loop.call_later(self.flush_interval, self.flush)

    def flush(self) -> None:
        self._scheduled = False
        pending, self.pending = self.pending, []
        if not pending:
            return
        f = self._open()
        f.write("".join(format_default(e) for e in wall_clock(pending, self.loop)))
        f.flush()

    def _open(self) -> IO[str]:
        if self._file is None:
            if self.path == "/dev/stdout":
                self._file = sys.stdout
            elif self.path == "/dev/stderr":
                self._file = sys.stderr
            else:
                self._file = open(self.path, "a", buffering=1 << 16)  # noqa: SIM115
        return self._file

    def close(self) -> None:
        for log in list(self.formatted):
            log.flush()
        self.flush()
        if self._file is not None and self._file not in (sys.stdout, sys.stderr):
            self._file.close()
        self._file = None


def wall_clock(entries: list[tuple], loop: asyncio.AbstractEventLoop | None) -> list[tuple]:
    """Entries with their start (the loop's time) as wall-clock time."""
    if not entries or loop is None:
        return entries
    offset = time.time() - loop.time()
    return [(e[0] + offset, *e[1:]) for e in entries]


def _s(v: bytes | None) -> str:
    return "-" if v is None or v == b"" else v.decode("latin-1")


def format_default(e: tuple) -> str:
    """Envoy's default format:
    [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE%
    %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%
    "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"
    """
    (start, method, path, version, status, flags, rx, tx, duration_ms, service_time, xff, ua,
     request_id, authority, upstream) = e
    t = time.gmtime(start)
    ms = int((start % 1) * 1000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{ms:03d}Z"
    st = "-" if service_time is None else str(service_time)
    return (f'[{stamp}] "{_s(method)} {_s(path)} HTTP/{version}" {status} {flags_string(flags)} '
            f'{rx} {tx} {duration_ms} {st} "{_s(xff)}" "{_s(ua)}" "{_s(request_id)}" '
            f'"{_s(authority)}" "{upstream or "-"}"\n')


class FormattedLog:
    """An access log with a ``log_format`` and/or a ``filter``, writing to a shared sink's file.

    Entries (``_log_entry``'s tuple, extended with what the format reads) are kept as they are
    and filtered and formatted at the flush, like the default format's."""

    __slots__ = ("sink", "format", "filter", "pending", "_scheduled", "__weakref__")

    def __init__(self, sink: AccessLogSink, fmt: Callable[[tuple], str],
                 filter: Callable[[tuple], bool] | None) -> None:
        self.sink = sink
        self.format = fmt
        self.filter = filter
        self.pending: list[tuple] = []
        self._scheduled = False
        sink.formatted.add(self)

    def record(self, entry: tuple) -> None:
        self.pending.append(entry)
        if not self._scheduled:
            self._scheduled = True
            self.sink.loop = asyncio.get_running_loop()
            self.sink.loop.call_later(self.sink.flush_interval, self.flush)

    def flush(self) -> None:
        self._scheduled = False
        pending, self.pending = self.pending, []
        keep = self.filter
        lines = [self.format(e) for e in wall_clock(pending, self.sink.loop) if keep is None or keep(e)]
        if lines:
            f = self.sink._open()
            f.write("".join(lines))
            f.flush()
