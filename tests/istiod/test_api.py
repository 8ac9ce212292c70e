"""istiod's HTTP API: readiness, metrics, debug views, and resource CRUD that validates first and
writes nothing it refuses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pilotfish.istiod.config_dir import parse_text
from pilotfish.istiod.server import Istiod, IstiodOptions

GATEWAY = """apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}]
"""
SERVICE = """apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: default}
spec:
  hosts: [web.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8000, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1, labels: {version: v1}}]
"""
VS = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [web.internal]
  http: [{route: [{destination: {host: web.internal}}]}]
"""
BAD_VS = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: broken}
spec:
  hosts: [web.internal]
  http: [{route: [{destination: {host: web.internal}, weight: -1}]}]
"""


async def call(port: int, method: str, path: str, body: str = "", token: str | None = None) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    auth = f"authorization: Bearer {token}\r\n" if token else ""
    data = body.encode()
    writer.write(f"{method} {path} HTTP/1.1\r\nhost: istiod\r\n{auth}content-length: {len(data)}\r\n"
                 f"connection: close\r\n\r\n".encode() + data)
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), payload


@pytest.fixture
async def istiod(tmp_path: Path) -> AsyncIterator[Istiod]:
    (tmp_path / "gw.yaml").write_text(GATEWAY)
    (tmp_path / "svc.yaml").write_text(SERVICE)
    server = Istiod(IstiodOptions(config_dir=tmp_path, xds_port=0, http_port=0, debounce_quiet=0.01, watch=False))
    await server.start()
    yield server
    await server.stop()


def loads(payload: bytes) -> Any:
    return json.loads(payload)


async def test_ready_metrics_and_debug_views(istiod: Istiod) -> None:
    port = istiod.http_port
    assert await call(port, "GET", "/ready") == (200, b"ready\n")
    status, text = await call(port, "GET", "/metrics")
    assert status == 200 and b"pilot_xds" in text and b"pilot_services 1" in text
    status, body = await call(port, "GET", "/debug/configz")
    assert sorted(r["kind"] for r in loads(body)) == ["Gateway", "ServiceEntry"]
    status, body = await call(port, "GET", "/debug/registryz")
    (svc,) = loads(body)
    assert svc["hostname"] == "web.internal" and svc["endpoints"][0]["address"] == "127.0.0.1"
    assert (await call(port, "GET", "/debug/config_dump?proxyID=nobody.default"))[0] == 404


async def test_apply_validates_first_and_writes_nothing_it_refuses(istiod: Istiod, tmp_path: Path) -> None:
    port = istiod.http_port
    status, body = await call(port, "POST", "/apis/v1/resources", VS + "---\n" + BAD_VS)
    assert status == 400
    (error,) = loads(body)["errors"]
    assert "VirtualService default/broken" in error and "weight -1 < 0" in error
    assert not list((tmp_path / "applied").rglob("*.yaml"))  # not even the valid one
    status, body = await call(port, "POST", "/apis/v1/resources", VS)
    assert (status, loads(body)["results"]) == (200, [{"ref": "VirtualService default/web", "result": "created"}])
    status, body = await call(port, "POST", "/apis/v1/resources", VS)
    assert loads(body)["results"][0]["result"] == "unchanged"
    status, body = await call(port, "GET", "/apis/v1/resources?kind=virtualservice&namespace=default&name=web")
    assert status == 200 and loads(body)["items"][0]["spec"]["hosts"] == ["web.internal"]
    # An object declared in a user's file is changed by editing the file, not through the API.
    status, body = await call(port, "DELETE", "/apis/v1/resources?kind=Gateway&namespace=default&name=gw")
    assert status == 409 and "gw.yaml" in loads(body)["errors"][0]
    status, body = await call(port, "DELETE", "/apis/v1/resources?kind=VirtualService&namespace=default&name=web")
    assert status == 200
    status, _ = await call(port, "GET", "/apis/v1/resources?kind=VirtualService&namespace=default&name=web")
    assert status == 404


async def test_a_token_guards_everything_but_readiness(tmp_path: Path) -> None:
    server = Istiod(IstiodOptions(config_dir=tmp_path, xds_port=0, http_port=0, token="s3cret", watch=False))
    await server.start()
    try:
        port = server.http_port
        assert (await call(port, "GET", "/ready"))[0] == 200
        assert (await call(port, "GET", "/debug/configz"))[0] == 401
        assert (await call(port, "GET", "/debug/configz", token="wrong"))[0] == 401
        assert (await call(port, "GET", "/debug/configz", token="s3cret"))[0] == 200
    finally:
        await server.stop()


async def test_a_virtualservice_edit_keeps_the_registry(istiod: Istiod, tmp_path: Path) -> None:
    """Only what a change can alter is rebuilt: a VirtualService edit leaves the registry (and
    the first load is not taken for a change)."""
    before = istiod.push_context.registry
    version = istiod.version
    path = tmp_path / "vs.yaml"
    path.write_text(VS.replace("name: web}", "name: web, namespace: default}"))
    assert istiod.config_changed({str(path)})
    for _ in range(200):
        if istiod.version > version:
            break
        await asyncio.sleep(0.01)
    assert istiod.version > version and istiod.push_context.registry is before
    assert any(r.kind == "VirtualService" for r in istiod.push_context.resources)


async def test_a_virtualservice_change_is_pushed_only_to_proxies_that_can_reach_its_hosts(tmp_path: Path) -> None:
    from envoy.config.core.v3 import base_pb2

    (tmp_path / "svc.yaml").write_text(SERVICE + """---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: scoped}
