"""The control-plane process: a config directory and the registry in, Envoy xDS out.

Istiod keeps one immutable PushContext. A change (a file edited, a resource applied through the
API, a workload connecting or leaving) is debounced, a new PushContext is built from the config
in force and the registry, and the ADS server sends every connected proxy what changed for it.
Proxies that connect get the whole config for themselves from the current PushContext.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.models.kube import MeshConfig, default_mesh_config
from ..pilot.generate import generate
from ..pilot.proxy import Proxy, proxy_from_envoy_node
from ..pilot.push_context import PushContext
from ..registry.build import build_registry
from ..registry.model import Workload
from ..xds.debounce import Debouncer
from ..xds.server import AdsServer
from ..xds.type_urls import LISTENER
from .api import IstiodApi
from .change_scope import REGISTRY_KINDS, edited_in_place, reaching, touches_listeners, types_for
from .config_dir import ConfigDir
from ..http_server import serve_http

log = logging.getLogger("pilotfish.istiod")

#: Directory (inside the config directory) where resources applied through the API are kept.
APPLIED_DIR = "applied"


@dataclass(frozen=True)
class IstiodOptions:
    config_dir: Path
    mesh: MeshConfig = default_mesh_config()
    xds_host: str = "127.0.0.1"
    xds_port: int = 15010
    http_host: str = "127.0.0.1"
    http_port: int = 15014
    token: str | None = None  # required as a bearer token by the HTTP API when set
    debounce_quiet: float = 0.1  # Istio's PILOT_DEBOUNCE_AFTER
    debounce_max: float = 10.0  # Istio's PILOT_DEBOUNCE_MAX
    watch: bool = True
    resync_interval: float = 30.0  # seconds between looks over the directory besides the watcher


class Istiod:
    """Owns the config directory, the registry, the push context and the ADS server."""

    def __init__(self, options: IstiodOptions) -> None:
        self.options = options
        self.config = ConfigDir(Path(options.config_dir))
        self.connected: dict[str, Workload] = {}  # auto-registered workloads by node id
        self.push_context = PushContext(mesh=options.mesh)
        self.version = 0
        self.ads = AdsServer(self, control_plane="istiod", on_disconnect=lambda node: self.disconnected(node.id))
        self.xds_port = 0
        self.http_port = 0
        self.ready = False
        self.token = options.token
        self._debouncer: Debouncer | None = None
        self._http: asyncio.Server | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._resync_task: asyncio.Task[None] | None = None
        self._proxies: dict[str, Proxy] = {}
        self._nodes: dict[str, Any] = {}  # the Node message each connected proxy sent
        self._stopped = False
        self._pending_types: set[str] | None = set()  # xDS types the next push regenerates (None: all)
        self._pending_kinds: set[str] | None = set()  # config kinds changed since the last push (None: unknown)
        self._pending_objects: list[Any] | None = []  # the objects changed (both versions), when known

    # ---------------------------------------------------------------- life

    async def start(self) -> None:
        (self.config.root / APPLIED_DIR).mkdir(parents=True, exist_ok=True)
        for problem in self.config.load_all():
            log.error("config file %s refused: %s", problem.file, problem)
        self._take_kinds()  # the first load is not a change to push
        self._pending_objects = []
        self._rebuild()
        self.ads.push(str(self.version))  # (no one is connected yet: it sets the version served)
        self._debouncer = Debouncer(self._push_now, quiet=self.options.debounce_quiet,
                                    max_delay=self.options.debounce_max)
        self.xds_port = await self.ads.start(self.options.xds_host, self.options.xds_port)
        api = IstiodApi(self, self.config.root / APPLIED_DIR)
        self._http = await serve_http(api.handle, self.options.http_host, self.options.http_port)
        self.http_port = self._http.sockets[0].getsockname()[1]
        if self.options.watch:
            self._watch_task = asyncio.get_running_loop().create_task(self._watch())
            self._resync_task = asyncio.get_running_loop().create_task(self._resync())
        self.ready = True
        log.info("istiod serving xDS on %s:%d and its API on %s:%d (config %s, %d resources)",
                 self.options.xds_host, self.xds_port, self.options.http_host, self.http_port,
                 self.config.root, len(self.push_context.resources))

    async def stop(self) -> None:
        """Stop serving (twice is harmless)."""
        if self._stopped:
            return
        self._stopped = True
        self.ready = False
        for task in (self._watch_task, self._resync_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._debouncer is not None:
            self._debouncer.close()
        if self._http is not None:
            self._http.close()
            await self._http.wait_closed()
        await self.ads.stop()

    # ---------------------------------------------------------------- changes

    async def _resync(self) -> None:
        """Look over the directory soon after the watcher starts (a change made between the
        first load and the watcher's start is not reported to it), then every
        ``resync_interval`` seconds, as Istio's informers resync."""
        await asyncio.sleep(1.0)
        while True:
            if self.config.rescan():
                self.changed("resync", self._take_kinds())
            await asyncio.sleep(self.options.resync_interval)

    async def _watch(self) -> None:
        from watchfiles import awatch

        async for changes in awatch(self.config.root, debounce=50, step=20):
            paths = {path for _, path in changes}
            if self.config.reload(paths):
                self.changed(f"files: {', '.join(sorted(Path(p).name for p in paths))}", self._take_kinds())

    def config_changed(self, paths: set[str]) -> bool:
        """Re-read ``paths`` now (the API wrote them); a push follows when anything changed."""
        changed = self.config.reload(paths)
        if changed:
            self.changed("api", self._take_kinds())
        return changed

    def _take_kinds(self) -> set[str]:
        kinds, self.config.changed_kinds = self.config.changed_kinds, set()
        if self._pending_objects is not None:
            self._pending_objects.extend(self.config.changed)
        self.config.changed = []
        return kinds

    def changed(self, why: str, kinds: set[str] | None = None) -> None:
        """Schedule a push; ``kinds``: the config kinds that changed (None: the registry or
        anything else that may change every type)."""
        log.info("config change (%s): push scheduled", why)
        if kinds is None:
            self._pending_types = None
            self._pending_kinds = None
            self._pending_objects = None
        else:
            if self._pending_types is not None:
                self._pending_types |= types_for(kinds)
            if self._pending_kinds is not None:
                self._pending_kinds |= kinds
        if self._debouncer is not None:
            self._debouncer.event()

    def _rebuild(self, kinds: set[str] | None = None, edited: tuple[tuple[Any, Any], ...] = (),
                 prior_routes: dict[object, Any] | None = None) -> None:
        """A new PushContext from the config in force. ``kinds``: what changed (None: unknown).
        The registry is built again unless the change cannot touch it (a VirtualService edit
        leaves 10,000 endpoints as they were)."""
        resources = self.config.resources()
        if kinds is not None and not kinds & REGISTRY_KINDS:
            registry = self.push_context.registry
        else:
            registry = build_registry(resources, connected=list(self.connected.values()))
        self.version += 1
        self.push_context = PushContext(resources=resources, registry=registry, mesh=self.options.mesh,
                                        version=str(self.version), edited=edited, prior_routes=prior_routes)

    def _push_now(self) -> None:
        types, self._pending_types = self._pending_types, set()
        kinds, self._pending_kinds = self._pending_kinds, set()
        objects, self._pending_objects = self._pending_objects, []
        vs_only = objects if kinds == {"VirtualService"} else None  # (objects: None when unknown)
        edited = edited_in_place(vs_only) if vs_only is not None else ()
        prior = None
        if edited:  # the earlier push's route configurations, to patch
            prior = {k: v for k, v in self.push_context.generated.items() if isinstance(k, tuple) and k[0] == "rds"}
            asyncio.get_running_loop().create_task(self._forget(prior))
        self._rebuild(kinds, edited=edited, prior_routes=prior)
        affects = None
        if vs_only is not None:
            affects = self._seeing(vs_only)
            if types is not None and not touches_listeners(vs_only):
                types = types - {LISTENER}
        self.ads.push(str(self.version), affects=affects, types=types)

    async def _forget(self, prior: dict[object, Any]) -> None:
        """Let the earlier push's route configurations go once this push is handed out."""
        await self.ads.flush()
        prior.clear()

    def _seeing(self, changed: list[Any]) -> Callable[[Any], bool]:
        return reaching(self.push_context, changed, self.proxy_for)

    # ---------------------------------------------------------------- the ADS server's generator

    def generate(self, node: Any, type_url: str, names: frozenset[str]) -> Mapping[str, Any]:
        proxy = self.proxy_for(node)
        return generate(self.push_context, proxy, type_url, names)

    def proxy_for(self, node: Any) -> Proxy:
        """The Proxy a node describes (cached by node id); a new sidecar registers its workload.
        (A gateway does not: its pod says where it is, and registering each gateway as it
        connects would rebuild the push context and push to everyone each time.)"""
        proxy = self._proxies.get(node.id)
        if proxy is None:
            proxy = proxy_from_envoy_node(node)  # (ProxyIdError, a ValueError: the stream is refused)
            self._proxies[node.id] = proxy
            self._nodes[node.id] = node
            if not proxy.is_gateway and proxy.ip and node.id not in self.connected:
                self.connected[node.id] = Workload(
                    name=proxy.workload_name, namespace=proxy.namespace, address=proxy.ip,
                    labels=dict(proxy.labels), service_account=proxy.service_account, locality=proxy.locality)
                if not self._known_address(proxy.ip):
                    # A new instance: its own inbound config depends on it (translate for it with
                    # it registered), and other proxies' endpoints change.
                    self._rebuild()
                    self.changed(f"workload {proxy.id} connected")
        return proxy

    def _known_address(self, ip: str) -> bool:
        registry = self.push_context.registry
        return any(w.address == ip for w in registry.workloads)

    def disconnected(self, node_id: str) -> None:
        """A proxy's stream ended: its auto-registered workload leaves the registry."""
        self._proxies.pop(node_id, None)
        self._nodes.pop(node_id, None)
        if self.connected.pop(node_id, None) is not None:
            self.changed(f"workload {node_id} disconnected")

    # ---------------------------------------------------------------- views

    def known_proxy(self, node_id: str) -> Proxy | None:
        return self._proxies.get(node_id)

    def node_of(self, proxy_id: str) -> Any:
        """A connected proxy's Node by full node id or by its ``pod.namespace`` part."""
        if proxy_id in self._nodes:
            return self._nodes[proxy_id]
        for node_id, node in self._nodes.items():
            parts = node_id.split("~")
            if len(parts) == 4 and parts[2] == proxy_id:
                return node
        return None

    def metrics(self) -> str:
        """Prometheus text: the ADS server's metrics (Istio's names) and istiod's own gauges."""
        push = self.push_context
        lines = [self.ads.stats.render().rstrip("\n")]
        lines += [
            "# TYPE pilot_services gauge", f"pilot_services {len(push.registry.services)}",
            "# TYPE pilot_virt_services gauge", f"pilot_virt_services {len(push.of_kind('VirtualService'))}",
            "# TYPE pilot_destrules gauge", f"pilot_destrules {len(push.of_kind('DestinationRule'))}",
            "# TYPE pilotfish_config_files_refused gauge",
            f"pilotfish_config_files_refused {len(self.config.problems())}",
        ]
        return "\n".join(lines) + "\n"

