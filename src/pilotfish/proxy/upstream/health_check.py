"""Envoy's active HTTP health checking as a state machine per host, without timers or I/O.

A ``HealthChecker`` owns one ``HealthCheckSession`` per host. The owner (a thin async runner,
health_check_runner.py) asks a session when its next check is due (``next_check_at``), runs the
probe, and reports what happened: ``on_response(status, headers)``, ``on_network_failure()``
or ``on_timeout()``. Health moves through HostHealth's FAILED_ACTIVE_HC flag, as Envoy:

* hosts start failed (FAILED_ACTIVE_HC) and the very first success makes them healthy at once;
* a status outside ``expected_statuses`` (default: only 200) fails the host at once, unless it
  is in ``retriable_statuses``: then, like network failures and timeouts, it takes
  ``unhealthy_threshold`` failures in a row;
* ``healthy_threshold`` successes in a row bring a failed host back;
* intervals: ``no_traffic_interval`` (60 s) / ``no_traffic_healthy_interval`` until the cluster
  has opened a connection, then ``interval``, ``unhealthy_interval`` and, while a transition is
  pending, ``healthy_edge_interval`` / ``unhealthy_edge_interval``; plus ``interval_jitter`` and
  ``interval_jitter_percent``; the first check after ``initial_jitter``;
* x-envoy-degraded marks the host degraded, x-envoy-immediate-health-check-fail on a failing
  response excludes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ...xds.backoff import RandomSource
from .host_health import (
    ACTIVE_HC_TIMEOUT, DEGRADED_ACTIVE_HC, EXCLUDED_VIA_IMMEDIATE_HC_FAIL, FAILED_ACTIVE_HC, HostHealth,
)

Headers = Sequence[tuple[bytes, bytes]]

# HealthCheckFailureType
ACTIVE, PASSIVE, NETWORK, NETWORK_TIMEOUT = range(4)
# HealthTransition
UNCHANGED, CHANGED, CHANGE_PENDING = range(3)


@dataclass(frozen=True, slots=True)
class HttpCheck:
    path: bytes
    host: bytes = b""  # empty: the cluster's name
    method: bytes = b"GET"
    expected: tuple[tuple[int, int], ...] = ((200, 201),)  # [start, end) ranges
    retriable: tuple[tuple[int, int], ...] = ()
    request_headers_to_add: tuple[tuple[bytes, bytes], ...] = ()
    request_headers_to_remove: tuple[bytes, ...] = ()
    service_name_matcher: Callable[[bytes], bool] | None = None


@dataclass(frozen=True, slots=True)
class HealthCheckSettings:
    """envoy.config.core.v3.HealthCheck (times in seconds)."""

    timeout: float
    interval: float
    unhealthy_threshold: int
    healthy_threshold: int
    http: HttpCheck
    initial_jitter: float = 0.0
    interval_jitter: float = 0.0
    interval_jitter_percent: int = 0
    no_traffic_interval: float = 60.0
    no_traffic_healthy_interval: float | None = None  # default: no_traffic_interval
    unhealthy_interval: float | None = None  # default: interval
    unhealthy_edge_interval: float | None = None  # default: unhealthy_interval
    healthy_edge_interval: float | None = None  # default: interval
    reuse_connection: bool = True

    def interval_ms(self, healthy: bool, transition: int, has_traffic: bool) -> int:
        """Envoy's HealthCheckerImplBase::interval() before jitter, in milliseconds."""
        interval = self.interval
        if has_traffic:
            unhealthy = self.unhealthy_interval if self.unhealthy_interval is not None else interval
            if not healthy:
                edge = self.unhealthy_edge_interval if self.unhealthy_edge_interval is not None else unhealthy
                base = edge if transition == CHANGE_PENDING else unhealthy
            else:
                edge = self.healthy_edge_interval if self.healthy_edge_interval is not None else interval
                base = edge if transition == CHANGE_PENDING else interval
        else:
            quiet_healthy = (self.no_traffic_healthy_interval if self.no_traffic_healthy_interval is not None
                             else self.no_traffic_interval)
            base = quiet_healthy if healthy and transition != CHANGE_PENDING else self.no_traffic_interval
        return round(base * 1000)


