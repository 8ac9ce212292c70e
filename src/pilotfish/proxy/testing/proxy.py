"""A compiled listener's connections on fake transports and a manual clock, and bootstrap builders."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

from ..common.response_flags import flags_string
from ..compile import compile_bootstrap
from ..compile.bootstrap import Compiled
from ..compile.bootstrap_file import parse_bootstrap
from ..http.config import ListenerConfig
from ..http.downstream import ConnectionSet, DownstreamConnection
from ..http.upstream_connection import UpstreamConnection
from ..upstream.cluster import Cluster
from .manual_loop import ManualLoop, run_sync
from .transport import FakeTransport

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}


# ---- bootstrap builders ----------------------------------------------------------------
def static_cluster(name: str, *ports: int, address: str = "127.0.0.1", **extra: Any) -> dict[str, Any]:
    """A STATIC cluster with one endpoint per port (no socket is ever opened to them here)."""
    eps = [{"endpoint": {"address": {"socket_address": {"address": address, "port_value": p}}}} for p in ports]
    return {"name": name, "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": eps}]}, **extra}


def bootstrap(routes: list[dict[str, Any]], clusters: Iterable[dict[str, Any]] = (),
              http_filters: list[dict[str, Any]] | None = None, **hcm: Any) -> dict[str, Any]:
    """One listener ("main") whose connection manager has ``routes`` in one virtual host for
    every domain, ``http_filters`` before the router, and ``hcm``'s other fields."""
    return {
        "node": {"id": "sidecar~127.0.0.1~test.default~default.svc.cluster.local", "cluster": "test"},
        "static_resources": {
            "listeners": [{
                "name": "main", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {"@type": HCM, "stat_prefix": "ingress",
                                     "route_config": {"virtual_hosts": [
                                         {"name": "all", "domains": ["*"], "routes": routes}]},
                                     "http_filters": [*(http_filters or []), ROUTER], **hcm},
                }]}],
            }],
            "clusters": list(clusters),
        },
    }


def compile_config(doc: dict[str, Any], seed: int = 1) -> Compiled:
    """``doc`` parsed and compiled as the process does at startup."""
    loaded = parse_bootstrap(doc)
    return compile_bootstrap(loaded.message, random.Random(seed), loaded.warnings)


# ---- the proxy and its ends --------------------------------------------------------------
class Proxy:
    """A compiled listener's connections on a ManualLoop. Every stream its connection manager
    makes is kept in ``streams`` (to read response flags and timings)."""

    def __init__(self, doc: dict[str, Any], loop: ManualLoop | None = None, seed: int = 1,
                 listener: str | None = None) -> None:
        self.loop = loop or ManualLoop()
        self.compiled = compile_config(doc, seed)
        runtime = self.compiled.runtime
        self.listener: ListenerConfig = next(lc for lc in runtime.listeners
                                             if listener is None or lc.name == listener)
        self.clusters: dict[str, Cluster] = runtime.clusters
        for cluster in self.clusters.values():
            run_sync(cluster.initialize(self.loop))  # type: ignore[arg-type]
        self.shared = ConnectionSet(self.loop, random.Random(seed))  # type: ignore[arg-type]
        self.streams: list[Any] = []
        self.upstreams: list[FakeUpstream] = []  # every upstream connection made, in order
        self.refused: set[tuple[str, int]] = set()  # (address, port) of hosts that refuse connections
        self.loop.connector = self._connect
        hcm = self.listener.hcm
        make = hcm.new_stream

        def recorded(*args: Any) -> Any:
            stream = make(*args)
            self.streams.append(stream)
            return stream

        hcm.new_stream = recorded

    @property
    def stats(self) -> Any:
        """The connection manager's HttpStats."""
        return self.listener.hcm.stats

    def flags(self, i: int = -1) -> str:
        """The response flags of the ``i``-th stream, as the access log prints them."""
        return flags_string(self.streams[i].flags)

    def connect(self, peer: tuple[str, int] = ("10.0.0.1", 40000)) -> Client:
        """A client connection, accepted."""
        transport = FakeTransport(self.loop, peername=peer)
        conn = DownstreamConnection(self.listener, self.shared)
        transport.set_protocol(conn)
        conn.connection_made(transport)
        return Client(self.loop, conn, transport)

    def upstream(self, cluster: str, n: int = 1, host: int = 0) -> list[FakeUpstream]:
        """``n`` connected fake upstream connections, idle in the pool of the cluster's ``host``-th
        host: the next streams sent there take them (the first one first)."""
        pool = self.clusters[cluster].hosts[host].pool
        ups = [FakeUpstream.connect(pool, self.loop) for _ in range(n)]
        self.upstreams += ups
        for up in reversed(ups):
            pool.release(up.conn)
        return ups

    def _connect(self, factory: Callable[[], Any], host: Any, port: Any) -> tuple[FakeTransport, Any]:
        """The pool's connect (through ManualLoop.create_connection): a FakeUpstream."""
        if (host, port) in self.refused:
            raise ConnectionRefusedError(111, "Connection refused")
        up = FakeUpstream.open(factory(), (host, port), self.loop)
        self.upstreams.append(up)
        return up.transport, up.conn


