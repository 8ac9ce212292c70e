"""Istio's traffic-management tasks on the local mesh, as a user runs them: retries, circuit
breaking, mirroring, ingress host matching and locality failover (the egress tasks are in
test_egress_tasks.py). The YAML is Istio's, from its samples or the task pages, unchanged but
for what a local mesh needs (the ``pilotfish.io/run`` annotation on Deployments).

Each class shares one mesh, brought up once and stopped when the class is done; every test
deletes what it applied, so the tests of a class do not depend on their order.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from .harness import ISTIO_SAMPLES, SAMPLES, Mesh, Reply, counter, eventually, request



# ---------------------------------------------------------------- helpers




def log_count(mesh: Mesh, workload: str, text: str) -> int:
    return mesh.log(workload).count(text)


def with_workdir(docs: list[dict], workdir: Path) -> list[dict]:
    """Deployments run from ``workdir`` (their manifest's directory, recorded as ``up -f`` does
    for a file given in place; needed when the test writes the manifest elsewhere)."""
    for doc in docs:
        if doc and doc.get("kind") == "Deployment":
            doc["spec"]["template"]["metadata"].setdefault("annotations", {})["pilotfish.io/workdir"] = str(workdir)
    return docs


# ---------------------------------------------------------------- httpbin v1 + v2 and sleep

# The mirroring task's second httpbin: the sample's pod template with version v2 (its image is
# go-httpbin, as Istio's samples/httpbin/httpbin.yaml).
HTTPBIN_V2 = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: httpbin-v2
spec:
  replicas: 1
  selector:
    matchLabels:
      app: httpbin
      version: v2
  template:
    metadata:
      labels:
        app: httpbin
        version: v2
      annotations:
        pilotfish.io/run: "{python} src/httpbin.py {port}"
    spec:
      serviceAccountName: httpbin
      containers:
      - image: docker.io/pilotfish/examples-httpbin:0.1.0
        imagePullPolicy: IfNotPresent
        name: httpbin
        ports:
        - containerPort: 8080
"""


