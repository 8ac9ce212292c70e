"""Upstream hosts and the per-priority host sets the load balancers read.

A ``Host`` lives as long as its address stays in the cluster: it carries the connection pool
and the active-request count, so an endpoint update that keeps an address keeps its Host.
Health is read by the balancers only when they are (re)built: ``eds_health`` (the
endpoint's configured ``health_status``), ``healthy`` (cleared by outlier detection or active
health checking through HostHealth, which then calls ``Cluster.health_changed()`` so a new
balancer snapshot is built) and ``health_flags``, the HostHealth bits copied at that rebuild
(active-check degraded and immediate-fail exclusion). ``build_levels`` partitions hosts
exactly like Envoy's ``partitionHostList``: healthy, degraded, excluded, per priority and
locality.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from .host_health import (
    ACTIVE_HC_TIMEOUT, DEGRADED_ACTIVE_HC, DEGRADED_EDS_HEALTH, EXCLUDED_VIA_IMMEDIATE_HC_FAIL, FAILED_ACTIVE_HC,
    FAILED_EDS_HEALTH, FAILED_OUTLIER_CHECK, PENDING_ACTIVE_HC, PENDING_DYNAMIC_REMOVAL,
)


# envoy.config.core.v3.HealthStatus
UNKNOWN, HEALTHY, UNHEALTHY, DRAINING, TIMEOUT, DEGRADED = range(6)
HEALTH_NAMES = {UNKNOWN: "UNKNOWN", HEALTHY: "HEALTHY", UNHEALTHY: "UNHEALTHY", DRAINING: "DRAINING",
                TIMEOUT: "TIMEOUT", DEGRADED: "DEGRADED"}

# Coarse health, as Envoy's Host::Health.
IS_HEALTHY, IS_DEGRADED, IS_UNHEALTHY = range(3)

EDS_STATUS_DRAINING = 1 << 9  # Host::HealthFlag after ACTIVE_HC_TIMEOUT; derived from eds_health
_FLAG_NAMES = (
    (FAILED_ACTIVE_HC, "/failed_active_hc"), (FAILED_OUTLIER_CHECK, "/failed_outlier_check"),
    (FAILED_EDS_HEALTH, "/failed_eds_health"), (DEGRADED_ACTIVE_HC, "/degraded_active_hc"),
    (DEGRADED_EDS_HEALTH, "/degraded_eds_health"), (PENDING_DYNAMIC_REMOVAL, "/pending_dynamic_removal"),
    (PENDING_ACTIVE_HC, "/pending_active_hc"), (EXCLUDED_VIA_IMMEDIATE_HC_FAIL, "/excluded_via_immediate_hc_fail"),
    (ACTIVE_HC_TIMEOUT, "/active_hc_timeout"), (EDS_STATUS_DRAINING, "/eds_status_draining"),
)

Locality = tuple[str, str, str]  # (region, zone, sub_zone)


class Host:
    __slots__ = ("address", "port", "weight", "hostname", "active_rq", "pool", "label", "priority",
                 "locality", "locality_weight", "eds_health", "healthy", "hash_key", "used",
                 "health_flags", "hc_port", "hc_hostname",
                 # Envoy's per-host stats (/clusters): counted on the request path, a += 1 each
                 "rq_total", "rq_success", "rq_error", "rq_timeout", "cx_total", "cx_connect_fail")

    def __init__(self, address: str, port: int, weight: int = 1, hostname: bytes = b"", *,
                 priority: int = 0, locality: Locality = ("", "", ""), locality_weight: int = 0,
                 eds_health: int = UNKNOWN, hash_key: str = "", hc_port: int = 0,
                 hc_hostname: bytes = b"") -> None:
        self.address = address
        self.port = port
        self.weight = weight
        self.hostname = hostname  # for auto_host_rewrite
        self.active_rq = 0
        self.pool: Any = None  # its pool.ConnectionPool, made on first use (the pool holds the host)
        self.label = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        self.priority = priority
        self.locality = locality
        self.locality_weight = locality_weight
        self.eds_health = eds_health
        self.healthy = True  # false while ejected by outlier detection or failing active checks
        self.hash_key = hash_key or self.label  # what RING_HASH/MAGLEV hash (Envoy's hashKey)
        self.used = False  # ORIGINAL_DST: chosen since the last cleanup
        self.health_flags = 0  # HostHealth's bits as of the last balancer rebuild
        self.hc_port = hc_port  # health_check_config.port_value; 0: the host's port
        self.hc_hostname = hc_hostname  # health_check_config.hostname: the probes' Host header
        self.rq_total = self.rq_success = self.rq_error = self.rq_timeout = 0
        self.cx_total = self.cx_connect_fail = 0

    def set_address(self, address: str) -> None:
        """LOGICAL_DNS: new connections go to the newly resolved address; pooled ones stay."""
        self.address = address
        self.label = f"[{address}]:{self.port}" if ":" in address else f"{address}:{self.port}"

    @property
    def health(self) -> int:
        """Envoy's coarseHealth(): any failure flag wins, then degraded, else healthy."""
        eds = self.eds_health
        if not self.healthy or eds == UNHEALTHY or eds == TIMEOUT or eds == DRAINING:
            return IS_UNHEALTHY
        return IS_DEGRADED if eds == DEGRADED or self.health_flags & DEGRADED_ACTIVE_HC else IS_HEALTHY

    @property
    def excluded(self) -> bool:
        """EDS DRAINING hosts and hosts whose health check answered
        x-envoy-immediate-health-check-fail are excluded: not chosen and not counted in a
        level's size."""
        return self.eds_health == DRAINING or bool(self.health_flags & EXCLUDED_VIA_IMMEDIATE_HC_FAIL)

    def __repr__(self) -> str:
        return f"Host({self.label}, w={self.weight}, p={self.priority})"


