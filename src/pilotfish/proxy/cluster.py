"""Runtime clusters: hosts, their load balancer and connection pools, DNS refresh."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from dataclasses import dataclass

from . import lb
from .stats import ClusterStats
from .upstream import ConnectionPool, PoolOptions

log = logging.getLogger("pilotfish.proxy.cluster")

STATIC, STRICT_DNS = "STATIC", "STRICT_DNS"


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """One lb_endpoint as configured: an IP (STATIC) or a name to resolve (STRICT_DNS)."""

    address: str
    port: int
    weight: int
    hostname: str


class Host:
    __slots__ = ("address", "port", "weight", "hostname", "active_rq", "pool", "label")

    def __init__(self, address: str, port: int, weight: int, hostname: bytes) -> None:
        self.address = address
        self.port = port
        self.weight = weight
        self.hostname = hostname  # for auto_host_rewrite
        self.active_rq = 0
        self.pool: ConnectionPool | None = None
        self.label = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


@dataclass(slots=True)
class ClusterSettings:
    name: str
    kind: str
    endpoints: tuple[EndpointSpec, ...]
    lb_policy: str
    choice_count: int
    pool: PoolOptions
    dns_refresh_rate: float
    dns_family: int  # socket.AF_INET / AF_INET6 / AF_UNSPEC
    prefer_v6: bool


class Cluster:
    __slots__ = ("settings", "name", "stats", "rng", "hosts", "lb", "_loop", "_refresh", "_closed")

    def __init__(self, settings: ClusterSettings, stats: ClusterStats, rng: random.Random) -> None:
        self.settings = settings
        self.name = settings.name
        self.stats = stats
        self.rng = rng
        self.hosts: tuple[Host, ...] = ()
        self.lb: lb.LoadBalancer = lb.build(settings.lb_policy, (), rng)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._refresh: asyncio.TimerHandle | None = None
        self._closed = False

    def choose_host(self, context: object) -> Host | None:
        return self.lb.choose_host(context)  # type: ignore[return-value]

    async def initialize(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        if self.settings.kind == STATIC:
            self._set_hosts([Host(e.address, e.port, e.weight, e.hostname.encode() or e.address.encode())
                             for e in self.settings.endpoints])
        else:
            await self._resolve()

    def _set_hosts(self, new: list[Host]) -> None:
        """Install a new host snapshot, keeping Host objects (and pools) that did not change."""
        old = {(h.address, h.port, h.weight): h for h in self.hosts}
        hosts = []
        for h in new:
            kept = old.pop((h.address, h.port, h.weight), None)
            if kept is None:
                kept = h
                kept.pool = ConnectionPool(kept, self.settings.pool, self.stats, self._loop)
            hosts.append(kept)
        for gone in old.values():
            if gone.pool is not None:
                gone.pool.close()
        if [id(h) for h in hosts] != [id(h) for h in self.hosts]:
            self.stats.membership_change += 1
        self.hosts = tuple(hosts)
        self.stats.membership_total = self.stats.membership_healthy = len(hosts)
        self.lb = lb.build(self.settings.lb_policy, self.hosts, self.rng,
                           choice_count=self.settings.choice_count)

    async def _resolve(self) -> None:
        loop = self._loop
        assert loop is not None
        resolved: list[Host] = []
        for e in self.settings.endpoints:
            try:
                infos = await loop.getaddrinfo(e.address, e.port, family=self.settings.dns_family,
                                               type=socket.SOCK_STREAM)
            except (OSError, UnicodeError) as exc:
                log.warning("cluster %s: DNS resolution of %s failed: %s", self.name, e.address, exc)
                # Keep what we had for this name rather than dropping it on a transient failure.
                resolved.extend(h for h in self.hosts if h.hostname == e.address.encode())
                continue
            addrs: list[str] = []
            v6 = [i[4][0] for i in infos if i[0] == socket.AF_INET6]
            v4 = [i[4][0] for i in infos if i[0] == socket.AF_INET]
            if self.settings.dns_family == socket.AF_UNSPEC:
                addrs = (v6 or v4) if self.settings.prefer_v6 else (v4 or v6)
            else:
                addrs = v6 + v4
            for a in dict.fromkeys(addrs):
                resolved.append(Host(a, e.port, e.weight, (e.hostname or e.address).encode()))
        self._set_hosts(resolved)
        if not self._closed and self.settings.dns_refresh_rate > 0:
            self._refresh = loop.call_later(self.settings.dns_refresh_rate, self._schedule_resolve)

    def _schedule_resolve(self) -> None:
        if not self._closed and self._loop is not None:
            self._loop.create_task(self._resolve())

    def close(self) -> None:
        self._closed = True
        if self._refresh is not None:
            self._refresh.cancel()
        for h in self.hosts:
            if h.pool is not None:
                h.pool.close()