spec: {egress: [{hosts: ["./*"]}]}
""")
    server = Istiod(IstiodOptions(config_dir=tmp_path, xds_port=0, http_port=0, watch=False))
    await server.start()
    try:
        def node(ns: str, gateway: bool = False) -> base_pb2.Node:
            kind = "router" if gateway else "sidecar"
            n = base_pb2.Node(id=f"{kind}~10.9.0.{len(ns)}~app.{ns}~{ns}.svc.cluster.local")
            n.metadata.update({"NAMESPACE": ns})
            return n

        (vs,), _ = parse_text(VS.replace("name: web}", "name: web, namespace: default}"), "vs.yaml")
        affects = server._seeing([vs])
        assert affects(node("default")) and affects(node("other"))  # they reach web.internal
        assert not affects(node("scoped"))  # its Sidecar keeps it to its own namespace
        assert affects(node("istio-system", gateway=True))
    finally:
        await server.stop()


async def test_a_delegate_virtualservice_change_is_pushed_everywhere(tmp_path: Path) -> None:
    (tmp_path / "svc.yaml").write_text(SERVICE)
    server = Istiod(IstiodOptions(config_dir=tmp_path, xds_port=0, http_port=0, watch=False))
    await server.start()
    try:
        from envoy.config.core.v3 import base_pb2

        (child,), _ = parse_text("""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: child, namespace: default}
spec:
  http: [{route: [{destination: {host: web.internal}}]}]
""", "child.yaml")
        n = base_pb2.Node(id="sidecar~10.9.0.1~app.far~far.svc.cluster.local")
        n.metadata.update({"NAMESPACE": "far"})
        assert server._seeing([child])(n)
    finally:
        await server.stop()


async def test_a_virtualservice_edit_regenerates_listeners_only_for_tcp_routes(istiod: Istiod, tmp_path: Path) -> None:
    from pilotfish.xds.type_urls import LISTENER, ROUTE

    pushed: list[object] = []
    istiod.ads.push = lambda version, affects=None, types=None: pushed.append(types)  # type: ignore[method-assign]
    path = tmp_path / "vs.yaml"
    for text in (VS, VS + "  tcp: [{route: [{destination: {host: web.internal}}]}]\n"):
        path.write_text(text)
        istiod.config_changed({str(path)})
        istiod._push_now()
    assert pushed == [{ROUTE}, {LISTENER, ROUTE}]
