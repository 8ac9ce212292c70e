"""The admin server (Envoy's :15000): readiness, stats, clusters, listeners, config_dump, drain, quit.

With ``--concurrency N`` the admin runs in worker 0; /stats and /stats/prometheus sum the
snapshots of every worker (workers.py), /drain_listeners and /quitquitquit act on all of them.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import httptools
from google.protobuf import any_pb2, json_format

from .. import __version__
from . import workers
from .http1 import encode_response_head
from .stats import merge_snapshots, render_prometheus, render_text
from .support import connection_managers

if TYPE_CHECKING:
    from .server import ProxyServer

_TEXT = b"text/plain; charset=UTF-8"
_JSON = b"application/json"


class AdminServer:
    def __init__(self, proxy: ProxyServer) -> None:
        self.proxy = proxy
        self._server: asyncio.base_events.Server | None = None

    async def start(self, address: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _AdminConnection(self), address, port,
                                                reuse_port=workers.current is not None)
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    # ---- handlers: (method, path) → (status, content type, body), or an awaitable of it ------
    def handle(self, method: bytes, target: bytes) -> Any:
        path, _, query = target.decode("latin-1").partition("?")
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        proxy = self.proxy
        if path == "/ready":
            live = proxy.state == "LIVE"
            return (200 if live else 503), _TEXT, f"{proxy.state}\n".encode()
        if path == "/healthz":
            live = proxy.state == "LIVE"
            return (200 if live else 503), _TEXT, b"OK\n" if live else b"DRAINING\n"
        if path == "/server_info":
            return 200, _JSON, json.dumps(self.server_info(), indent=2).encode()
        if path in ("/stats", "/stats/prometheus"):
            try:
                name_filter = re.compile(params["filter"]) if params.get("filter") else None
            except re.error as exc:
                return 400, _TEXT, f"Invalid re2 regex: {exc}\n".encode()
            fmt = "prometheus" if path == "/stats/prometheus" else params.get("format", "text")
            return self._stats(fmt, name_filter)
        if path == "/clusters":
            return 200, _TEXT, self.clusters().encode()
        if path == "/listeners":
            lines = [f"{lc.name}::{lc.address}:{proxy.listener_ports.get(lc.name, lc.port)}"
                     for lc in proxy.config.listeners]
            return 200, _TEXT, ("\n".join(lines) + "\n").encode()
        if path == "/config_dump":
            return 200, _JSON, json.dumps(self.config_dump(), indent=2).encode()
        if path == "/drain_listeners":
            if method != b"POST":
                return 405, _TEXT, b"This endpoint requires POST\n"
            if not workers.request_group_drain():
                drain_listeners(proxy)
            return 200, _TEXT, b"OK\n"
        if path == "/quitquitquit":
            if method != b"POST":
                return 405, _TEXT, b"This endpoint requires POST\n"
            if not workers.request_group_stop():
                asyncio.get_running_loop().call_soon(proxy.request_shutdown)
            return 200, _TEXT, b"OK\n"
        if path == "/":
            return 200, _TEXT, "\n".join(_ENDPOINTS).encode() + b"\n"
        return 404, _TEXT, ("invalid path. admin commands are:\n" + " ".join(_ENDPOINTS) + "\n").encode()

    def _stats(self, fmt: str, name_filter: Any) -> Any:
        own = self.proxy.stats.snapshot()
        ctx = workers.current
        if ctx is None or ctx.count < 2:
            return _render(fmt, own, name_filter)

        async def all_workers() -> tuple[int, bytes, bytes]:
            others = await workers.sibling_snapshots(ctx)
            return _render(fmt, merge_snapshots([own, *others]), name_filter)

        return all_workers()

    def server_info(self) -> dict[str, Any]:
        proxy = self.proxy
        uptime = f"{int(time.time() - proxy.started_at)}s"
        return {
            "version": f"pilotfish/{__version__}/HTTP1/RELEASE",
            "state": proxy.state,
            "hot_restart_version": "disabled",
            "command_line_options": proxy.command_line,
            "node": json_format.MessageToDict(proxy.config.bootstrap.node, preserving_proto_field_name=True),
            "uptime_current_epoch": uptime,
            "uptime_all_epochs": uptime,
        }

    def clusters(self) -> str:
        lines = []
        for name, cluster in self.proxy.config.clusters.items():
            lines.append(f"{name}::observability_name::{name}")
            lines += cluster.admin_summary()  # outlier averages and circuit-breaker limits
            for h in cluster.hosts:
                p = f"{name}::{h.label}"
                cx = h.pool.cx_active if h.pool is not None else 0
                lines += [f"{p}::cx_active::{cx}", f"{p}::rq_active::{h.active_rq}",
                          f"{p}::health_flags::{cluster.health_flags(h)}", f"{p}::weight::{h.weight}",
                          f"{p}::hostname::{h.hostname.decode()}"]
        return "\n".join(lines) + "\n"

    def config_dump(self) -> dict[str, Any]:
        """Envoy's ConfigDump shape, built from the parsed (not compiled) config."""
        from envoy.admin.v3 import config_dump_pb2, config_dump_shared_pb2

        bootstrap = self.proxy.config.bootstrap
        dump = config_dump_pb2.ConfigDump()

        def add(msg: Any) -> None:
            a = any_pb2.Any()
            a.Pack(msg)
            dump.configs.append(a)

        b = config_dump_pb2.BootstrapConfigDump()
        b.bootstrap.CopyFrom(bootstrap)
        b.last_updated.GetCurrentTime()
        add(b)
        clusters = config_dump_shared_pb2.ClustersConfigDump()
        for c in bootstrap.static_resources.clusters:
            sc = clusters.static_clusters.add()
            sc.cluster.Pack(c)
            sc.last_updated.GetCurrentTime()
        add(clusters)
        listeners = config_dump_shared_pb2.ListenersConfigDump()
        routes = config_dump_shared_pb2.RoutesConfigDump()
        for lst in bootstrap.static_resources.listeners:
            sl = listeners.static_listeners.add()
            sl.listener.Pack(lst)
            sl.last_updated.GetCurrentTime()
            for _, hcm in connection_managers([lst]):
                if hcm.HasField("route_config"):
                    sr = routes.static_route_configs.add()
                    sr.route_config.Pack(hcm.route_config)
                    sr.last_updated.GetCurrentTime()
        add(listeners)
        add(routes)
        from .xds.config_dump import add_dynamic

        add_dynamic(self.proxy.config, dump)
        return json_format.MessageToDict(dump, preserving_proto_field_name=True)


