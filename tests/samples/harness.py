"""Running the samples as the local mesh will, without the mesh.

``AppRunner`` starts a Deployment's app from its manifest: the ``pilotfish.io/run`` annotation split
like a shell line, placeholders filled in, working directory the manifest's, environment the
container's ``env`` plus what the mesh adds (HTTP_PROXY, HOSTNAME, POD_NAME, ...). ``ForwardProxy``
stands in for the sidecar's outbound HTTP proxy listener: it takes absolute-form requests (as
urllib sends them to HTTP_PROXY), maps ``details:9080`` and friends to the processes the test
started, records what went through, and can delay or fail a destination as Istio's fault
injection would. Everything binds port 0 on 127.0.0.1, so tests run in parallel.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
BOOKINFO = "bookinfo/platform/kube/bookinfo.yaml"
RUN_ANNOTATION = "pilotfish.io/run"

# A value for every header Istio's apps propagate (productpage, details and reviews keep one list).
TRACE_HEADERS = {
    "x-request-id": "2f6b4c7e-7a1d-4f7e-9a3c-0c6b1d1e9f01",
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "tracestate": "congo=t61rcWkgMzE",
    "b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1",
    "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7",
    "x-b3-spanid": "e457b5a2e4d86bd1",
    "x-b3-parentspanid": "05e3ac9a4f6e3b90",
    "x-b3-sampled": "1",
    "x-b3-flags": "1",
    "x-ot-span-context": "ot-span",
    "x-cloud-trace-context": "105445aa7843bc8bf206b12000100000/1;o=1",
    "grpc-trace-bin": "AAARf5PqU9hE5HrVhCFiQWIBAgE=",
    "x-datadog-trace-id": "1234",
    "x-datadog-parent-id": "5678",
    "x-datadog-sampling-priority": "1",
    "sw8": "1-sw8",
    "end-user": "jason",
    "user-agent": "pilotfish-test/1.0",
    "cookie": "session=abc",
    "authorization": "Bearer token",
    "jwt": "a.b.c",
}

_PROXY_ENV = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def manifest_docs(relpath: str) -> list[dict[str, Any]]:
    with open(SAMPLES / relpath) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


@dataclass(frozen=True)
class Deployment:
    """What the local mesh reads from one Deployment to run its app."""
    manifest: Path
    name: str
    run: str
    env: dict[str, str]
    container_ports: list[int]
    labels: dict[str, str]

    def command(self, ports: list[int]) -> list[str]:
        argv = shlex.split(self.run)
        fills = {"{python}": sys.executable, "{port}": str(ports[0]) if ports else ""}
        fills.update({f"{{port_{p}}}": str(ports[i]) for i, p in enumerate(self.container_ports)})
        out = []
        for arg in argv:
            for placeholder, value in fills.items():
                arg = arg.replace(placeholder, value)
            out.append(arg)
        return out


def deployment(relpath: str, name: str) -> Deployment:
    for doc in manifest_docs(relpath):
        if doc.get("kind") == "Deployment" and doc["metadata"]["name"] == name:
            template = doc["spec"]["template"]
            container = template["spec"]["containers"][0]
            return Deployment(
                manifest=SAMPLES / relpath,
                name=name,
                run=template["metadata"]["annotations"][RUN_ANNOTATION],
                env={e["name"]: str(e["value"]) for e in container.get("env", [])},
                container_ports=[p["containerPort"] for p in container.get("ports", [])],
                labels=template["metadata"]["labels"],
            )
    raise LookupError(f"no Deployment {name} in {relpath}")


def pod_name(deployment_name: str) -> str:
    """A name as Kubernetes gives a Deployment's pod: reviews-v2-5d9f8c7b4-x2k4p."""
    return f"{deployment_name}-{secrets.token_hex(5)[:9]}-{secrets.token_hex(3)[:5]}"


@dataclass
class App:
    deployment: Deployment
    process: subprocess.Popen[bytes]
    port: int | None
    pod: str
    stdout: Path
    stderr: Path

    def log(self) -> str:
        return self.stdout.read_text()

    def errors(self) -> str:
        return self.stderr.read_text()

    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                body: bytes | None = None, timeout: float = 15.0) -> Response:
        assert self.port is not None
        return request(self.port, method, path, headers, body, timeout)

    def get(self, path: str, headers: dict[str, str] | None = None, timeout: float = 15.0) -> Response:
        return self.request("GET", path, headers, timeout=timeout)

    def wait_for_log(self, text: str, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            if text in log:
                return log
            time.sleep(0.02)
        raise AssertionError(f"{text!r} not in {self.pod}'s log:\n{self.log()}")

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM, as the mesh stops a workload; the app must exit 0 within ``timeout``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"{self.pod} did not exit within {timeout}s of SIGTERM") from None
        return self.process.returncode


