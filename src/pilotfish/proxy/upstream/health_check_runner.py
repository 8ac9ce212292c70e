"""The I/O of active HTTP health checking: probes on the event loop for one cluster.

``health_check.HealthChecker`` decides when each host is checked and what a result means; this
runner only keeps one loop timer at the earliest due check, sends each due probe as an
HTTP/1.1 request on its own connection (kept for the next probe with ``reuse_connection``, as
Envoy), and reports the outcome: a complete response head (``on_response``), a connect
failure, reset or bad response (``on_network_failure``) or the ``timeout`` passing
(``on_timeout``). Probes run as tasks: they are a few per interval, never on the request path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httptools

from .health_check import HealthChecker, HealthCheckSession
from .host_health import DEGRADED_ACTIVE_HC, EXCLUDED_VIA_IMMEDIATE_HC_FAIL

log = logging.getLogger("pilotfish.proxy.upstream.health_check")

# Flags whose change alters the balancers without flipping Host.healthy (HostHealth does not
# notify for those, so the runner asks for the rebuild).
_QUIET_FLAGS = DEGRADED_ACTIVE_HC | EXCLUDED_VIA_IMMEDIATE_HC_FAIL


class ProbeFailed(Exception):
    """The connection closed or sent something that is not an HTTP/1.1 response."""


class ProbeConnection(asyncio.Protocol):
    """One health-check connection: a request out, one response head (and body, drained) in."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.waiter: asyncio.Future[tuple[int, list[tuple[bytes, bytes]], bool]] | None = None
        self.headers: list[tuple[bytes, bytes]] = []

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ProbeFailed(f"bad response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ProbeFailed("connection closed"))

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_message_complete(self) -> None:
        waiter = self.waiter
        self.waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result((self.parser.get_status_code(), self.headers, self.parser.should_keep_alive()))

    def _fail(self, exc: Exception) -> None:
        waiter = self.waiter
        self.waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    async def exchange(self, request: bytes) -> tuple[int, list[tuple[bytes, bytes]], bool]:
        """Send ``request``; the response's status, lower-cased headers and keep-alive."""
        if self.closed or self.transport is None:
            raise ProbeFailed("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()


class HealthCheckRunner:
    """Drives one cluster's HealthChecker; ``hosts_changed()`` after every ``set_hosts``."""

    def __init__(self, checker: HealthChecker, cluster_name: str, loop: asyncio.AbstractEventLoop,
                 on_quiet_change: Callable[[], None] | None = None) -> None:
        self.checker = checker
        self.cluster_name = cluster_name
        self.loop = loop
        self.on_quiet_change = on_quiet_change  # the cluster's health_changed
        self.first_round = asyncio.Event()  # every host known at start has been checked once
        self._waiting: set[Any] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: dict[Any, asyncio.Task[None]] = {}
        self._conns: dict[Any, ProbeConnection] = {}
        self._requests: dict[Any, bytes] = {}
        self._started = False
        self._closed = False

    def start(self) -> None:
        """Begin checking; ``first_round`` is set once the hosts present now were checked."""
        self._started = True
        self._waiting = {h for h, s in self.checker.sessions.items() if s.first_check}
        if not self._waiting:
            self.first_round.set()
        self._arm()

    def hosts_changed(self) -> None:
        """Forget probes, connections and cached requests of removed hosts; re-arm."""
        sessions = self.checker.sessions
        for host in [h for h in self._tasks if h not in sessions]:
            self._tasks.pop(host).cancel()
        for host in [h for h in self._conns if h not in sessions]:
            self._conns.pop(host).close()
        self._requests.clear()  # a kept host's address or health_check_config may have changed
        self._waiting &= set(sessions)
        if self._started:
            if not self._waiting:
                self.first_round.set()
            self._arm()

    def stop(self) -> None:
        self._closed = True
        self.first_round.set()  # nothing to wait for any more
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    # ---- scheduling -------------------------------------------------------------------------
    def _arm(self) -> None:
        if self._closed:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = self.checker.next_check_at()
        if when is not None:
            self._timer = self.loop.call_at(when, self._run_due)

    def _run_due(self) -> None:
        self._timer = None
        for session in self.checker.due(self.loop.time() + 0.001):  # timers may fire a tick early
            session.begin_check()
            self._tasks[session.host] = self.loop.create_task(self._probe(session))
        self._arm()

    # ---- one probe --------------------------------------------------------------------------
    def _request(self, host: Any) -> bytes:
        request = self._requests.get(host)
        if request is None:
            request = self.checker.request_head(host, self.cluster_name)
            if host.hc_hostname:  # health_check_config.hostname wins over the check's host
                http = self.checker.settings.http
                configured = http.host or self.cluster_name.encode()
                request = request.replace(b"\r\nhost: " + configured + b"\r\n",
                                          b"\r\nhost: " + host.hc_hostname + b"\r\n", 1)
            self._requests[host] = request
        return request

    async def _probe(self, session: HealthCheckSession) -> None:
        host = session.host
        settings = self.checker.settings
        before = self.checker.health.flags.get(host, 0)
        conn = self._conns.pop(host, None)
        try:
            async with asyncio.timeout(settings.timeout):
                if conn is None or conn.closed:
                    _, conn = await self.loop.create_connection(ProbeConnection, host.address,
                                                                host.hc_port or host.port)
                status, headers, keep_alive = await conn.exchange(self._request(host))
        except TimeoutError:
            if conn is not None:
                conn.close()
            session.on_timeout()
        except (OSError, ProbeFailed) as exc:
            if conn is not None:
                conn.close()
            log.debug("cluster %s: health check of %s failed: %s", self.cluster_name, host.label, exc)
            session.on_network_failure()
        else:
            if keep_alive and settings.reuse_connection and not self._closed:
                self._conns[host] = conn
            else:
                conn.close()
            session.on_response(status, headers)
        finally:
            self._tasks.pop(host, None)
        after = self.checker.health.flags.get(host, 0)
        if (before ^ after) & _QUIET_FLAGS and self.on_quiet_change is not None:
            self.on_quiet_change()
        if host in self._waiting:
            self._waiting.discard(host)
            if not self._waiting:
                self.first_round.set()
        self._arm()
