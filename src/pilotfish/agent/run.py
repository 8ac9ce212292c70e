"""One agent's life: write the bootstrap, start the proxy, hold the app until the proxy is ready
(Istio's holdApplicationUntilProxyStarts), keep both running, answer readiness and merged
metrics, and stop in order — the app first, then the proxy, which drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from pathlib import Path

from ..http_server import Request, Response, serve_http
from .bootstrap import bootstrap
from .child import Child, child_env
from .probe import http_get, tcp_open
from .relay import relay_ports
from .spec import NO_SIDECAR, SIDECAR, AgentSpec

log = logging.getLogger("pilotfish.agent")

PROXY_ARGV = [sys.executable, "-c", "from pilotfish.cli.main import main; main()", "proxy"]
# Variables of the agent's own environment an app must not inherit: they would send its calls
# around its sidecar.
_NOT_INHERITED = ("no_proxy", "NO_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


class Agent:
    def __init__(self, spec: AgentSpec) -> None:
        self.spec = spec
        self.logs = Path(spec.log_dir)
        self.proxy: Child | None = None
        self.app: Child | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self._stopped = asyncio.Event()

    # ---------------------------------------------------------------- life

    async def start(self) -> None:
        spec = self.spec
        self.logs.mkdir(parents=True, exist_ok=True)
        self._servers.append(await serve_http(self._status, spec.ip, spec.metrics_port))
        if spec.role == NO_SIDECAR:
            await self._start_without_sidecar()
            return
        path = self.logs / f"{spec.name}.bootstrap.json"
        path.write_text(json.dumps(bootstrap(spec), indent=1))
        self.proxy = Child(f"{spec.name}/proxy", [*PROXY_ARGV, "-c", str(path), "--log-level", "info",
                                                    "--drain-time-s", str(spec.drain_seconds)],
                           self.logs / f"{spec.name}.proxy.log", env=child_env({}))
        await self.proxy.start()
        if spec.app is None:
            return
        deadline = time.monotonic() + spec.proxy_ready_timeout
        while not await self.proxy_ready():
            if time.monotonic() > deadline:
                log.error("%s: the proxy was not ready in %.0fs; starting the app anyway", spec.name,
                          spec.proxy_ready_timeout)
                break
            await asyncio.sleep(0.1)
        self.app = Child(f"{spec.name}/app", spec.app.argv, self.logs / f"{spec.name}.app.log",
                         env=self.app_env(), cwd=spec.app.cwd)
        await self.app.start()

    async def _start_without_sidecar(self) -> None:
        """A workload outside the mesh: no proxy; the app's ports are relayed from the instance's
        address (what a pod's network gives it), and the agent answers readiness on 15021 itself."""
        spec, app = self.spec, self.spec.app
        assert app is not None
        self._servers.append(await serve_http(self._status, spec.ip, spec.health_port))
        self._servers += await relay_ports(spec.ip, app.ports)
        self.app = Child(f"{spec.name}/app", app.argv, self.logs / f"{spec.name}.app.log", env=self.app_env(),
                         cwd=app.cwd)
        await self.app.start()

    def app_env(self) -> dict[str, str]:
        spec, app = self.spec, self.spec.app
        assert app is not None
        env = child_env({})
        for name in _NOT_INHERITED:
            env.pop(name, None)
        if spec.role == SIDECAR:
            proxy = f"http://127.0.0.1:{spec.http_proxy_port}"
            env.update({"HTTP_PROXY": proxy, "http_proxy": proxy})
        else:
            env.pop("HTTP_PROXY", None)
            env.pop("http_proxy", None)
        env.update({"HOSTNAME": spec.name, "POD_NAME": spec.name,
                    "POD_NAMESPACE": spec.namespace, "INSTANCE_IP": spec.ip,
                    "SERVICE_ACCOUNT": spec.service_account, "PYTHONUNBUFFERED": "1"})
        env.update(app.env)
        return env

    async def stop(self) -> None:
        """The app first (no new outbound calls need the proxy after it), then the proxy."""
        if self.app is not None:
            await self.app.stop()
        if self.proxy is not None:
            await self.proxy.stop(grace=self.spec.drain_seconds + 5)
        for server in self._servers:
            server.close()
        self._stopped.set()

    async def run(self) -> None:
        """Until SIGTERM or SIGINT."""
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, done.set)
        try:
            await self.start()
            await done.wait()
        finally:
            await self.stop()

    # ---------------------------------------------------------------- readiness and metrics

    async def proxy_ready(self) -> bool:
        """The proxy is LIVE: its initial xDS fetch is done and its listeners are up."""
        if self.spec.role == NO_SIDECAR:
            return True
        status, _ = await http_get(self.spec.ip, self.spec.admin_port, "/ready")
        return status == 200

    async def app_ready(self) -> bool:
        app = self.spec.app
        if app is None:
            return True
        return all([await tcp_open("127.0.0.1", port) for port in app.ports.values()])

    async def _status(self, request: Request) -> Response:
        if request.path in ("/healthz/ready", "/ready"):
            if not await self.proxy_ready():
                return Response.text("proxy not ready\n", 503)
            if not await self.app_ready():
                return Response.text("app not ready\n", 503)
            return Response.text("")
        if request.path in ("/stats/prometheus", "/metrics"):
            return Response(200, await self.merged_metrics(), "text/plain; version=0.0.4; charset=utf-8")
        if request.path == "/healthz/live":
            return Response.text("")
        return Response.text("not found\n", 404)

    async def merged_metrics(self) -> bytes:
        """The proxy's Prometheus stats, the app's (when it declares prometheus.io/port), and the
        agent's own: Istio's metrics merging on the status port."""
        spec = self.spec
        parts = []
        if spec.role != NO_SIDECAR:
            status, body = await http_get(spec.ip, spec.admin_port, "/stats/prometheus")
            if status == 200:
                parts.append(body)
        if spec.app is not None and spec.app.metrics_port:
            status, body = await http_get("127.0.0.1", spec.app.metrics_port, spec.app.metrics_path)
            if status == 200:
                parts.append(body)
        restarts = {"proxy": self.proxy.restarts if self.proxy else 0, "app": self.app.restarts if self.app else 0}
        own = ["# TYPE istio_agent_process_restarts_total counter"]
        own += [f'istio_agent_process_restarts_total{{process="{k}"}} {v}' for k, v in restarts.items()]
        parts.append(("\n".join(own) + "\n").encode())
        return b"".join(p if p.endswith(b"\n") else p + b"\n" for p in parts)


def run_agent(spec: AgentSpec) -> None:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][agent][%(levelname)s] %(message)s",
                        stream=sys.stderr)
    agent = Agent(spec)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(agent.run())


__all__ = ["Agent", "run_agent", "SIDECAR"]
