"""Runtime clusters: their hosts, load balancer and connection pools, per discovery type.

* STATIC and EDS install a ``LoadAssignment`` (``compile.clusters.install_load_assignment`` for an EDS
  ClusterLoadAssignment; a static ``load_assignment`` goes through the same path).
* STRICT_DNS resolves every endpoint and installs the assignment with the addresses found.
* LOGICAL_DNS keeps one host whose address follows the latest resolution: new connections go
  there, pooled ones stay (Envoy's LogicalDnsCluster).
* ORIGINAL_DST makes hosts on demand and drops unused ones every ``cleanup_interval``.

Installing builds new Host tuples and a new balancer; Host objects (and their pools,
active-request counts and health) survive for addresses that stay.

Resilience per cluster, as Envoy: ``resources`` (circuit breakers, per routing priority),
``outlier`` (outlier detection; results come in through ``report_http_status`` and
``report_local_origin``, an interval timer un-ejects) and active health checking
(health_check_runner.py). Both health sources write HostHealth, which flips ``Host.healthy``
and calls ``health_changed()``: a new balancer with the priority, locality and panic
arithmetic redone over the hosts still usable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from . import lb
from .circuit_breaker import CircuitBreakerSettings, ClusterResources
from .health_check import HealthChecker, HealthCheckSettings
from .health_check_runner import HealthCheckRunner
from .host_health import HostHealth
from .host_set import UNKNOWN, Host, Level, build_levels, eds_flags, health_flags_string
from .outlier import (
    LOCAL_ORIGIN_CONNECT_FAILED, LOCAL_ORIGIN_CONNECT_SUCCESS, LOCAL_ORIGIN_TIMEOUT, SUCCESS_RATE,
    SUCCESS_RATE_LOCAL_ORIGIN, OutlierDetector, OutlierSettings,
)
from .priority import DEFAULT_OVERPROVISIONING, priority_load
from ..common.stats import ClusterStats
from .pool import ConnectionPool, PoolOptions

log = logging.getLogger("pilotfish.proxy.upstream.cluster")

STATIC, STRICT_DNS, LOGICAL_DNS, EDS, ORIGINAL_DST = (
    "STATIC", "STRICT_DNS", "LOGICAL_DNS", "EDS", "ORIGINAL_DST")

__all__ = ["Cluster", "ClusterSettings", "EndpointSpec", "Host", "LoadAssignment", "LocalitySpec",
           "OriginalDstOptions", "STATIC", "STRICT_DNS", "LOGICAL_DNS", "EDS", "ORIGINAL_DST",
           "LOCAL_ORIGIN_CONNECT_FAILED", "LOCAL_ORIGIN_CONNECT_SUCCESS", "LOCAL_ORIGIN_TIMEOUT"]


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """One lb_endpoint as configured: an IP (STATIC, EDS) or a name to resolve (DNS types)."""

    address: str
    port: int
    weight: int = 1
    hostname: str = ""
    health: int = UNKNOWN
    hash_key: str = ""  # metadata filter_metadata["envoy.lb"]["hash_key"]
    hc_port: int = 0  # health_check_config.port_value
    hc_hostname: str = ""  # health_check_config.hostname
    hc_disabled: bool = False  # health_check_config.disable_active_health_check


@dataclass(frozen=True, slots=True)
class LocalitySpec:
    """One LocalityLbEndpoints."""

    endpoints: tuple[EndpointSpec, ...]
    priority: int = 0
    locality: tuple[str, str, str] = ("", "", "")
    weight: int = 0  # load_balancing_weight; 0 when unset


@dataclass(frozen=True, slots=True)
class LoadAssignment:
    """A compiled ClusterLoadAssignment."""

    localities: tuple[LocalitySpec, ...] = ()
    overprovisioning_factor: int = DEFAULT_OVERPROVISIONING
    weighted_priority_health: bool = False

    @property
    def endpoints(self) -> tuple[EndpointSpec, ...]:
        return tuple(e for loc in self.localities for e in loc.endpoints)


@dataclass(frozen=True, slots=True)
class OriginalDstOptions:
    header: bytes | None = None  # use_http_header: the header naming the destination
    port_override: int | None = None


@dataclass(slots=True)
class ClusterSettings:
    name: str
    kind: str
    assignment: LoadAssignment
    lb: lb.LbOptions
    pool: PoolOptions
    dns_refresh_rate: float = 5.0
    dns_family: int = socket.AF_UNSPEC  # socket.AF_INET / AF_INET6 / AF_UNSPEC
    prefer_v6: bool = False
    eds_service_name: str = ""
    cleanup_interval: float = 5.0
    original_dst: OriginalDstOptions = field(default_factory=OriginalDstOptions)
    circuit_breakers: CircuitBreakerSettings = CircuitBreakerSettings()
    outlier: OutlierSettings | None = None  # outlier_detection
    health_check: HealthCheckSettings | None = None  # health_checks[0]

    @property
    def lb_policy(self) -> str:
        return self.lb.policy

    @property
    def endpoints(self) -> tuple[EndpointSpec, ...]:
        return self.assignment.endpoints


def _ignore(host: Host, value: int) -> None:
    """report_* of a cluster without outlier detection."""


class Cluster:
    __slots__ = ("settings", "name", "stats", "rng", "hosts", "levels", "lb", "assignment",
                 "original_dst_hosts", "_loop", "_timer", "_closed", "resources", "host_health",
                 "outlier", "health_checker", "hc_runner", "report_http_status", "report_local_origin",
                 "_outlier_timer")

    def __init__(self, settings: ClusterSettings, stats: ClusterStats, rng: random.Random) -> None:
        self.settings = settings
        self.name = settings.name
        self.stats = stats
        self.rng = rng
        self.resources = ClusterResources(settings.circuit_breakers)
        self.host_health = HostHealth(self.health_changed)
        self.outlier: OutlierDetector | None = None
        self.health_checker: HealthChecker | None = None
        self.hc_runner: HealthCheckRunner | None = None
        self._outlier_timer: asyncio.TimerHandle | None = None
        # The request path reports upstream results here: report_http_status(host, status) for
        # a response head, report_local_origin(host, LOCAL_ORIGIN_*) for connect success,
        # connect failure and timeout. Without outlier detection both do nothing.
        self.report_http_status = self.report_local_origin = _ignore
        if settings.outlier is not None:
            self.outlier = OutlierDetector(settings.outlier, self.host_health, self._now, rng)
            self.report_http_status = self.outlier.put_http_status
            self.report_local_origin = self.outlier.put_result
        if settings.health_check is not None:
            self.health_checker = HealthChecker(
                settings.health_check, self.host_health, self._now, rng,
                has_traffic=lambda: stats.upstream_cx_total > 0,
                on_success=self.outlier.on_health_check_success if self.outlier is not None else None)
        stats.extra = (ResilienceStats(self),)
        self.hosts: tuple[Host, ...] = ()
        self.levels: tuple[Level, ...] = build_levels(())
        self.assignment = LoadAssignment()
        self.original_dst_hosts: dict[tuple[str, int], Host] = {}
        self.lb: lb.LoadBalancer = lb.RoundRobin((), rng)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        if settings.kind == ORIGINAL_DST:
            od = settings.original_dst
            self.lb = lb.OriginalDst(self.original_dst_hosts, self._add_original_dst_host,
                                     od.header, od.port_override)

    def choose_host(self, context: object) -> Host | None:
        return self.lb.choose_host(context)  # type: ignore[no-any-return]

    def _now(self) -> float:
        """The worker loop's clock (health-check times are loop.call_at deadlines), given by
        initialize(); nothing reads a cluster's time before it is initialized."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("cluster clock read before initialize(loop)")
        return loop.time()

    async def initialize(self, loop: asyncio.AbstractEventLoop) -> None:
        """Resolve or install the hosts and start the timers. With health checking the cluster
        warms, as Envoy's, until every initial host has been checked once."""
        self._loop = loop
        if self.outlier is not None:
            self._outlier_timer = loop.call_later(self.outlier.settings.interval, self._outlier_interval)
        if self.health_checker is not None:
            self.hc_runner = HealthCheckRunner(self.health_checker, self.name, loop, self.health_changed)
        kind = self.settings.kind
        if kind in (STATIC, EDS):
            self.install(self.settings.assignment)
        elif kind == ORIGINAL_DST:
            self._timer = loop.call_later(self.settings.cleanup_interval, self._cleanup)
        else:
            await self._resolve()
        runner = self.hc_runner
        if runner is not None and not self._closed:
            for session in self.health_checker.sessions.values():  # type: ignore[union-attr]
                session.start()  # first checks from now (initial_jitter), on the loop's clock
            runner.start()
            s = self.health_checker.settings  # type: ignore[union-attr]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(s.timeout + s.initial_jitter + 1.0):
                    await runner.first_round.wait()

    def _outlier_interval(self) -> None:
        if self._closed or self.outlier is None or self._loop is None:
            return
        delay = self.outlier.on_interval()
        self._outlier_timer = self._loop.call_later(delay, self._outlier_interval)

    # ---- endpoint updates ----------------------------------------------------------------
    def update_settings(self, settings: ClusterSettings) -> None:
        """A kept cluster whose endpoints changed (same Cluster message, new assignment)."""
        self.settings = settings
        if settings.kind in (STATIC, EDS):
            self.install(settings.assignment)
        elif settings.kind in (STRICT_DNS, LOGICAL_DNS) and self._loop is not None:
            self._loop.create_task(self._resolve())

    def install(self, assignment: LoadAssignment) -> None:
        """A new host snapshot and balancer; Host objects whose address stays are kept (and
        updated in place: weight, priority, locality, EDS health)."""
        old: dict[tuple[str, int], list[Host]] = {}
        for h in self.hosts:
            old.setdefault((h.address, h.port), []).append(h)
        use_hostname = self.settings.lb.use_hostname_for_hashing
        hosts = []
        for loc in assignment.localities:
            for e in loc.endpoints:
                hostname = e.hostname or e.address
                key = e.hash_key or (hostname if use_hostname else "")
                kept = old.get((e.address, e.port))
                if kept:
                    h = kept.pop(0)
                    h.weight, h.priority, h.locality = e.weight, loc.priority, loc.locality
                    h.locality_weight, h.eds_health, h.hostname = loc.weight, e.health, hostname.encode()
                    h.hash_key = key or h.label
                    h.hc_port, h.hc_hostname = e.hc_port, e.hc_hostname.encode()
                else:
                    h = Host(e.address, e.port, e.weight, hostname.encode(), priority=loc.priority,
                             locality=loc.locality, locality_weight=loc.weight, eds_health=e.health,
                             hash_key=key, hc_port=e.hc_port, hc_hostname=e.hc_hostname.encode())
                    h.pool = ConnectionPool(h, self.settings.pool, self.stats, self._loop)
                hosts.append((h, e.hc_disabled))
        for rest in old.values():
            for gone in rest:
                if gone.pool is not None:
                    gone.pool.close()
        if [id(h) for h, _ in hosts] != [id(h) for h in self.hosts]:
            self.stats.membership_change += 1
        self.assignment = assignment
        self.hosts = tuple(h for h, _ in hosts)
        self._track_hosts([h for h, disabled in hosts if not disabled])
        self.health_changed()

    def _track_hosts(self, checked: list[Host] | None = None) -> None:
        """Tell outlier detection and health checking the current hosts (``checked``: those
        with active health checking; all by default). New hosts start failed when checked."""
        if self.outlier is not None:
            self.outlier.set_hosts(self.hosts)
        if self.health_checker is not None:
            self.health_checker.set_hosts(self.hosts if checked is None else checked)
            if self.hc_runner is not None:
                self.hc_runner.hosts_changed()
        live = set(map(id, self.hosts))
        for h in [h for h in self.host_health.flags if id(h) not in live]:
            self.host_health.forget(h)

    def health_changed(self) -> None:
        """Rebuild the balancer from the hosts' current health (HostHealth calls this when
        outlier detection or health checking flips ``Host.healthy``)."""
        flags = self.host_health.flags
        for h in self.hosts:
            h.health_flags = flags.get(h, 0)
        if self.settings.kind == ORIGINAL_DST:
            self._count_members()
            return
        a = self.assignment
        self.levels = build_levels(self.hosts)
        load = priority_load(self.levels, a.overprovisioning_factor, self.settings.lb.panic_threshold,
                             a.weighted_priority_health)
        self.lb = lb.build(self.settings.lb, self.levels, load, self.rng, a.overprovisioning_factor)
        self._count_members()

    def _count_members(self) -> None:
        self.stats.membership_total = len(self.hosts)
        self.stats.membership_healthy = sum(1 for h in self.hosts if h.health == 0)

    def admin_summary(self) -> list[str]:
        """/clusters lines Envoy prints before the hosts: outlier success-rate figures (with
        outlier detection) and each priority's circuit-breaker limits."""
        name = self.name
        lines = []
        od = self.outlier
        if od is not None:
            for prefix, kind in (("", SUCCESS_RATE), ("local_origin_", SUCCESS_RATE_LOCAL_ORIGIN)):
                lines.append(f"{name}::outlier::{prefix}success_rate_average::{od.sr_average[kind]:g}")
                lines.append(f"{name}::outlier::{prefix}success_rate_ejection_threshold::{od.sr_threshold[kind]:g}")
        for priority, rm in zip(("default", "high"), self.resources.managers):
            for field_name, res in (("max_connections", rm.connections), ("max_pending_requests", rm.pending_requests),
                                    ("max_requests", rm.requests), ("max_retries", rm.retries)):
                lines.append(f"{name}::{priority}_priority::{field_name}::{res.max}")
        return lines

    def health_flags(self, host: Host) -> str:
        """The host's Envoy health flags for /clusters (``healthy``, ``/failed_active_hc``, …)."""
        return health_flags_string(self.host_health.flags.get(host, 0) | eds_flags(host.eds_health))

    # ---- DNS ---------------------------------------------------------------------------
    async def _lookup(self, name: str, port: int) -> list[str] | None:
        loop = self._loop
        assert loop is not None
        s = self.settings
        try:
            infos = await loop.getaddrinfo(name, port, family=s.dns_family, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            log.warning("cluster %s: DNS resolution of %s failed: %s", self.name, name, exc)
            return None
        v6 = [i[4][0] for i in infos if i[0] == socket.AF_INET6]
        v4 = [i[4][0] for i in infos if i[0] == socket.AF_INET]
        if s.dns_family == socket.AF_UNSPEC:
            addrs = (v6 or v4) if s.prefer_v6 else (v4 or v6)
        else:
            addrs = v6 + v4
        return list(dict.fromkeys(addrs))

    async def _resolve(self) -> None:
        if self.settings.kind == LOGICAL_DNS:
            await self._resolve_logical()
        else:
            await self._resolve_strict()
        loop = self._loop
        if not self._closed and loop is not None and self.settings.dns_refresh_rate > 0:
            self._timer = loop.call_later(self.settings.dns_refresh_rate, self._schedule_resolve)

    async def _resolve_strict(self) -> None:
        """Every endpoint becomes one host per address found, keeping its locality and weight."""
        localities = []
        for loc in self.settings.assignment.localities:
            endpoints: list[EndpointSpec] = []
            for e in loc.endpoints:
                addrs = await self._lookup(e.address, e.port)
                hostname = e.hostname or e.address
                if addrs is None:  # keep what this name had rather than drop it on a transient failure
                    endpoints += [replace(e, address=h.address, hostname=hostname) for h in self.hosts
                                  if h.hostname == hostname.encode() and h.port == e.port]
                    continue
                endpoints += [replace(e, address=a, hostname=hostname) for a in addrs]
            localities.append(replace(loc, endpoints=tuple(endpoints)))
        self.install(replace(self.settings.assignment, localities=tuple(localities)))

    async def _resolve_logical(self) -> None:
        assignment = self.settings.assignment
        loc = assignment.localities[0]
        e = loc.endpoints[0]
        addrs = await self._lookup(e.address, e.port)
        if not addrs:
            return
        if not self.hosts:
            self.install(replace(assignment, localities=(replace(
                loc, endpoints=(replace(e, address=addrs[0], hostname=e.hostname or e.address),)),)))
        elif self.hosts[0].address != addrs[0]:
            self.hosts[0].set_address(addrs[0])

    def _schedule_resolve(self) -> None:
        if not self._closed and self._loop is not None:
            self._loop.create_task(self._resolve())

    # ---- ORIGINAL_DST --------------------------------------------------------------------
    def _add_original_dst_host(self, address: str, port: int) -> Host:
        h = Host(address, port, 1, address.encode())
        h.pool = ConnectionPool(h, self.settings.pool, self.stats, self._loop)
        self.original_dst_hosts[(address, port)] = h
        self.hosts = self.hosts + (h,)
        self.stats.membership_change += 1
        if self.outlier is not None:
            self.outlier.set_hosts(self.hosts)
        self._count_members()
        return h

    def _cleanup(self) -> None:
        """Drop hosts not chosen since the last run and without requests or connections."""
        keep = []
        for h in self.hosts:
            if h.used or h.active_rq or (h.pool is not None and h.pool.cx_active):
                h.used = False
                keep.append(h)
            else:
                del self.original_dst_hosts[(h.address, h.port)]
                if h.pool is not None:
                    h.pool.close()
        if len(keep) != len(self.hosts):
            self.hosts = tuple(keep)
            self.stats.membership_change += 1
            self._track_hosts()
            self._count_members()
        if not self._closed and self._loop is not None:
            self._timer = self._loop.call_later(self.settings.cleanup_interval, self._cleanup)

    def close(self) -> None:
        """Removed from the configuration: timers, health checks and idle connections stop."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self._outlier_timer is not None:
            self._outlier_timer.cancel()
        if self.hc_runner is not None:
            self.hc_runner.stop()
        for h in self.hosts:
            if h.pool is not None:
                h.pool.close()


class ResilienceStats:
    """Circuit-breaker, outlier-detection and health-check stats of one cluster, read only
    when /stats is (``ClusterStats.extra``), under Envoy's names."""

    __slots__ = ("cluster",)

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def values(self) -> Iterator[tuple[str, int, bool]]:
        c = self.cluster
        managers = c.resources.managers
        totals: dict[str, int] = {}
        for rm in managers:
            for name, value in rm.counters():
                totals[name] = totals.get(name, 0) + value
        for name, value in totals.items():
            yield name, value, True
        for rm in managers:
            for name, value in rm.gauges():
                yield name, value, False
        if c.outlier is not None:
            yield from c.outlier.stats.values()
        if c.health_checker is not None:
            yield from c.health_checker.stats.values()