class Client:
    """The client's end of a DownstreamConnection."""

    def __init__(self, loop: ManualLoop, conn: DownstreamConnection, transport: FakeTransport) -> None:
        self.loop = loop
        self.conn = conn
        self.transport = transport

    def send(self, data: bytes) -> None:
        """Bytes from the client, then the loop's round (the batched writes go out)."""
        self.conn.data_received(data)
        self.loop.run_ready()

    def received(self) -> bytes:
        """What the proxy wrote to the client since the last call."""
        self.loop.run_ready()
        return self.transport.take()

    def reset(self) -> None:
        """The client goes away (its connection is lost)."""
        self.transport.lose(ConnectionResetError())
        self.loop.run_ready()

    @property
    def closed(self) -> bool:
        return self.transport.closed


class FakeUpstream:
    """One upstream connection on a FakeTransport: read what the proxy sent (``received``),
    answer (``respond``) or go away (``reset``)."""

    def __init__(self, conn: UpstreamConnection, transport: FakeTransport, loop: ManualLoop) -> None:
        self.conn = conn
        self.transport = transport
        self.loop = loop

    @classmethod
    def open(cls, conn: Any, peer: tuple[str, int], loop: ManualLoop) -> FakeUpstream:
        """``conn`` (a protocol) connected to a FakeTransport whose peer is ``peer``."""
        transport = FakeTransport(loop, peername=peer, side="upstream")
        transport.set_protocol(conn)
        conn.connection_made(transport)
        return cls(conn, transport, loop)

    @classmethod
    def connect(cls, pool: Any, loop: ManualLoop) -> FakeUpstream:
        """A connection of ``pool``'s connection class, connected (not yet in the pool)."""
        make = pool.options.connection or UpstreamConnection
        return cls.open(make(pool), (pool.host.address, pool.host.port), loop)

    def received(self) -> bytes:
        """What the proxy wrote to this upstream since the last call."""
        self.loop.run_ready()
        return self.transport.take()

    def respond(self, data: bytes) -> None:
        """Bytes from the upstream, then the loop's round."""
        self.conn.data_received(data)
        self.loop.run_ready()

    def reset(self) -> None:
        """The upstream closes the connection."""
        self.transport.lose(ConnectionResetError())
        self.loop.run_ready()


def attach_upstream(stream: Any, loop: ManualLoop) -> FakeUpstream:
    """Give a routed ``stream`` (it has a host) a fresh fake upstream connection, as the pool
    does once a connect completes; its request head and any body kept meanwhile are sent."""
    up = FakeUpstream.connect(stream.host.pool, loop)
    up.conn.requests = 1
    stream.on_upstream_ready(up.conn, False)
    loop.run_ready()
    return up
