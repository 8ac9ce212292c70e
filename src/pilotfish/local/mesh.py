"""The local mesh's supervisor: istiod, the gateways and one agent per workload instance, each a
child process kept running, started and stopped in order.

Start: the config in the store (``up -f`` files were validated and stored before this runs),
then istiod, then the gateways and workloads, each waiting for nothing but istiod; readiness is
each agent's ``/healthz/ready``. While up, the store is looked at every second and Deployments
are reconciled as a cluster would: a new or changed Deployment starts (new) instances, a
deleted one's instances stop, replicas scale. Stop: workloads, then gateways (they drain), then
istiod.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..agent.child import Child, child_env
from ..agent.probe import http_get
from ..config.base import Resource
from ..config.store import ConfigStore
from .plan import (
    Instance,
    endpoint_slices,
    free_port,
    gateway_spec,
    inbound_ports,
    instance_spec,
    pod_document,
    wanted_workloads,
    wants_egress,
)
from .state import EGRESS_HOST, FIRST_WORKLOAD_HOST, INGRESS_HOST, ISTIOD_HOST, State
from .workloads import Workload

log = logging.getLogger("pilotfish.local")

PILOTFISH = [sys.executable, "-c", "from pilotfish.cli.main import main; main()"]
XDS_PORT, HTTP_PORT = 15010, 15014


@dataclass
class MeshOptions:
    ingress_http_port: int = 8080
    egress: bool = False
    ready_timeout: float = 90.0
    reconcile_interval: float = 1.0
    shared_address: bool = False  # every instance on 127.0.0.1 with ports of its own (no loopback aliases)


def store_state(resources: Iterable[Resource]) -> frozenset[tuple[str, str, str, str]]:
    """What the store holds: every object with its resourceVersion. A deletion changes it, which
    the resourceVersion of a store loaded from its files does not show: that is the highest one
    left, the same after deleting any object but the newest."""
    return frozenset((r.kind, r.namespace or "", r.name, r.metadata.resource_version or "") for r in resources)


class Mesh:
    def __init__(self, state: State, options: MeshOptions | None = None) -> None:
        self.state = state
        self.options = options or MeshOptions()
        self.istiod: Child | None = None
        self.instances: dict[str, Instance] = {}
        self.agents: dict[str, Child] = {}
        self.phase = "starting"
        self.failures: list[str] = []
        self._reconciler: asyncio.Task[None] | None = None
        self._store_state: frozenset[tuple[str, str, str, str]] = frozenset()
        self._resources: list[Resource] = []  # the store's, as last read
        self.on_change: Callable[[], None] | None = None
        shared = self.options.shared_address
        self.xds_port, self.http_port = (free_port(), free_port()) if shared else (XDS_PORT, HTTP_PORT)

    # ---------------------------------------------------------------- addresses

    def address(self, host: int) -> str:
        return "127.0.0.1" if self.options.shared_address else self.state.address(host)

    @property
    def istiod_ip(self) -> str:
        return self.address(ISTIOD_HOST)

    @property
    def xds_address(self) -> str:
        return f"{self.istiod_ip}:{self.xds_port}"

    @property
    def istiod_url(self) -> str:
        return f"http://{self.istiod_ip}:{self.http_port}"

    def _next_host(self) -> int:
        taken = {i.host for i in self.instances.values()}
        host = FIRST_WORKLOAD_HOST
        while host in taken:
            host += 1
        if host > 254:
            raise RuntimeError("no address left in the mesh's /24 (244 instances)")
        return host

    # ---------------------------------------------------------------- start and stop

    async def start(self) -> None:
        self.state.create()
        self.state.clear_pods()  # (a crashed mesh's)
        logs = self.state.logs_dir
        argv = [*PILOTFISH, "istiod", "--config-dir", str(self.state.config_dir), "--address", self.istiod_ip,
                "--xds-port", str(self.xds_port), "--http-port", str(self.http_port)]
        if self.state.mesh_config.exists():
            argv += ["--mesh-config", str(self.state.mesh_config)]
        self.istiod = Child("istiod", argv, logs / "istiod.log", env=child_env({}), on_start=self._restarted)
        await self.istiod.start()
        self.write()
        deadline = time.monotonic() + self.options.ready_timeout
        while (await http_get(self.istiod_ip, self.http_port, "/ready"))[0] != 200:
            if time.monotonic() > deadline or not self.istiod.running and self.istiod.restarts > 3:
                raise RuntimeError(f"istiod did not start; see {logs / 'istiod.log'}")
            await asyncio.sleep(0.1)
        resources = self.store_resources()
        await self._start_gateway("ingress", INGRESS_HOST)
        if self.options.egress or wants_egress(resources):
            await self._start_gateway("egress", EGRESS_HOST)
        await self.reconcile(resources)
        self._reconciler = asyncio.get_running_loop().create_task(self._reconcile_forever())

    async def wait_ready(self) -> list[str]:
        """Names of what is not ready by the deadline (empty when everything is)."""
        deadline = time.monotonic() + self.options.ready_timeout
        while True:
            waiting = [name for name, ready in (await self.refresh_readiness()).items() if not ready]
            if not waiting or time.monotonic() > deadline:
                self.phase = "ready" if not waiting else "failed"
                self.failures = waiting
                self.write()
                return waiting
            await asyncio.sleep(0.2)

    async def readiness(self) -> dict[str, bool]:
        """istiod's /ready and each instance's /healthz/ready, probed together."""
        insts = list(self.instances.values())
        answers = await asyncio.gather(http_get(self.istiod_ip, self.http_port, "/ready", timeout=1),
                                       *(http_get(i.spec.ip, i.spec.health_port, "/healthz/ready", timeout=1)
                                         for i in insts))
        return {name: status == 200 for name, (status, _) in zip(["istiod", *(i.name for i in insts)], answers)}

    async def stop(self) -> None:
        """Workloads first, then gateways, then istiod."""
        if self._reconciler is not None:
            self._reconciler.cancel()
        self.phase = "stopping"
        self.write()
        workloads = [n for n, i in self.instances.items() if i.workload is not None]
        gateways = [n for n, i in self.instances.items() if i.workload is None]
        for group in (workloads, gateways):
            await asyncio.gather(*(self._stop_instance(n) for n in group))
        if self.istiod is not None:
            await self.istiod.stop()
        self.state.clear_mesh()

    # ---------------------------------------------------------------- instances

    async def _start_instance(self, inst: Instance) -> None:
        path = self.state.agents_dir / f"{inst.name}.json"
        path.write_text(inst.spec.to_json())
        self._write_pod(inst)
        self.instances[inst.name] = inst
        agent = Child(f"{inst.name}/agent", [*PILOTFISH, "agent", "--spec", str(path)],
                      self.state.logs_dir / f"{inst.name}.agent.log", env=child_env({}), on_start=self._restarted)
        self.agents[inst.name] = agent
        await agent.start()
        self.write()

    async def _stop_instance(self, name: str) -> None:
        """As a pod terminates: out of the endpoints first, then the app and its proxy stop."""
        inst = self.instances.pop(name, None)
        if inst is not None:
            self._pod_path(inst).unlink(missing_ok=True)
        agent = self.agents.pop(name, None)
        if agent is not None:
            await agent.stop(grace=15)
        (self.state.agents_dir / f"{name}.json").unlink(missing_ok=True)
        self.write()

    def _pod_path(self, inst: Instance) -> Path:
        return self.state.pods_dir / f"{inst.spec.namespace}.{inst.name}.yaml"

    def _write_pod(self, inst: Instance) -> None:
        """Atomically: istiod watches the directory (its hidden temp file is not read)."""
        self.state.pods_dir.mkdir(parents=True, exist_ok=True)
        path = self._pod_path(inst)
        tmp = path.with_name(f".{path.name}.tmp")
        docs = [pod_document(inst, inst.ready)]
        if self.options.shared_address:
            docs += endpoint_slices(inst, inst.ready, self._resources)
        tmp.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        os.replace(tmp, path)

    async def refresh_readiness(self) -> dict[str, bool]:
        """Probe everything; each instance's Pod follows its readiness, as the kubelet's probes
        set it."""
        ready = await self.readiness()
        for inst in list(self.instances.values()):
            now = ready.get(inst.name, False)
            if now != inst.ready and inst.name in self.instances:
                inst.ready = now
                self._write_pod(inst)
        return ready

    async def _start_gateway(self, kind: str, host: int) -> None:
        name = f"istio-{kind}gateway-local-{host}"
        spec = gateway_spec(kind, name, self.address(host), self.xds_address, str(self.state.logs_dir),
                            self.options.shared_address)
        await self._start_instance(Instance(spec=spec, workload=None, host=host))

    def store_resources(self) -> list[Resource]:
        resources = ConfigStore(self.state.applied_dir).list()
        self._store_state = store_state(resources)
        self._resources = resources
        return resources

    async def reconcile(self, resources: list[Resource]) -> None:
        """Run what the Deployments in the store ask for: start missing instances, stop those of
        deleted or changed Deployments, scale to replicas."""
        self._resources = resources
        errors: list[str] = []
        wanted = {(w.namespace, w.name): w for w in wanted_workloads(resources, errors)}
        for error in errors:  # (apply validated the Istio side; the run annotation is ours)
            log.error("not run: %s", error)
        running: dict[tuple[str, str], list[Instance]] = {}
        for inst in self.instances.values():
            if inst.workload is not None:
                running.setdefault((inst.workload.namespace, inst.workload.name), []).append(inst)
        for key, insts in running.items():
            w = wanted.get(key)
            stale = [i for i in insts if w is None or i.workload != w]
            keep = [i for i in insts if i not in stale]
            if w is not None:
                stale += keep[w.replicas:]
            for i in stale:
                await self._stop_instance(i.name)
        for key, w in wanted.items():
            have = sum(1 for i in self.instances.values() if i.workload == w)
            for _ in range(w.replicas - have):
                await self._start_instance(self._new_instance(w))
        if self.options.shared_address:  # the Services' slices follow the Services
            for inst in self.instances.values():
                self._write_pod(inst)

    def _new_instance(self, w: Workload) -> Instance:
        host = self._next_host()
        ip = self.address(host)
        spec = instance_spec(w, w.instance_name(), ip, self.xds_address, str(self.state.logs_dir),
                             self.options.shared_address)
        return Instance(spec=spec, workload=w, host=host)

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self.options.reconcile_interval)
            try:
                await self.refresh_readiness()
                resources = ConfigStore(self.state.applied_dir).list()
                if store_state(resources) != self._store_state:
                    await self.reconcile(resources)
                    self._store_state = store_state(resources)
            except Exception:  # a bad moment in the store must not end the mesh
                log.exception("reconciling the workloads failed; trying again")

    # ---------------------------------------------------------------- mesh.json

    def _restarted(self, child: Child) -> None:
        """A process (re)started: mesh.json names its new pid."""
        if child.restarts or child is self.istiod:
            self.write()

    def write(self) -> None:
        self.state.write_mesh(self.describe())
        if self.on_change is not None:
            self.on_change()

    def describe(self) -> dict[str, Any]:
        ingress = next((i for i in self.instances.values() if i.spec.labels.get("istio") == "ingressgateway"), None)
        return {
            "pid": os.getpid(), "phase": self.phase, "failures": self.failures, "addresses": "shared 127.0.0.1" if self.options.shared_address else self.state.subnet() + "0/24",
            "ingress_url": f"http://{ingress.spec.ip}:{self.options.ingress_http_port}" if ingress else None,
            "istiod": {"xds": self.xds_address, "http": self.istiod_url,
                       "pid": self.istiod.pid if self.istiod else None,
                       "log": str(self.state.logs_dir / "istiod.log")},
            "workloads": [self._entry(i) for i in self.instances.values() if i.workload is not None],
            "gateways": [self._entry(i) for i in self.instances.values() if i.workload is None],
        }

    def _entry(self, inst: Instance) -> dict[str, Any]:
        spec, agent = inst.spec, self.agents.get(inst.name)
        return {
            "name": spec.name, "namespace": spec.namespace, "workload": spec.workload_name,
            "labels": dict(spec.labels), "address": spec.ip, "identity": "", "service_account": spec.service_account,
            "pid": agent.pid if agent else None, "restarts": agent.restarts if agent else 0,
            "ports": {"inbound": {str(k): v for k, v in inbound_ports(spec, self._resources).items()}
                      if inst.workload is not None else {},
                      "outbound": spec.http_proxy_port or None, "admin": spec.admin_port,
                      "health": spec.health_port, "metrics": spec.metrics_port,
                      "app": {str(k): v for k, v in spec.app.ports.items()} if spec.app else {}},
            "logs": {c: str(self.state.logs_dir / f"{spec.name}.{c}.log") for c in ("agent", "proxy", "app")},
        }