class HealthCheckStats:
    COUNTERS = ("attempt", "success", "failure", "network_failure", "passive_failure", "verify_cluster")
    __slots__ = COUNTERS + ("healthy", "degraded")

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def values(self) -> Iterable[tuple[str, int, bool]]:
        for name in self.COUNTERS:
            yield "health_check." + name, getattr(self, name), True
        yield "health_check.healthy", self.healthy, False
        yield "health_check.degraded", self.degraded, False


def _in_ranges(code: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(start <= code < end for start, end in ranges)


class HealthCheckSession:
    __slots__ = ("checker", "host", "first_check", "num_healthy", "num_unhealthy", "next_check_at",
                 "in_flight", "deadline")

    def __init__(self, checker: HealthChecker, host: Any) -> None:
        self.checker = checker
        self.host = host
        self.first_check = True
        self.num_healthy = 0
        self.num_unhealthy = 0
        self.next_check_at = 0.0
        self.in_flight = False
        self.deadline = 0.0

    # ---- scheduling ----------------------------------------------------------------------
    def start(self) -> float:
        """The first check: now, or after a random part of ``initial_jitter``."""
        c = self.checker
        jitter_ms = round(c.settings.initial_jitter * 1000)
        delay = c.with_jitter(0, jitter_ms) if jitter_ms else 0
        self.next_check_at = c.now() + delay / 1000.0
        return self.next_check_at

    def begin_check(self) -> float:
        """The probe is being sent: returns its deadline (now + timeout)."""
        c = self.checker
        c.stats.attempt += 1
        self.in_flight = True
        self.deadline = c.now() + c.settings.timeout
        return self.deadline

    def _schedule(self, healthy: bool, transition: int) -> None:
        c = self.checker
        self.in_flight = False
        ms = c.settings.interval_ms(healthy, transition, c.has_traffic())
        self.next_check_at = c.now() + c.with_jitter(ms, round(c.settings.interval_jitter * 1000)) / 1000.0

    # ---- results -------------------------------------------------------------------------
    def on_response(self, status: int, headers: Headers = ()) -> int:
        """A complete probe response: classify it as Envoy's healthCheckResult and apply it."""
        http = self.checker.settings.http
        health = self.checker.health
        if not _in_ranges(status, http.expected):
            if any(k == b"x-envoy-immediate-health-check-fail" for k, _ in headers):
                health.set(self.host, EXCLUDED_VIA_IMMEDIATE_HC_FAIL, notify=False)
            return self.on_failure(ACTIVE, retriable=_in_ranges(status, http.retriable))
        degraded = any(k == b"x-envoy-degraded" for k, _ in headers)
        if http.service_name_matcher is not None:
            self.checker.stats.verify_cluster += 1
            checked = b""
            for k, v in headers:
                if k == b"x-envoy-upstream-healthchecked-cluster":
                    checked = v
                    break
            if not http.service_name_matcher(checked):
                return self.on_failure(ACTIVE)
        return self.on_success(degraded)

    def on_network_failure(self) -> int:
        """Connect failure, reset or close before a full response."""
        return self.on_failure(NETWORK)

    def on_timeout(self) -> int:
        return self.on_failure(NETWORK_TIMEOUT)

    def on_success(self, degraded: bool = False) -> int:
        c = self.checker
        health = c.health
        host = self.host
        self.num_unhealthy = 0
        transition = UNCHANGED
        if health.get(host, FAILED_ACTIVE_HC):
            if not self.first_check:
                self.num_healthy += 1
            if self.first_check or self.num_healthy == c.settings.healthy_threshold:
                health.clear(host, ACTIVE_HC_TIMEOUT | EXCLUDED_VIA_IMMEDIATE_HC_FAIL, notify=False)
                health.clear(host, FAILED_ACTIVE_HC)
                c.stats.healthy += 1
                transition = CHANGED
            else:
                transition = CHANGE_PENDING
        if degraded != health.get(host, DEGRADED_ACTIVE_HC):
            if degraded:
                health.set(host, DEGRADED_ACTIVE_HC, notify=False)
                c.stats.degraded += 1
            else:
                health.clear(host, DEGRADED_ACTIVE_HC, notify=False)
                c.stats.degraded -= 1
            if transition == UNCHANGED:
                transition = CHANGED
        c.stats.success += 1
        self.first_check = False
        if c.on_success is not None:
            c.on_success(host)
        self._schedule(True, transition)
        return transition

    def on_failure(self, kind: int, retriable: bool = False) -> int:
        c = self.checker
        health = c.health
        host = self.host
        self.num_healthy = 0
        transition = UNCHANGED
        network = kind in (NETWORK, NETWORK_TIMEOUT)
        if not health.get(host, FAILED_ACTIVE_HC):
            immediate = not network and not retriable
            if not immediate:
                self.num_unhealthy += 1
            if immediate or self.num_unhealthy == c.settings.unhealthy_threshold:
                health.set(host, FAILED_ACTIVE_HC)
                c.stats.healthy -= 1
                transition = CHANGED
            else:
                transition = CHANGE_PENDING
        if kind == NETWORK_TIMEOUT and health.get(host, FAILED_ACTIVE_HC):
            health.set(host, ACTIVE_HC_TIMEOUT, notify=False)
        else:
            health.clear(host, ACTIVE_HC_TIMEOUT, notify=False)
        c.stats.failure += 1
        if network:
            c.stats.network_failure += 1
        elif kind == PASSIVE:
            c.stats.passive_failure += 1
        self.first_check = False
        self._schedule(False, transition)
        return transition


class HealthChecker:
    """One cluster's active HTTP health checking."""

    def __init__(self, settings: HealthCheckSettings, health: HostHealth, now: Callable[[], float],
                 rng: RandomSource, has_traffic: Callable[[], bool] = lambda: True,
                 on_success: Callable[[Any], None] | None = None) -> None:
        self.settings = settings
        self.health = health
        self.now = now
        self.rng = rng
        self.has_traffic = has_traffic  # Envoy: the cluster's upstream_cx_total was ever used
        self.on_success = on_success  # e.g. OutlierDetector.on_health_check_success
        self.sessions: dict[Any, HealthCheckSession] = {}
        self.stats = HealthCheckStats()

    def with_jitter(self, base_ms: int, jitter_ms: int) -> int:
        """Envoy's intervalWithJitter: percent jitter, then absolute jitter, at least 1 ms."""
        percent_mod = self.settings.interval_jitter_percent * base_ms // 100
        if percent_mod > 0:
            base_ms += self.rng.getrandbits(64) % percent_mod
        if jitter_ms > 0:
            base_ms += self.rng.getrandbits(64) % jitter_ms
        return max(1, base_ms)

    def set_hosts(self, hosts: Iterable[Any]) -> list[HealthCheckSession]:
        """The cluster's hosts now; new ones start failed and get a session (returned, started)."""
        current = list(hosts)
        keep = set(map(id, current))
        for host in [h for h in self.sessions if id(h) not in keep]:
            if not self.health.get(host, FAILED_ACTIVE_HC):
                self.stats.healthy -= 1
            if self.health.get(host, DEGRADED_ACTIVE_HC):
                self.stats.degraded -= 1
            self.health.clear(host, FAILED_ACTIVE_HC | DEGRADED_ACTIVE_HC | ACTIVE_HC_TIMEOUT
                              | EXCLUDED_VIA_IMMEDIATE_HC_FAIL, notify=False)
            del self.sessions[host]
        added = []
        for host in current:
            if host not in self.sessions:
                self.health.set(host, FAILED_ACTIVE_HC, notify=False)
                session = HealthCheckSession(self, host)
                session.start()
                self.sessions[host] = session
                added.append(session)
        return added

    def due(self, now: float | None = None) -> list[HealthCheckSession]:
        """Sessions whose check is due and not already in flight."""
        t = self.now() if now is None else now
        return [s for s in self.sessions.values() if not s.in_flight and s.next_check_at <= t]

    def next_check_at(self) -> float | None:
        times = [s.next_check_at for s in self.sessions.values() if not s.in_flight]
        return min(times) if times else None

    def request_head(self, host: Any, cluster_name: str) -> bytes:
        """The probe request: method, path, host (configured, else the cluster's name),
        user-agent Envoy/HC, configured header edits."""
        http = self.settings.http
        authority = http.host or cluster_name.encode()
        headers = [(b"host", authority), (b"user-agent", b"Envoy/HC")]
        if http.request_headers_to_remove:
            headers = [h for h in headers if h[0] not in http.request_headers_to_remove]
        headers.extend(http.request_headers_to_add)
        lines = b"".join(b"%s: %s\r\n" % h for h in headers)
        return b"%s %s HTTP/1.1\r\n%s\r\n" % (http.method, http.path, lines)
