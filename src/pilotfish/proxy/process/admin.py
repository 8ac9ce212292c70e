"""The admin server (Envoy's :15000): readiness, stats, clusters, listeners, config_dump, drain, quit.

Output formats are Envoy's (admin_clusters.py, admin_config_dump.py, stats_render.py) so that
istioctl, Kiali, Prometheus and scripts written against Envoy read them unchanged.

With ``--concurrency N`` the admin runs in worker 0; /stats and /stats/prometheus sum the
snapshots of every worker (workers.py), /drain_listeners and /quitquitquit act on all of them:
the worker's group (``WorkerContext``) is handed in, None in a single process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import httptools
import xxhash
from google.protobuf import json_format

from ... import __version__
from ..http.http1_encode import encode_response_head
from ..common.stats import merge_snapshots, render_json, render_prometheus, render_text
from .admin_clusters import clusters_json, clusters_text, listeners_json, listeners_text
from .admin_config_dump import config_dump
from .admin_help import help_text
from .workers import WorkerContext, sibling_snapshots

if TYPE_CHECKING:
    from .server import ProxyServer

log = logging.getLogger("pilotfish.proxy.admin")

_TEXT = b"text/plain; charset=UTF-8"
_JSON = b"application/json"


class AdminServer:
    def __init__(self, proxy: ProxyServer, group: WorkerContext | None = None) -> None:
        self.proxy = proxy
        self.group = group  # the worker group with --concurrency N; None in a single process
        self._server: asyncio.base_events.Server | None = None

    async def start(self, address: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _AdminConnection(self), address, port,
                                                reuse_port=self.group is not None)
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
            if params.get("format") == "json":
                return 200, _JSON, clusters_json(proxy).encode()
            return 200, _TEXT, clusters_text(proxy).encode()
        if path == "/listeners":
            if params.get("format") == "json":
                return 200, _JSON, listeners_json(proxy).encode()
            return 200, _TEXT, listeners_text(proxy).encode()
        if path == "/config_dump":
            status, body = config_dump(proxy, params.get("resource"), params.get("mask"), "include_eds" in params)
            return status, _JSON if status == 200 else _TEXT, body.encode()
        if path == "/drain_listeners":
            if method != b"POST":
                return 405, _TEXT, b"This endpoint requires POST\n"
            if self.group is not None:
                self.group.drain_group()
            else:
                drain_listeners(proxy)
            return 200, _TEXT, b"OK\n"
        if path == "/quitquitquit":
            if method != b"POST":
                return 405, _TEXT, b"This endpoint requires POST\n"
            return 200, _TEXT, b"OK\n", self._quit
        if path == "/help":
            return 200, _TEXT, help_text().encode()
        if path == "/":
            return 200, _TEXT, help_text().encode()
        return 404, _TEXT, ("invalid path. " + help_text()).encode()

    def _quit(self) -> None:
        """Envoy's /quitquitquit: exit now, without a drain period (after the OK is written)."""
        if self.group is not None:
            self.group.stop_group()
        else:
            quit_now(self.proxy)

    def _stats(self, fmt: str, name_filter: Any) -> Any:
        own = self.proxy.stats.snapshot()
        ctx = self.group
        if ctx is None or ctx.count < 2:
            return _render(fmt, self._with_server(own), name_filter, self.proxy.stats.tags)

        async def all_workers() -> tuple[int, bytes, bytes]:
            others = await sibling_snapshots(ctx)
            return _render(fmt, self._with_server(merge_snapshots([own, *others])), name_filter,
                           self.proxy.stats.tags)

        return all_workers()

    def _with_server(self, snap: dict[str, Any]) -> dict[str, Any]:
        """Envoy's ``server.*`` gauges that describe the whole server, computed when read."""
        proxy = self.proxy
        ctx = self.group
        override = proxy.config.bootstrap.stats_server_version_override
        server = dict(snap["server"])
        server.update({
            "uptime": int(proxy.clock() - proxy.started_at),
            "concurrency": ctx.count if ctx is not None else 1,
            "version": override.value if override.value else _VERSION,
            "state": _STATES.get(proxy.state, 0),
            "live": 1 if proxy.state == "LIVE" else 0,
            "parent_connections": 0,
            "hot_restart_epoch": int(proxy.command_line.get("restart_epoch", 0) or 0),
        })
        return {**snap, "server": dict(sorted(server.items()))}

    def server_info(self) -> dict[str, Any]:
        proxy = self.proxy
        uptime = f"{int(proxy.clock() - proxy.started_at)}s"
        return {
            "version": f"pilotfish/{__version__}/HTTP1/RELEASE",
            "state": proxy.state,
            "hot_restart_version": "disabled",
            "command_line_options": proxy.command_line,
            "node": json_format.MessageToDict(proxy.config.bootstrap.node, preserving_proto_field_name=True),
            "uptime_current_epoch": uptime,
            "uptime_all_epochs": uptime,
        }


#: Envoy's server.state values (envoy.admin.v3.ServerInfo.State).
_STATES = {"LIVE": 0, "DRAINING": 1, "PRE_INITIALIZING": 2, "INITIALIZING": 3}
#: server.version: Envoy's is the first 6 hex digits of its source revision as an integer; ours
#: is 24 bits of the xxHash64 of the package version (stats_server_version_override wins; no
#: hashlib: it would map OpenSSL's libcrypto into every proxy, ~1 MB resident).
_VERSION = xxhash.xxh64_intdigest(__version__.encode()) >> 40


def _render(fmt: str, snap: dict[str, Any], name_filter: Any, tags: Any) -> tuple[int, bytes, bytes]:
    if fmt == "prometheus":
        return 200, b"text/plain; version=0.0.4", render_prometheus(snap, name_filter, tags).encode()
    if fmt == "json":
        return 200, _JSON, json.dumps(render_json(snap, name_filter)).encode()
    return 200, _TEXT, render_text(snap, name_filter).encode()


def quit_now(proxy: ProxyServer) -> None:
    """Stop without a drain period: in-flight requests are cut, as Envoy's /quitquitquit."""
    proxy.drain_time = 0.0
    proxy.request_shutdown()


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
        try:
            result = self.admin.handle(self.parser.get_method(), self.url)
        except Exception:  # a bug in one handler must not look like a malformed request
            log.exception("admin %s failed", self.url.decode("latin-1"))
            result = (500, _TEXT, b"internal error\n")
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

    def _reply(self, result: tuple, keep_alive: bool) -> None:
        status, ctype, body, *after = result
        headers = [(b"content-type", ctype), (b"content-length", b"%d" % len(body)),
                   (b"cache-control", b"no-cache, max-age=0"), (b"x-content-type-options", b"nosniff")]
        if not keep_alive:
            headers.append((b"connection", b"close"))
        self.transport.write(encode_response_head(status, headers) + body)  # type: ignore[union-attr]
        if not keep_alive:
            self.transport.close()  # type: ignore[union-attr]
        for then in after:  # e.g. /quitquitquit's exit, once its OK is on the wire
            then()