def eds_flags(eds_health: int) -> int:
    """The Host::HealthFlag bits Envoy derives from an endpoint's health_status."""
    if eds_health == UNHEALTHY or eds_health == TIMEOUT:
        return FAILED_EDS_HEALTH
    if eds_health == DRAINING:
        return EDS_STATUS_DRAINING
    return DEGRADED_EDS_HEALTH if eds_health == DEGRADED else 0


def health_flags_string(flags: int) -> str:
    """Envoy's HostUtility::healthFlagsToString: ``healthy`` or ``/failed_active_hc/…``."""
    return "".join(name for bit, name in _FLAG_NAMES if flags & bit) or "healthy"


@dataclass(frozen=True, slots=True)
class LocalityHosts:
    locality: Locality
    weight: int  # the locality's load_balancing_weight, 0 when unset
    hosts: tuple[Host, ...]
    healthy: tuple[Host, ...]
    degraded: tuple[Host, ...]
    excluded: tuple[Host, ...]


@dataclass(frozen=True, slots=True)
class Level:
    """One priority's host set (Envoy's HostSet)."""

    priority: int
    hosts: tuple[Host, ...]
    healthy: tuple[Host, ...]
    degraded: tuple[Host, ...]
    excluded: tuple[Host, ...]
    localities: tuple[LocalityHosts, ...]  # ordered by (region, zone, sub_zone), as Envoy's LocalityLess


def _partition(hosts: Sequence[Host]) -> tuple[tuple[Host, ...], tuple[Host, ...], tuple[Host, ...]]:
    healthy, degraded, excluded = [], [], []
    for h in hosts:
        state = h.health
        if state == IS_HEALTHY:
            healthy.append(h)
        elif state == IS_DEGRADED:
            degraded.append(h)
        if h.excluded:
            excluded.append(h)
    return tuple(healthy), tuple(degraded), tuple(excluded)


def build_level(priority: int, hosts: Sequence[Host]) -> Level:
    by_locality: dict[Locality, list[Host]] = {}
    weights: dict[Locality, int] = {}
    for h in hosts:
        by_locality.setdefault(h.locality, []).append(h)
        weights[h.locality] = h.locality_weight
    localities = []
    for loc in sorted(by_locality):
        members = by_locality[loc]
        localities.append(LocalityHosts(loc, weights[loc], tuple(members), *_partition(members)))
    return Level(priority, tuple(hosts), *_partition(hosts), tuple(localities))


def build_levels(hosts: Iterable[Host]) -> tuple[Level, ...]:
    """Priorities 0..max, each with its hosts in configuration order; gaps are empty levels."""
    by_priority: dict[int, list[Host]] = {}
    for h in hosts:
        by_priority.setdefault(h.priority, []).append(h)
    if not by_priority:
        return (build_level(0, ()),)
    return tuple(build_level(p, by_priority.get(p, ())) for p in range(max(by_priority) + 1))
