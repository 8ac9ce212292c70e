"""Istio's egress tasks on the local mesh: "Accessing external services" with
``outboundTrafficPolicy: REGISTRY_ONLY``, the egress gateway, and a Sidecar's egress hosts
limiting what a namespace reaches. A plain HTTP server in the test stands in for the internet
under made-up names (ServiceEntries point them at it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from .harness import SAMPLES, Mesh, counter, request


EXTERNAL = "api.external.test"  # the made-up external host of these tests




class Internet:
    """An HTTP server on 127.0.0.1 standing in for external hosts: answers every GET with
    ``external <Host> <path>`` and remembers the (Host, path) of each request."""

    def __init__(self) -> None:
        seen = self.seen = []  # type: list[tuple[str, str]]

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                seen.append((self.headers.get("host", ""), self.path))
                body = f"external {self.headers.get('host', '')} {self.path}\n".encode()
                self.send_response(200)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def internet() -> Iterator[Internet]:
    server = Internet()
    yield server
    server.close()


@pytest.fixture(scope="module")
def mesh(mesh_factory: Callable[..., Mesh], tmp_path_factory: pytest.TempPathFactory) -> Mesh:
    """httpbin, helloworld and sleep, the egress gateway, and Istio's "Accessing external
    services" mesh option: outboundTrafficPolicy REGISTRY_ONLY."""
    mesh_config = tmp_path_factory.mktemp("meshconfig") / "mesh.yaml"
    mesh_config.write_text("outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n")
    return mesh_factory(SAMPLES / "httpbin" / "httpbin.yaml", SAMPLES / "helloworld" / "helloworld.yaml",
                        SAMPLES / "sleep" / "sleep.yaml",
                        extra=("--egress-gateway", "--mesh-config", str(mesh_config)))


def service_entry(name: str, port: int, resolution: str, endpoint: str) -> str:
    """Istio's ServiceEntry for an external HTTP host (as the task's for httpbin.org), with an
    endpoint at the stand-in server."""
    return f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: {name}
spec:
  hosts:
  - {EXTERNAL}
  ports:
  - number: 80
    name: http-port
    protocol: HTTP
  resolution: {resolution}
  location: MESH_EXTERNAL
  endpoints:
  - address: {endpoint}
    ports:
      http-port: {port}
"""


def test_registry_only_blocks_unknown_hosts(mesh: Mesh, internet: Internet) -> None:
    """REGISTRY_ONLY: a host no ServiceEntry declares gets 502 from the sidecar (Istio's
    BlackHoleCluster) and nothing reaches it; services in the mesh are unaffected."""
    proxy = mesh.sidecar_proxy("sleep")
    before = len(internet.seen)
    for url in (f"http://{EXTERNAL}/headers", f"http://127.0.0.1:{internet.port}/headers"):
        r = request(url, proxy=proxy)
        assert (r.status, r.headers.get("server")) == (502, "istio-envoy"), url
    assert len(internet.seen) == before
    assert request("http://httpbin:8000/get", proxy=proxy).status == 200


@pytest.mark.parametrize(("resolution", "endpoint"), [("STATIC", "127.0.0.1"), ("DNS", "localhost")])
def test_service_entry_lets_an_external_host_through(mesh: Mesh, internet: Internet, resolution: str,
                                                     endpoint: str) -> None:
    """A ServiceEntry for the host (MESH_EXTERNAL, port 80 named http) lets it through the
    sidecar to its endpoint, Host header unchanged; deleting it blocks the host again."""
    proxy = mesh.sidecar_proxy("sleep")
    path = f"/headers?resolution={resolution}"
    with mesh.applied(service_entry("external-svc", internet.port, resolution, endpoint)):
        r = request(f"http://{EXTERNAL}{path}", proxy=proxy)
        assert r.status == 200 and r.body == f"external {EXTERNAL} {path}\n", r
        assert (EXTERNAL, path) in internet.seen
    assert request(f"http://{EXTERNAL}{path}", proxy=proxy).status == 502


# Istio's egress-gateway task for HTTP traffic (edition.cnn.com there, the made-up host here):
# the ServiceEntry, the Gateway for the host on the egress gateway, and the VirtualService that
# sends the mesh's requests to the gateway and the gateway's to the host.
EGRESS_GATEWAY = f"""\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: istio-egressgateway
spec:
  selector:
    istio: egressgateway
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP
    hosts:
    - {EXTERNAL}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: egressgateway-for-cnn
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: cnn
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: direct-cnn-through-egress-gateway
spec:
  hosts:
  - {EXTERNAL}
  gateways:
  - istio-egressgateway
  - mesh
  http:
  - match:
    - gateways:
      - mesh
      port: 80
    route:
    - destination:
        host: istio-egressgateway.istio-system.svc.cluster.local
        subset: cnn
        port:
          number: 80
      weight: 100
  - match:
    - gateways:
      - istio-egressgateway
      port: 80
    route:
    - destination:
        host: {EXTERNAL}
        port:
          number: 80
      weight: 100
"""


def test_egress_gateway(mesh: Mesh, internet: Internet) -> None:
    """Istio's egress-gateway task: the request leaves sleep's sidecar for the egress gateway
    (its ``cnn`` subset) and the gateway sends it to the external host, whose answer comes back."""
    proxy = mesh.sidecar_proxy("sleep")
    sleep = mesh.workloads("sleep")[0]["address"]
    gateway = next(g["address"] for g in mesh.mesh["gateways"] if g["labels"].get("istio") == "egressgateway")
    to_gateway = "cluster.outbound|80|cnn|istio-egressgateway.istio-system.svc.cluster.local.upstream_rq_total"
    to_external = f"cluster.outbound|80||{EXTERNAL}.upstream_rq_total"
    with mesh.applied(service_entry("cnn", internet.port, "DNS", "localhost"), EGRESS_GATEWAY):
        sent, forwarded = counter(sleep, to_gateway), counter(gateway, to_external)
        r = request(f"http://{EXTERNAL}/politics", proxy=proxy)
        assert r.status == 200 and r.body == f"external {EXTERNAL} /politics\n", r
        assert counter(sleep, to_gateway) - sent == 1
        assert counter(gateway, to_external) - forwarded == 1


def test_sidecar_egress_hosts(mesh: Mesh) -> None:
    """A Sidecar in sleep's namespace whose egress lists only httpbin: httpbin still answers,
    helloworld (in the registry, but not in the Sidecar's hosts) is blocked like an unknown host
    (502 under REGISTRY_ONLY); without the Sidecar both answer."""
    sidecar = """\
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: default
spec:
  egress:
  - hosts:
    - "./httpbin.default.svc.cluster.local"
"""
    proxy = mesh.sidecar_proxy("sleep")
    hello = "http://helloworld:5000/hello"
    assert request(hello, proxy=proxy).status == 200
    with mesh.applied(sidecar):
        assert request("http://httpbin:8000/get", proxy=proxy).status == 200
        r = request(hello, proxy=proxy)
        assert (r.status, r.headers.get("server")) == (502, "istio-envoy")
    assert request(hello, proxy=proxy).status == 200
