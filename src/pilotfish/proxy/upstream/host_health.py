"""Envoy's per-host health flags, shared by outlier detection and active health checking.

Both write health; the load balancers read one field, ``Host.healthy`` (host_set.py). This
registry keeps Envoy's flag bits per host and derives ``healthy`` from them, so an ejection
and a failing health check never overwrite each other: a host is healthy only when neither
FAILED_OUTLIER_CHECK nor FAILED_ACTIVE_HC is set. ``on_change`` (the cluster's
``health_changed``) runs after any change that alters ``healthy`` so a new balancer is built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

# Host::HealthFlag bits
FAILED_ACTIVE_HC = 1 << 0
FAILED_OUTLIER_CHECK = 1 << 1
FAILED_EDS_HEALTH = 1 << 2
DEGRADED_ACTIVE_HC = 1 << 3
DEGRADED_EDS_HEALTH = 1 << 4
PENDING_DYNAMIC_REMOVAL = 1 << 5
PENDING_ACTIVE_HC = 1 << 6
EXCLUDED_VIA_IMMEDIATE_HC_FAIL = 1 << 7
ACTIVE_HC_TIMEOUT = 1 << 8

_UNHEALTHY = FAILED_ACTIVE_HC | FAILED_OUTLIER_CHECK


class HealthHost(Protocol):
    """What this needs of a host: the field the balancers read."""

    healthy: bool


class HostHealth:
    __slots__ = ("flags", "on_change")

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self.flags: dict[HealthHost, int] = {}
        self.on_change = on_change

    def get(self, host: HealthHost, flag: int) -> bool:
        return bool(self.flags.get(host, 0) & flag)

    def set(self, host: HealthHost, flag: int, notify: bool = True) -> None:
        self._update(host, self.flags.get(host, 0) | flag, notify)

    def clear(self, host: HealthHost, flag: int, notify: bool = True) -> None:
        self._update(host, self.flags.get(host, 0) & ~flag, notify)

    def forget(self, host: HealthHost) -> None:
        self.flags.pop(host, None)

    def degraded(self, host: HealthHost) -> bool:
        """Active health checking saw x-envoy-degraded (the balancers should treat it as
        DEGRADED; host_set reads EDS health only today)."""
        return bool(self.flags.get(host, 0) & DEGRADED_ACTIVE_HC)

    def _update(self, host: HealthHost, flags: int, notify: bool) -> None:
        if flags:
            self.flags[host] = flags
        else:
            self.flags.pop(host, None)
        healthy = not flags & _UNHEALTHY
        if host.healthy != healthy:
            host.healthy = healthy
            if notify and self.on_change is not None:
                self.on_change()