_ENDPOINTS = ("/ready", "/healthz", "/server_info", "/stats", "/stats?format=json", "/stats/prometheus",
              "/clusters", "/listeners", "/config_dump", "/drain_listeners", "/quitquitquit")


def _render(fmt: str, snap: dict[str, Any], name_filter: Any) -> tuple[int, bytes, bytes]:
    if fmt == "prometheus":
        return 200, b"text/plain; version=0.0.4", render_prometheus(snap, name_filter).encode()
    if fmt == "json":
        stats = []
        for line in render_text(snap, name_filter).splitlines():
            name, _, value = line.partition(": ")
            stats.append({"name": name, "value": int(value)} if value.lstrip("-").isdigit()
                         else {"name": name, "histogram": value})
        return 200, _JSON, json.dumps({"stats": stats}).encode()
    return 200, _TEXT, render_text(snap, name_filter).encode()


def drain_listeners(proxy: ProxyServer) -> None:
    """Envoy's /drain_listeners: stop accepting; in-flight requests finish, then connections close.

    /ready and /healthz answer 503 from now on, so a load balancer stops sending traffic.
    """
    proxy.state = "DRAINING"
    proxy.stats.server["live"] = 0
    listeners = getattr(proxy, "_listeners", None)
    if listeners is None:  # one connection set shared by every listener
        for server in getattr(proxy, "_servers", ()):
            server.close()
        sets = [proxy._shared] if getattr(proxy, "_shared", None) is not None else []
    else:
        sets = []
        for active in list(listeners.values()):
            if active.server is not None:
                active.server.close()
            sets.append(active.conns)
    for conns in sets:
        conns.draining = True
        for conn in list(conns.connections):
            conn.drain()


class _AdminConnection(asyncio.Protocol):
    def __init__(self, admin: AdminServer) -> None:
        self.admin = admin
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.write(encode_response_head(400, [(b"content-length", b"0"), (b"connection", b"close")]))  # type: ignore[union-attr]
            self.transport.close()  # type: ignore[union-attr]

    def on_message_begin(self) -> None:
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_message_complete(self) -> None:
        keep_alive = self.parser.should_keep_alive()
        result = self.admin.handle(self.parser.get_method(), self.url)
        if isinstance(result, Awaitable):
            self.transport.pause_reading()  # type: ignore[union-attr]
            task = asyncio.get_running_loop().create_task(result)  # type: ignore[arg-type]
            task.add_done_callback(lambda t: self._reply_later(t, keep_alive))
            return
        self._reply(result, keep_alive)

    def _reply_later(self, task: asyncio.Task, keep_alive: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if task.cancelled() or task.exception() is not None:
            result = (500, _TEXT, b"stats unavailable\n")
        else:
            result = task.result()
        self._reply(result, keep_alive)
        if keep_alive:
            self.transport.resume_reading()

    def _reply(self, result: tuple[int, bytes, bytes], keep_alive: bool) -> None:
        status, ctype, body = result
        headers = [(b"content-type", ctype), (b"content-length", b"%d" % len(body)),
                   (b"cache-control", b"no-cache, max-age=0"), (b"x-content-type-options", b"nosniff")]
        if not keep_alive:
            headers.append((b"connection", b"close"))
        self.transport.write(encode_response_head(status, headers) + body)  # type: ignore[union-attr]
        if not keep_alive:
            self.transport.close()  # type: ignore[union-attr]