@pytest.fixture(scope="class")
def httpbin_mesh(mesh_factory: Callable[..., Mesh], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    v2 = tmp_path_factory.mktemp("manifests") / "httpbin-v2.yaml"
    v2.write_text(yaml.safe_dump_all(with_workdir(list(yaml.safe_load_all(HTTPBIN_V2)), SAMPLES / "httpbin")))
    mesh = mesh_factory(SAMPLES / "httpbin" / "httpbin.yaml", v2, SAMPLES / "sleep" / "sleep.yaml")
    yield mesh
    mesh.down()


HTTPBIN_VERSIONS = ("httpbin", "httpbin-v2")  # the Deployments of v1 (the sample's) and v2


class TestHttpbinTasks:
    def _requests_seen(self, mesh: Mesh, path: str) -> int:
        return sum(log_count(mesh, w, f'"GET {path} HTTP/1.1"') for w in HTTPBIN_VERSIONS)

    def _attempts(self, mesh: Mesh, path: str, expected: int) -> tuple[Reply, int]:
        """The client's reply to GET ``path`` through sleep's sidecar, and how many requests the
        httpbin instances logged for it (once ``expected`` arrived, or the timeout)."""
        reply = request(f"http://httpbin:8000{path}", proxy=mesh.sidecar_proxy("sleep"))
        try:
            eventually(lambda: self._requests_seen(mesh, path) >= expected, timeout=5)
        except AssertionError:
            pass  # fewer than expected: the caller's assertion shows how many
        return reply, self._requests_seen(mesh, path)

    # ------------------------------------------------------------ retries

    def test_retries(self, httpbin_mesh: Mesh) -> None:
        """Istio's retry settings as httpbin sees them: /status/503 with attempts 3 on 5xx is
        tried 4 times; with no VirtualService, Istio's default policy (2 retries on
        retriable-status-codes 503, among others) tries 3 times; ``attempts: 0`` turns retries off."""
        mesh = httpbin_mesh
        reply, seen = self._attempts(mesh, "/status/503?case=default", 3)
        assert (reply.status, seen) == (503, 3), "Istio's default retry policy retries a 503 twice"

        retries = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin
spec:
  hosts:
  - httpbin
  http:
  - route:
    - destination:
        host: httpbin
    retries:
      attempts: %s
"""
        with mesh.applied(retries % "3\n      retryOn: 5xx"):
            reply, seen = self._attempts(mesh, "/status/503?case=attempts-3", 4)
            assert (reply.status, seen) == (503, 4)
        with mesh.applied(retries % "0"):
            reply, seen = self._attempts(mesh, "/status/503?case=attempts-0", 1)
            assert (reply.status, seen) == (503, 1)

    # ------------------------------------------------------------ circuit breaking

    def test_circuit_breaking(self, httpbin_mesh: Mesh) -> None:
        """Istio's circuit-breaking task: with one connection and one pending request allowed,
        three concurrent clients (fortio's ``-c 3``) see some 503s flagged x-envoy-overloaded,
        and the client sidecar's upstream_rq_pending_overflow counts exactly those."""
        mesh = httpbin_mesh
        rule = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: httpbin
spec:
  host: httpbin
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnections: 1
      http:
        http1MaxPendingRequests: 1
        maxRequestsPerConnection: 1
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 3m
      maxEjectionPercent: 100
"""
        sleep = mesh.workloads("sleep")[0]["address"]
        overflow = "cluster.outbound|8000||httpbin.default.svc.cluster.local.upstream_rq_pending_overflow"
        proxy = mesh.sidecar_proxy("sleep")
        with mesh.applied(rule):
            before = counter(sleep, overflow)
            replies: list[Reply] = []
            lock = threading.Lock()

            def client() -> None:
                for _ in range(10):
                    r = request("http://httpbin:8000/get", proxy=proxy)
                    with lock:
                        replies.append(r)

            threads = [threading.Thread(target=client) for _ in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            codes = Counter(r.status for r in replies)
            assert set(codes) <= {200, 503} and codes[200] > 0, codes
            overloaded = [r for r in replies if r.status == 503]
            assert overloaded, f"30 requests on 3 connections never tripped the breaker: {codes}"
            assert all(r.headers.get("x-envoy-overloaded") == "true" for r in overloaded)
            assert counter(sleep, overflow) - before == len(overloaded)

    # ------------------------------------------------------------ mirroring

    def test_mirroring(self, httpbin_mesh: Mesh) -> None:
        """Istio's mirroring task: all traffic to v1 leaves v2's log empty; with ``mirror: v2``
        the responses still come from v1 and v2 logs a copy of each with Host httpbin-shadow:8000."""
        mesh = httpbin_mesh
        subsets = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: httpbin
spec:
  host: httpbin
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
"""
        all_v1 = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin
spec:
  hosts:
    - httpbin
  http:
  - route:
    - destination:
        host: httpbin
        subset: v1
      weight: 100
"""
        mirror = all_v1 + """\
    mirror:
      host: httpbin
      subset: v2
    mirrorPercentage:
      value: 100.0
"""
        proxy = mesh.sidecar_proxy("sleep")
        v1, v2 = HTTPBIN_VERSIONS

        def send(case: str, n: int = 5) -> str:
            path = f"/headers?case={case}"
            for _ in range(n):
                r = request(f"http://httpbin:8000{path}", proxy=proxy)
                assert r.status == 200 and '"httpbin:8000"' in r.body, r
            return f'"GET {path} HTTP/1.1" 200'

        with mesh.applied(subsets, all_v1):
            line = send("all-v1")
            assert log_count(mesh, v1, line + " host=httpbin:8000") == 5
            assert log_count(mesh, v2, line) == 0
            mesh.apply(mirror)
            line = send("mirrored")
            assert log_count(mesh, v1, line + " host=httpbin:8000") == 5
            eventually(lambda: log_count(mesh, v2, line) >= 5, timeout=10)
            assert log_count(mesh, v2, line + " host=httpbin-shadow:8000") == log_count(mesh, v2, line) == 5

    # ------------------------------------------------------------ ingress host matching

    def test_gateway_host_matching(self, httpbin_mesh: Mesh) -> None:
        """Istio's ingress task: the gateway serves httpbin.example.com's /status and /delay,
        answers 404 for its other paths, and 404 for a Host no Gateway server binds."""
        mesh = httpbin_mesh
        gateway = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: httpbin-gateway
spec:
  # The selector matches the ingress gateway pod labels.
  # If you installed Istio using Helm following the standard documentation, this would be "istio=ingress"
  selector:
    istio: ingressgateway
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP
    hosts:
    - "httpbin.example.com"
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin
spec:
  hosts:
  - "httpbin.example.com"
  gateways:
  - httpbin-gateway
  http:
  - match:
    - uri:
        prefix: /status
    - uri:
        prefix: /delay
    route:
    - destination:
        port:
          number: 8000
        host: httpbin
"""
        with mesh.applied(gateway):
            ok = request(f"{mesh.ingress}/status/200", headers={"host": "httpbin.example.com"})
            assert ok.status == 200 and ok.headers.get("server") == "istio-envoy"
            teapot = request(f"{mesh.ingress}/status/418", headers={"host": "httpbin.example.com"})
            assert teapot.status == 418  # httpbin's answer, through the gateway
            assert request(f"{mesh.ingress}/headers", headers={"host": "httpbin.example.com"}).status == 404
            other = request(f"{mesh.ingress}/status/200", headers={"host": "other.example.com"})
            assert other.status == 404 and other.headers.get("server") == "istio-envoy"


# ---------------------------------------------------------------- locality failover

# Istio's locality-failover task: helloworld in four localities (gen-helloworld.sh --version
# LOC, each in a cluster whose nodes carry LOC; here the pod templates carry the topology
# labels), curl in region1.zone1, all in namespace sample.
LOCALITIES = ("region1.zone1", "region1.zone2", "region2.zone3", "region3.zone4")
FAILOVER_RULE = ISTIO_SAMPLES.parent / "istio.io-locality-load-balancing" / "failover-destinationrule.yaml"


def gen_helloworld(version: str) -> str:
    """What ``samples/helloworld/gen-helloworld.sh --version VERSION --includeService false``
    prints."""
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: helloworld-{version}
  labels:
    app: helloworld
    version: {version}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: helloworld
      version: {version}
  template:
    metadata:
      labels:
        app: helloworld
        version: {version}
    spec:
      containers:
      - name: helloworld
        env:
        - name: SERVICE_VERSION
          value: {version}
        image: docker.io/istio/examples-helloworld-v1
        resources:
          requests:
            cpu: "100m"
        imagePullPolicy: IfNotPresent
        ports:
        - containerPort: 5000
"""


def in_locality(doc: dict, locality: str) -> dict:
    region, zone = locality.split(".")
    doc["metadata"]["namespace"] = "sample"
    if doc["kind"] == "Deployment":
        labels = doc["spec"]["template"]["metadata"]["labels"]
        labels.update({"topology.kubernetes.io/region": region, "topology.kubernetes.io/zone": zone})
    return doc


@pytest.fixture(scope="class")
def locality_mesh(mesh_factory: Callable[..., Mesh], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    out = tmp_path_factory.mktemp("locality")
    service = [d for d in yaml.safe_load_all((SAMPLES / "helloworld" / "helloworld.yaml").read_text())
               if d and d["kind"] == "Service"]
    docs = [in_locality(d, "region1.zone1") for d in service]
    run = {"pilotfish.io/run": "{python} src/app.py {port}"}
    for loc in LOCALITIES:
        deployment = yaml.safe_load(gen_helloworld(loc))
        deployment["spec"]["template"]["metadata"]["annotations"] = dict(run)
        docs.append(in_locality(deployment, loc))
    (out / "helloworld.yaml").write_text(yaml.safe_dump_all(with_workdir(docs, SAMPLES / "helloworld")))
    curl = [in_locality(d, "region1.zone1")
            for d in yaml.safe_load_all((SAMPLES / "curl" / "curl.yaml").read_text()) if d]
    (out / "curl.yaml").write_text(yaml.safe_dump_all(with_workdir(curl, SAMPLES / "curl")))
    mesh = mesh_factory(out / "helloworld.yaml", out / "curl.yaml")
    yield mesh
    mesh.down()


class TestLocalityFailover:
    """Istio's locality-failover task with its DestinationRule (outlierDetection plus
    ``failover: region1 → region2``), requests from curl in region1.zone1."""

    def _versions(self, mesh: Mesh, n: int) -> Counter[str]:
        """Which helloworld versions (here: localities) answer ``n`` requests from curl."""
        got: Counter[str] = Counter()
        for _ in range(n):
            r = request("http://helloworld.sample:5000/hello", proxy=mesh.sidecar_proxy("curl"), timeout=10)
            m = re.match(r"Hello version: (\S+),", r.body)
            got[m.group(1) if m else f"HTTP {r.status}"] += 1
        return got

    def _served_by(self, mesh: Mesh, locality: str, timeout: float = 30) -> None:
        eventually(lambda: self._versions(mesh, 2) == Counter({locality: 2}), timeout=timeout)
        assert self._versions(mesh, 6) == Counter({locality: 6})

    def test_failover_follows_the_localities(self, locality_mesh: Mesh) -> None:
        """Traffic stays in region1.zone1; with that instance gone (its Deployment deleted) it
        fails over to region1.zone2 (same region); with that gone too, to region2.zone3 as
        ``failover: region1 → region2`` says, not to region3.zone4."""
        mesh = locality_mesh
        mesh.apply(FAILOVER_RULE)
        assert self._versions(mesh, 12) == Counter({"region1.zone1": 12})
        for gone, next_ in (("region1.zone1", "region1.zone2"), ("region1.zone2", "region2.zone3")):
            mesh.delete(yaml.safe_dump(in_locality(yaml.safe_load(gen_helloworld(gone)), gone)))
            self._served_by(mesh, next_)

    def test_drained_instance_fails_over(self, locality_mesh: Mesh) -> None:
        """The task's way to fail an instance: drain its sidecar's listeners. Its readiness fails
        (the proxy is no longer LIVE), its Pod turns NotReady and its endpoint unhealthy, as on
        Kubernetes, and traffic moves on to the next locality. (Outlier detection alone would not
        eject it: with four endpoints Envoy's default maxEjectionPercent of 10% ejects none.)"""
        mesh = locality_mesh
        mesh.apply(FAILOVER_RULE)
        (serving, _), = self._versions(mesh, 2).most_common(1)
        address = next(w["address"] for w in mesh.workloads("helloworld") if w["labels"]["version"] == serving)
        assert request(f"http://{address}:15000/drain_listeners", method="POST", data=b"").status == 200

        def moved_on() -> bool:
            got = self._versions(mesh, 2)
            return serving not in got and not any(k.startswith("HTTP") for k in got)

        eventually(moved_on, timeout=8)