class AppRunner:
    """Starts apps as the mesh will; stops every one it started (``stop_all``, from the fixture)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.apps: list[App] = []

    def start(self, relpath: str, name: str, *, proxy: ForwardProxy | None = None,
              env: dict[str, str] | None = None, wait: bool = True) -> App:
        """Starts one app; unless ``wait`` is false, returns once it accepts connections (see ``ready``)."""
        d = deployment(relpath, name)
        ports = [free_port() for _ in d.container_ports]
        pod = pod_name(d.name)
        app_env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_ENV}
        app_env.update(d.env)
        app_env.update(HOSTNAME=pod, POD_NAME=pod, POD_NAMESPACE="default", INSTANCE_IP="127.0.0.1")
        if proxy is not None:
            app_env["HTTP_PROXY"] = app_env["http_proxy"] = proxy.url
        app_env.update(env or {})
        stdout = self.workdir / f"{pod}.out"
        stderr = self.workdir / f"{pod}.err"
        with open(stdout, "wb") as out, open(stderr, "wb") as err:
            process = subprocess.Popen(d.command(ports), cwd=d.manifest.parent, env=app_env,
                                       stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        app = App(d, process, ports[0] if ports else None, pod, stdout, stderr)
        self.apps.append(app)
        if wait:
            self.ready(app)
        return app

    def ready(self, *apps: App) -> None:
        """Waits until each app accepts connections (apps started together warm up together)."""
        for app in apps:
            if app.port is not None:
                self._wait_listening(app)

    def _wait_listening(self, app: App, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if app.process.poll() is not None:
                raise AssertionError(f"{app.pod} exited {app.process.returncode}:\n{app.errors()}")
            try:
                socket.create_connection(("127.0.0.1", app.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.02)
        raise AssertionError(f"{app.pod} not listening on {app.port} after {timeout}s:\n{app.errors()}")

    def stop_all(self) -> list[str]:
        """Stops what is still running; returns a complaint per app that did not exit 0 on SIGTERM."""
        problems = []
        for app in self.apps:
            try:
                code = app.stop()
            except AssertionError as exc:
                problems.append(str(exc))
                continue
            if code != 0:
                problems.append(f"{app.pod} exited {code} on SIGTERM:\n{app.errors()}")
        return problems


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


def request(port: int, method: str, path: str, headers: dict[str, str] | None = None,
            body: bytes | None = None, timeout: float = 15.0) -> Response:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Response(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


# ---- the sidecar's outbound proxy, for tests ---------------------------------------------------
@dataclass
class Seen:
    """One request that went through the proxy."""
    method: str
    authority: str  # "details:9080"
    path: str
    headers: dict[str, str]  # lower-case names
    absolute_form: bool  # sent as a client sends to an HTTP proxy
    status: int = 0


@dataclass
class ForwardProxy:
    routes: dict[str, int] = field(default_factory=dict)  # authority -> local port
    delays: dict[str, float] = field(default_factory=dict)  # authority -> seconds before forwarding
    aborts: dict[str, int] = field(default_factory=dict)  # authority -> status answered instead
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def route(self, authority: str, app: App) -> None:
        assert app.port is not None
        self.routes[authority] = app.port

    def to(self, authority: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.authority == authority]

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def close(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()


def _handler_for(proxy: ForwardProxy) -> type[BaseHTTPRequestHandler]:
    class ProxyHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            url = urllib.parse.urlsplit(self.path)
            absolute = bool(url.scheme and url.netloc)
            authority = url.netloc if absolute else self.headers.get("Host", "")
            path = urllib.parse.urlunsplit(("", "", url.path or "/", url.query, ""))
            headers = {k.lower(): v for k, v in self.headers.items()}
            seen = Seen(self.command, authority, path, headers, absolute)
            proxy.record(seen)
            if authority in proxy.delays and proxy.stopping.wait(proxy.delays[authority]):
                self.close_connection = True
                return
            if authority in proxy.aborts:
                seen.status = proxy.aborts[authority]
                self._reply(seen.status, [("content-type", "text/plain")], b"fault filter abort")
                return
            port = proxy.routes.get(authority)
            if port is None:
                seen.status = 503
                self._reply(503, [("content-type", "text/plain")], b"no healthy upstream")
                return
            forward = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                conn.request(self.command, path, body=body, headers=forward)
                resp = conn.getresponse()
                data = resp.read()
            except OSError:
                seen.status = 503
                self._reply(503, [("content-type", "text/plain")],
                            b"upstream connect error or disconnect/reset before headers")
                return
            finally:
                conn.close()
            seen.status = resp.status
            self._reply(resp.status, [(k, v) for k, v in resp.getheaders()
                                      if k.lower() not in HOP_BY_HOP | {"content-length", "server", "date"}], data)

        do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_GET

        def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            try:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
            except OSError:  # the client gave up (its timeout) before the answer
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ProxyHandler
