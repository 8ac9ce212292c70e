"""What one agent runs: a workload instance (pod) with its sidecar, or a gateway.

The local mesh writes one spec per instance as JSON and starts ``pilotfish agent --spec FILE``;
everything the agent needs is in it, so an agent restarted on its own comes back the same.
Ports follow Istio's defaults on the instance's own address (admin 15000, merged metrics 15020,
health 15021, proxy metrics 15090); only the outbound HTTP proxy listener and the app's private
port sit on 127.0.0.1, where local instances share the address space and need ports of their own.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ADMIN_PORT = 15000
METRICS_PORT = 15020  # the agent's merged Prometheus metrics (Istio's status port)
HEALTH_PORT = 15021  # the proxy's /healthz/ready listener, answered by the agent
PROXY_METRICS_PORT = 15090  # the proxy's own /stats/prometheus
SIDECAR = "sidecar"
ROUTER = "router"
NO_SIDECAR = "none"  # a workload outside the mesh: the app alone, reachable on its address as a pod is


@dataclass
class AppSpec:
    """The application process: argv, extra environment, working directory, and where it
    listens (workload port → private port on 127.0.0.1)."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "."
    ports: dict[int, int] = field(default_factory=dict)
    metrics_port: int = 0  # prometheus.io/port, merged into the agent's metrics when set
    metrics_path: str = "/metrics"


@dataclass
class AgentSpec:
    role: str  # SIDECAR, ROUTER or NO_SIDECAR
    name: str  # the pod's name: reviews-v2-5d9f8c7b4-x2k4p
    namespace: str
    ip: str  # the instance's own address
    xds_address: str  # istiod's "host:port"
    log_dir: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    service_account: str = "default"
    workload_name: str = ""  # the Deployment's name
    app: AppSpec | None = None
    http_proxy_port: int = 0  # the outbound HTTP proxy listener on 127.0.0.1 (NONE mode)
    # containerPort → the port the sidecar serves it on, where instances share an address (the
    # local mesh without loopback aliases); absent ports are served on their own number
    inbound_ports: dict[int, int] = field(default_factory=dict)
    admin_port: int = ADMIN_PORT
    metrics_port: int = METRICS_PORT
    health_port: int = HEALTH_PORT
    proxy_metrics_port: int = PROXY_METRICS_PORT
    cluster_id: str = "Kubernetes"
    mesh_id: str = "cluster.local"
    domain: str = "cluster.local"
    drain_seconds: float = 2.0
    proxy_ready_timeout: float = 60.0

    @property
    def node_id(self) -> str:
        """Istio's ``TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.DOMAIN``."""
        return f"{self.role}~{self.ip}~{self.name}.{self.namespace}~{self.namespace}.svc.{self.domain}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> AgentSpec:
        data: dict[str, Any] = json.loads(text)
        app = data.pop("app", None)
        spec = AgentSpec(**data)
        spec.inbound_ports = {int(k): int(v) for k, v in spec.inbound_ports.items()}
        if app is not None:
            app["ports"] = {int(k): int(v) for k, v in app.get("ports", {}).items()}
            spec.app = AppSpec(**app)
        return spec

    @staticmethod
    def load(path: str | Path) -> AgentSpec:
        return AgentSpec.from_json(Path(path).read_text())
