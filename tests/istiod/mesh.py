"""A small mesh for end-to-end tests: backends, Istio YAML for a gateway in front of them, istiod
in process, and a `pilotfish proxy` gateway process bootstrapped to it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import yaml

from pilotfish.istiod.server import Istiod, IstiodOptions

PILOTFISH = [sys.executable, "-c", "from pilotfish.cli.main import main; main()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def backend(name: str) -> tuple[asyncio.Server, int]:
    """An HTTP/1.1 keep-alive server answering its name."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
                body = name.encode()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def get(port: int, host: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        writer.write(f"GET / HTTP/1.1\r\nhost: {host}\r\n{extra}connection: close\r\n\r\n".encode())
        data = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def web_service(port: int, port_name: str, protocol: str, v1: int, v2: int) -> str:
    """``web.internal:port`` (a ServiceEntry) over two workloads on loopback, ``v1`` and ``v2``
    on their own ports, and a DestinationRule with those two subsets."""
    return f"""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: web, namespace: default}}
spec:
  hosts: [web.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: {port}, name: {port_name}, protocol: {protocol}}}]
  workloadSelector: {{labels: {{app: web}}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: web-v1, namespace: default}}
spec: {{address: 127.0.0.1, ports: {{{port_name}: {v1}}}, labels: {{app: web, version: v1}}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: web-v2, namespace: default}}
spec: {{address: 127.0.0.1, ports: {{{port_name}: {v2}}}, labels: {{app: web, version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: web, namespace: default}}
spec:
  host: web.internal
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
"""


def config(gw_port: int, v1: int, v2: int, canary: str = "v2") -> dict[str, str]:
    return {
        "gateway.yaml": f"""
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: web-gw, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {gw_port}, name: http, protocol: HTTP}}
    hosts: [web.example.com, unbound.example.com]
""",
        "service.yaml": web_service(8000, "http", "HTTP", v1, v2),
        "vs.yaml": f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: web, namespace: default}}
spec:
  hosts: [web.example.com]
  gateways: [web-gw]
  http:
  - match: [{{headers: {{x-canary: {{exact: "yes"}}}}}}]
    route: [{{destination: {{host: web.internal, subset: {canary}}}}}]
  - route:
    - {{destination: {{host: web.internal, subset: v1}}, weight: 80}}
    - {{destination: {{host: web.internal, subset: v2}}, weight: 20}}
""",
    }


def gateway_bootstrap(xds_port: int, admin_port: int = 0) -> dict[str, object]:
    return proxy_bootstrap(xds_port, "router~127.0.0.1~ingress-1.istio-system~istio-system.svc.cluster.local",
                           {"NAMESPACE": "istio-system", "LABELS": {"istio": "ingressgateway"}}, admin_port)


def proxy_bootstrap(xds_port: int, node_id: str, metadata: dict[str, object], admin_port: int = 0) -> dict[str, object]:
    """A plain Envoy v3 bootstrap: this node, its admin (on ``admin_port``), ADS to istiod."""
    return {
        "node": {"id": node_id, "cluster": node_id.split("~")[2], "metadata": metadata},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "dynamic_resources": {
            "ads_config": {"api_type": "GRPC", "transport_api_version": "V3",
                           "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]},
            "lds_config": {"ads": {}, "resource_api_version": "V3"},
            "cds_config": {"ads": {}, "resource_api_version": "V3"},
        },
        "static_resources": {"clusters": [{
            "name": "xds-grpc", "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": "xds-grpc", "endpoints": [{"lb_endpoints": [{"endpoint": {
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": xds_port}}}}]}]}}]},
    }


@contextlib.contextmanager
def proxy_process(bootstrap: dict[str, object], tmp: Path) -> Iterator[subprocess.Popen[bytes]]:
    path = tmp / "envoy.yaml"
    path.write_text(yaml.safe_dump(bootstrap))
    proc = subprocess.Popen([*PILOTFISH, "proxy", "-c", str(path), "--log-level", "warning"],
                            stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


async def eventually(check: object, timeout: float = 10.0) -> None:
    """Wait until ``check()`` (async, returning a bool) holds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await check():  # type: ignore[operator]
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def istiod(config_dir: Path, xds_port: int = 0) -> AsyncIterator[Istiod]:
    server = Istiod(IstiodOptions(config_dir=config_dir, xds_port=xds_port, http_port=0, debounce_quiet=0.05))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
