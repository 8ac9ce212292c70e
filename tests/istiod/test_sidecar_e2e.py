"""End to end, Istio's no-interception mode as the local mesh runs it: two sidecars connected to
istiod, the client app calling the server app by service name through its sidecar's HTTP proxy
listener, the server's workload registered by its sidecar connecting (auto-registration)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from .mesh import backend, eventually, free_port, istiod, proxy_bootstrap, proxy_process

SERVER_IP, CLIENT_IP = "127.0.1.2", "127.0.1.3"


def service(port: int) -> str:
    return f"""
apiVersion: v1
kind: Service
metadata: {{name: hello, namespace: default}}
spec:
  selector: {{app: hello}}
  ports: [{{name: http, port: {port}, targetPort: {port}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: hello, namespace: default}}
spec:
  hosts: [hello]
  http:
  - match: [{{uri: {{prefix: /teapot}}}}]
    fault: {{abort: {{httpStatus: 418, percentage: {{value: 100}}}}}}
    route: [{{destination: {{host: hello}}}}]
  - route: [{{destination: {{host: hello}}}}]
"""


async def via_proxy(proxy_port: int, url: str) -> tuple[int, bytes]:
    """An app's request through HTTP_PROXY: absolute-form, as HTTP clients send it to a proxy."""
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port)
    try:
        host = url.split("/")[2]
        writer.write(f"GET {url} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n".encode())
        data = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def test_a_sidecar_reaches_another_service_by_name_through_its_http_proxy_listener(tmp_path: Path) -> None:
    app, port = await backend("hello from the server app")  # the app listens on 127.0.0.1:port
    conf = tmp_path / "config"
    conf.mkdir()
    (conf / "hello.yaml").write_text(service(port))
    http_proxy = free_port()
    try:
        async with istiod(conf) as cp:
            server = proxy_bootstrap(cp.xds_port, f"sidecar~{SERVER_IP}~hello-1.default~default.svc.cluster.local",
                                     {"NAMESPACE": "default", "LABELS": {"app": "hello"}, "INTERCEPTION_MODE": "NONE",
                                      "HTTP_PROXY_PORT": str(free_port())})
            client = proxy_bootstrap(cp.xds_port, f"sidecar~{CLIENT_IP}~client-1.default~default.svc.cluster.local",
                                     {"NAMESPACE": "default", "LABELS": {"app": "client"}, "INTERCEPTION_MODE": "NONE",
                                      "HTTP_PROXY_PORT": str(http_proxy)})
            (tmp_path / "server").mkdir()
            (tmp_path / "client").mkdir()
            with proxy_process(server, tmp_path / "server"), proxy_process(client, tmp_path / "client"):
                async def answered() -> bool:
                    return await via_proxy(http_proxy, f"http://hello:{port}/") == (200, b"hello from the server app")

                await eventually(answered, 20)
                # Every name of the service, as Istio's virtual host lists them.
                for name in ("hello.default", "hello.default.svc.cluster.local"):
                    assert await via_proxy(http_proxy, f"http://{name}:{port}/x") == (200, b"hello from the server app")
                assert (await via_proxy(http_proxy, f"http://hello:{port}/teapot"))[0] == 418
                # The server's sidecar registered its workload: istiod's registry lists it.
                endpoints = [e for s in cp.push_context.registry.services if s.name == "hello"
                             for e in cp.push_context.registry.endpoints_of(s)]
                assert [(e.address, e.ports.get("http")) for e in endpoints] == [(SERVER_IP, port)]
    finally:
        app.close()
