"""istiod at scale: 1,000 services with 10,000 endpoints, 1,000 VirtualServices and 1,000
DestinationRules, served to 100 ADS clients (sidecars in ten namespaces, ingress gateways).

The config is Istio YAML written under a temporary directory (ServiceEntries with their
WorkloadEntries, DestinationRules with subsets and a trafficPolicy, VirtualServices with a
header-matched and a weighted route; half the namespaces scope their sidecars with a Sidecar).
``pilotfish istiod`` runs as its own process on that directory, and the clients are raw
``grpc.aio`` ADS streams in this one that subscribe as Envoy does (CDS and LDS, then EDS for the
EDS clusters and RDS for the routes the listeners name) and ACK every response. Measured:

(a) convergence: one VirtualService edited in its file → every client that the change affects
    has ACKed the new version (seen from the clients' ACKs; clients it does not affect should
    get nothing);
(b) a full push: a new PushContext plus CDS, EDS, LDS and RDS for every client, serialized as
    the ADS server does (in this process, the same code istiod runs);
(c) one sidecar's and one gateway's CDS and RDS;
(d) istiod's resident memory once every client is in sync.

Targets: converged in < 1 s, RSS < 500 MB. ``python benchmarks/istiod_scale.py [--profile]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from pilotfish.istiod.config_dir import ConfigDir
from pilotfish.pilot.generate import generate
from pilotfish.pilot.proxy import Proxy, proxy_from_node
from pilotfish.pilot.push_context import PushContext
from pilotfish.registry.build import build_registry
from pilotfish.registry.model import Locality
from pilotfish.xds.connection import EncodeCache, encoded
from pilotfish.xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE

PILOTFISH = [sys.executable, "-c", "from pilotfish.cli.main import main; main()"]
CONVERGE_TARGET_S = 1.0
RSS_TARGET_MB = 500.0


# ---------------------------------------------------------------------------- the config


@dataclass(frozen=True)
class Scale:
    namespaces: int = 10
    services: int = 1_000
    endpoints_per_service: int = 10
    sidecars: int = 96
    gateways: int = 4
    gateway_every: int = 20  # every Nth VirtualService also binds the ingress gateway
    grpc_every: int = 4  # every Nth service also has a gRPC port

    @property
    def per_namespace(self) -> int:
        return self.services // self.namespaces

    def namespace_of(self, service: int) -> str:
        return f"ns-{service // self.per_namespace}"

    def scoped(self, namespace: str) -> bool:
        """Odd namespaces have a Sidecar limiting egress to their own namespace and istio-system."""
        return int(namespace.removeprefix("ns-")) % 2 == 1


def _svc(i: int) -> str:
    return f"svc-{i:04d}"


def _address(n: int) -> str:
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def _endpoint_address(scale: Scale, service: int, e: int) -> str:
    return _address(1 + service * scale.endpoints_per_service + e)


def service_entries(scale: Scale, ns: str, services: Iterable[int]) -> str:
    docs = []
    for i in services:
        ports = "[{number: 8080, name: http, protocol: HTTP}" + (
            ", {number: 9090, name: grpc, protocol: GRPC}]" if i % scale.grpc_every == 0 else "]")
        docs.append(f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {_svc(i)}, namespace: {ns}}}
spec:
  hosts: [{_svc(i)}.{ns}.svc.cluster.local]
  addresses: [240.240.{i >> 8}.{i & 255}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: {ports}
  workloadSelector: {{labels: {{app: {_svc(i)}}}}}
""")
    return "---\n".join(docs)


def workload_entries(scale: Scale, ns: str, services: Iterable[int]) -> str:
    docs = []
    for i in services:
        for e in range(scale.endpoints_per_service):
            docs.append(f"""apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: {_svc(i)}-{e}, namespace: {ns}}}
spec:
  address: {_endpoint_address(scale, i, e)}
  labels: {{app: {_svc(i)}, version: v{1 + e % 2}}}
  locality: region-1/zone-{e % 3}
""")
    return "---\n".join(docs)


def destination_rules(ns: str, services: Iterable[int]) -> str:
    docs = []
    for i in services:
        docs.append(f"""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: {_svc(i)}, namespace: {ns}}}
spec:
  host: {_svc(i)}
  trafficPolicy:
    connectionPool:
      tcp: {{maxConnections: 100}}
      http: {{http1MaxPendingRequests: 100, maxRequestsPerConnection: 10}}
    outlierDetection: {{consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s}}
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - name: v2
    labels: {{version: v2}}
    trafficPolicy: {{loadBalancer: {{simple: LEAST_REQUEST}}}}
""")
    return "---\n".join(docs)


def virtual_services(scale: Scale, ns: str, services: Iterable[int], edited: int | None = None) -> str:
    """One per service; ``edited`` gets other weights (the change the benchmark makes)."""
    docs = []
    for i in services:
        v1, v2 = (70, 30) if i == edited else (90, 10)
        bound = i % scale.gateway_every == 0
        hosts = f"[{_svc(i)}, {_svc(i)}.example.com]" if bound else f"[{_svc(i)}]"
        gateways = "\n  gateways: [mesh, istio-system/ingress]" if bound else ""
        docs.append(f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {_svc(i)}, namespace: {ns}}}
spec:
  hosts: {hosts}{gateways}
  http:
  - match: [{{headers: {{x-canary: {{exact: "yes"}}}}}}]
    route: [{{destination: {{host: {_svc(i)}.{ns}.svc.cluster.local, subset: v2}}}}]
    timeout: 2s
  - route:
    - {{destination: {{host: {_svc(i)}.{ns}.svc.cluster.local, subset: v1}}, weight: {v1}}}
    - {{destination: {{host: {_svc(i)}.{ns}.svc.cluster.local, subset: v2}}, weight: {v2}}}
    retries: {{attempts: 3, perTryTimeout: 1s}}
""")
    return "---\n".join(docs)


GATEWAY = """apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*/*.example.com"]
"""


def sidecar(ns: str) -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: default, namespace: {ns}}}
spec:
  egress:
  - hosts: ["./*", "istio-system/*"]
"""


def write_config(root: Path, scale: Scale) -> None:
    """The whole mesh as files: one per namespace and kind."""
    for n in range(scale.namespaces):
        ns = f"ns-{n}"
        services = range(n * scale.per_namespace, (n + 1) * scale.per_namespace)
        d = root / ns
        d.mkdir(parents=True, exist_ok=True)
        (d / "serviceentries.yaml").write_text(service_entries(scale, ns, services))
        (d / "workloadentries.yaml").write_text(workload_entries(scale, ns, services))
        (d / "destinationrules.yaml").write_text(destination_rules(ns, services))
        (d / "virtualservices.yaml").write_text(virtual_services(scale, ns, services))
        if scale.scoped(ns):
            (d / "sidecar.yaml").write_text(sidecar(ns))
    (root / "istio-system").mkdir(exist_ok=True)
    (root / "istio-system" / "gateway.yaml").write_text(GATEWAY)


def edit_virtual_service(root: Path, scale: Scale, service: int) -> None:
    """Rewrite the file holding ``service``'s VirtualService with new weights (atomic rename)."""
    ns = scale.namespace_of(service)
    n = int(ns.removeprefix("ns-"))
    services = range(n * scale.per_namespace, (n + 1) * scale.per_namespace)
    path = root / ns / "virtualservices.yaml"
    tmp = path.with_name(".virtualservices.yaml.tmp")
    tmp.write_text(virtual_services(scale, ns, services, edited=service))
    os.replace(tmp, path)


# ---------------------------------------------------------------------------- the clients


@dataclass(frozen=True)
class ClientSpec:
    node_id: str
    namespace: str
    labels: dict[str, str]
    gateway: bool

    def node(self) -> base_pb2.Node:
        node = base_pb2.Node(id=self.node_id, cluster=self.labels.get("app", "istio-ingressgateway"))
        node.metadata.update({"NAMESPACE": self.namespace, "LABELS": self.labels})
        node.locality.region, node.locality.zone = "region-1", "zone-0"
        return node

    def proxy(self) -> Proxy:
        return proxy_from_node(self.node_id, {"NAMESPACE": self.namespace, "LABELS": self.labels},
                               Locality("region-1", "zone-0"))


def client_specs(scale: Scale) -> list[ClientSpec]:
    """Sidecars spread over the namespaces, each at one of its service's endpoint addresses
    (a known workload, as a pod would be), then the ingress gateways."""
    out = []
    for k in range(scale.sidecars):
        service = (k * scale.services // scale.sidecars + k) % scale.services
        ns = scale.namespace_of(service)
        e = k % scale.endpoints_per_service
        ip = _endpoint_address(scale, service, e)
        labels = {"app": _svc(service), "version": f"v{1 + e % 2}"}
        out.append(ClientSpec(f"sidecar~{ip}~{_svc(service)}-{e}.{ns}~{ns}.svc.cluster.local", ns, labels, False))
    for g in range(scale.gateways):
        out.append(ClientSpec(f"router~10.255.0.{g + 1}~ingress-{g}.istio-system~istio-system.svc.cluster.local",
                              "istio-system", {"istio": "ingressgateway"}, True))
    return out


def affected_by_vs_edit(scale: Scale, specs: Sequence[ClientSpec], service: int) -> list[int]:
    """Indexes of the clients whose routes name ``service``: sidecars that see its namespace
    (unscoped, or in it), and the gateways when its VirtualService binds them."""
    ns = scale.namespace_of(service)
    out = []
    for i, s in enumerate(specs):
        if s.gateway:
            if service % scale.gateway_every == 0:
                out.append(i)
        elif not scale.scoped(s.namespace) or s.namespace == ns:
            out.append(i)
    return out


def route_names(listeners: Iterable[listener_pb2.Listener]) -> set[str]:
    names = set()
    for lst in listeners:
        for chain in [*lst.filter_chains, lst.default_filter_chain]:
            for f in chain.filters:
                if f.typed_config.type_url.endswith("HttpConnectionManager"):
                    hcm = hcm_pb2.HttpConnectionManager.FromString(f.typed_config.value)
                    if hcm.HasField("rds"):
                        names.add(hcm.rds.route_config_name)
    return names


def eds_names(clusters: Iterable[cluster_pb2.Cluster]) -> set[str]:
    return {c.eds_cluster_config.service_name or c.name for c in clusters if c.type == cluster_pb2.Cluster.EDS}


class AdsStream:
    """One proxy's ADS stream: subscribes as Envoy does and ACKs everything it gets, noting
    when it ACKed which version of which type."""

    def __init__(self, spec: ClientSpec, target: str) -> None:
        self.spec = spec
        self.target = target
        self.names: dict[str, set[str]] = {CLUSTER: set(), LISTENER: set()}
        self.nonces: dict[str, str] = {}
        self.versions: dict[str, str] = {}
        self.acks: list[tuple[float, str, str]] = []  # (monotonic time, type URL, version)
        self.last_response = 0.0
        self._out: asyncio.Queue[discovery_pb2.DiscoveryRequest] = asyncio.Queue()
        self._first = True

    def _request(self, type_url: str, version: str = "", nonce: str = "") -> None:
        req = discovery_pb2.DiscoveryRequest(type_url=type_url, version_info=version, response_nonce=nonce,
                                             resource_names=sorted(self.names[type_url]))
        if self._first:
            req.node.CopyFrom(self.spec.node())
            self._first = False
        self._out.put_nowait(req)

    async def _requests(self) -> Any:
        while True:
            yield await self._out.get()

    def synced(self) -> bool:
        return all(t in self.versions for t in (CLUSTER, LISTENER, ENDPOINT, ROUTE))

    async def run(self) -> None:
        async with grpc.aio.insecure_channel(self.target) as channel:
            stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
            self._request(CLUSTER)
            self._request(LISTENER)
            call = stub.StreamAggregatedResources(self._requests())
            async for resp in call:
                self._on_response(resp)

    def _on_response(self, resp: discovery_pb2.DiscoveryResponse) -> None:
        type_url = resp.type_url
        follow: tuple[str, set[str]] | None = None
        if type_url == CLUSTER:
            follow = (ENDPOINT, eds_names(cluster_pb2.Cluster.FromString(a.value) for a in resp.resources))
        elif type_url == LISTENER:
            follow = (ROUTE, route_names(listener_pb2.Listener.FromString(a.value) for a in resp.resources))
        self.nonces[type_url] = resp.nonce
        self.versions[type_url] = resp.version_info
        self._request(type_url, resp.version_info, resp.nonce)  # the ACK
        now = time.monotonic()
        self.acks.append((now, type_url, resp.version_info))
        self.last_response = now
        if follow is not None and follow[1] != self.names.get(follow[0]):
            self.names[follow[0]] = follow[1]
            self._request(follow[0], self.versions.get(follow[0], ""), self.nonces.get(follow[0], ""))


# ---------------------------------------------------------------------------- end to end


@dataclass
class EndToEnd:
    load_s: float = 0.0  # istiod process start -> serving
    clients: int = 0
    synced: int = 0  # clients holding all four types when the sync wait ended
    sync_s: float | None = None  # every client connected and holding all four types
    converge_s: float | None = None  # file written -> the last affected client ACKed
    converge_first_s: float | None = None
    affected: int = 0
    acked: int = 0
    unaffected_pushed: int = 0
    rss_mb: float = 0.0
    peak_rss_mb: float = 0.0


def _rss_mb(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return rss / 1024, hwm / 1024


async def _until(check: Callable[[], bool], timeout: float) -> bool:
    """Whether ``check()`` came to hold within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


def _quiet(streams: Sequence[AdsStream], for_s: float) -> Callable[[], bool]:
    """No client has heard anything for ``for_s`` seconds (the pushes a change sets off are over)."""
    return lambda: time.monotonic() - max(s.last_response for s in streams) > for_s


async def end_to_end(root: Path, scale: Scale, budget_s: float, edited: int = 0) -> EndToEnd:
    """istiod as a process and every client connected to it; each wait is bounded by
    ``budget_s`` and a figure not reached in time is reported as such (None)."""
    out = EndToEnd()
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *PILOTFISH, "istiod", "--config-dir", str(root), "--xds-port", "0", "--http-port", "0",
        "--log-level", "warning", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    tasks: list[asyncio.Task[None]] = []
    try:
        assert proc.stderr is not None
        line = ""
        while "istiod ready" not in line:
            raw = await asyncio.wait_for(proc.stderr.readline(), 120)
            if not raw:
                raise RuntimeError("istiod exited before it was ready")
            line = raw.decode()
        out.load_s = time.monotonic() - started
        port = int(re.search(r"xds [\d.]+:(\d+)", line).group(1))  # type: ignore[union-attr]
        drain = asyncio.get_running_loop().create_task(_drain(proc.stderr))

        specs = client_specs(scale)
        streams = [AdsStream(s, f"127.0.0.1:{port}") for s in specs]
        out.clients = len(streams)
        began = time.monotonic()
        tasks = [asyncio.get_running_loop().create_task(s.run()) for s in streams] + [drain]
        synced = await _until(lambda: all(s.synced() for s in streams), budget_s)
        out.synced = sum(s.synced() for s in streams)
        out.rss_mb, out.peak_rss_mb = _rss_mb(proc.pid)
        if not synced:
            return out
        out.sync_s = time.monotonic() - began
        if not await _until(_quiet(streams, 1.0), budget_s):
            return out
        out.rss_mb, out.peak_rss_mb = _rss_mb(proc.pid)

        affected = set(affected_by_vs_edit(scale, specs, edited))
        before = {i: len(s.acks) for i, s in enumerate(streams)}
        baseline = max(int(s.versions[ROUTE]) for s in streams)

        def fresh(i: int) -> list[tuple[float, str, str]]:
            return [a for a in streams[i].acks[before[i]:] if int(a[2]) > baseline]

        t0 = time.monotonic()
        edit_virtual_service(root, scale, edited)
        converged = await _until(lambda: all(any(a[1] == ROUTE for a in fresh(i)) for i in affected), budget_s)
        if converged:
            await _until(_quiet(streams, 0.5), budget_s)  # anything else the change sets off
        out.affected = len(affected)
        out.acked = sum(1 for i in affected if any(a[1] == ROUTE for a in fresh(i)))
        out.unaffected_pushed = sum(1 for i in range(len(streams)) if i not in affected and fresh(i))
        times = [a[0] for i in affected for a in fresh(i)]
        if converged:
            out.converge_s = max(times) - t0
        if times:
            out.converge_first_s = min(times) - t0
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
    return out


async def _drain(reader: asyncio.StreamReader) -> None:
    while await reader.readline():
        pass


# ---------------------------------------------------------------------------- in process


def push_context(root: Path) -> PushContext:
    config = ConfigDir(root)
    config.load_all()
    resources = config.resources()
    return PushContext(resources=resources, registry=build_registry(resources), version="1")


_ENCODED: EncodeCache = {}  # as the ADS server keeps it: each message serialized once per version


def _serialized(resources: Iterable[Any]) -> int:
    """Bytes of ``resources`` as the ADS server serializes them (a message several proxies share
    is serialized once per version: xds.connection.encode's cache)."""
    return sum(len(encoded(r, _ENCODED)) for r in resources)


@dataclass
class FullPush:
    """Seconds per stage of one push to ``done`` of ``clients`` (all, unless the budget ran out)."""

    stages: dict[str, float]
    done: int
    clients: int

    @property
    def total(self) -> float:
        return sum(self.stages.values())


def full_push(push: PushContext, specs: Sequence[ClientSpec], budget_s: float = float("inf")) -> FullPush:
    """What a push does: a new PushContext from the config in force, then every type for every
    client, generated and serialized, stopping early once ``budget_s`` is spent."""
    stages = {"push context": 0.0, CLUSTER: 0.0, ENDPOINT: 0.0, LISTENER: 0.0, ROUTE: 0.0}
    began = time.perf_counter()
    push = PushContext(resources=push.resources, registry=build_registry(push.resources), version="2")
    _ENCODED.clear()  # a new version
    stages["push context"] = time.perf_counter() - began
    done = 0
    for spec in specs:
        if time.perf_counter() - began > budget_s:
            break
        proxy = spec.proxy()
        t = time.perf_counter()
        clusters = generate(push, proxy, CLUSTER)
        _serialized(clusters.values())
        stages[CLUSTER] += time.perf_counter() - t
        t = time.perf_counter()
        _serialized(generate(push, proxy, ENDPOINT, eds_names(clusters.values())).values())
        stages[ENDPOINT] += time.perf_counter() - t
        t = time.perf_counter()
        listeners = generate(push, proxy, LISTENER)
        _serialized(listeners.values())
        stages[LISTENER] += time.perf_counter() - t
        t = time.perf_counter()
        _serialized(generate(push, proxy, ROUTE, route_names(listeners.values())).values())
        stages[ROUTE] += time.perf_counter() - t
        done += 1
    return FullPush(stages, done, len(specs))


def per_proxy(push: PushContext, spec: ClientSpec, rounds: int = 5) -> tuple[float, float, int, int]:
    """Median seconds for one proxy's CDS and RDS (generated and serialized), and their sizes,
    as the first proxy of its kind in a push: each round starts from a fresh PushContext, so
    nothing another proxy made is reused."""
    proxy = spec.proxy()
    routes = route_names(generate(push, proxy, LISTENER).values())
    cds, rds = [], []
    n_c = n_r = 0
    for _ in range(rounds):
        push = PushContext(resources=push.resources, registry=push.registry, mesh=push.mesh, version=push.version)
        _ENCODED.clear()
        t = time.perf_counter()
        clusters = generate(push, proxy, CLUSTER)
        _serialized(clusters.values())
        cds.append(time.perf_counter() - t)
        t = time.perf_counter()
        configs = generate(push, proxy, ROUTE, routes)
        _serialized(configs.values())
        rds.append(time.perf_counter() - t)
        n_c, n_r = len(clusters), sum(len(r.virtual_hosts) for r in configs.values())
    return statistics.median(cds), statistics.median(rds), n_c, n_r


def profile_full_push(push: PushContext, specs: Sequence[ClientSpec], budget_s: float, top: int = 30) -> str:
    prof = cProfile.Profile()
    prof.enable()
    full_push(push, specs, budget_s)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    return buf.getvalue()


# ---------------------------------------------------------------------------- the table


def run(scale: Scale = Scale(), budget_s: float = 30.0, profile: bool = False) -> list[tuple[str, str, str]]:
    """Every figure as (benchmark, result, notes) rows. Each measurement stops after
    ``budget_s`` seconds; a figure not reached by then is reported as more than the budget."""
    with tempfile.TemporaryDirectory(prefix="pilotfish-scale-") as tmp:
        root = Path(tmp) / "config"
        write_config(root, scale)
        specs = client_specs(scale)
        t = time.perf_counter()
        push = push_context(root)
        load = time.perf_counter() - t
        sidecar = next(s for s in specs if not s.gateway and not scale.scoped(s.namespace))
        scoped = next(s for s in specs if not s.gateway and scale.scoped(s.namespace))
        gateway = next(s for s in specs if s.gateway)
        per = {name: per_proxy(push, s) for name, s in (("sidecar", sidecar), ("sidecar scoped by a Sidecar", scoped),
                                                          ("gateway", gateway))}
        fp = full_push(push, specs, budget_s)
        if profile:
            print(profile_full_push(push, specs, budget_s), file=sys.stderr)
        del push
        e2e = asyncio.run(end_to_end(root, scale, budget_s))
    rows = [
        ("mesh", f"{scale.services:,} services", f"{scale.services * scale.endpoints_per_service:,} endpoints, "
         f"{scale.services:,} VirtualServices + {scale.services:,} DestinationRules, "
         f"{scale.sidecars} sidecars ({scale.namespaces} namespaces, half scoped) + {scale.gateways} gateways"),
        ("config load + registry + PushContext, in process", f"{load:.2f} s", f"{_count_files(scale)} files"),
    ]
    for name, (cds, rds, n_c, n_r) in per.items():
        rows.append((f"(c) {name}: CDS / RDS", f"{cds * 1e3:,.0f} / {rds * 1e3:,.0f} ms",
                     f"{n_c:,} clusters, {n_r:,} virtual hosts"))
    stages = ", ".join(f"{_short(k)} {v:.2f}" for k, v in fp.stages.items())
    if fp.done == fp.clients:
        rows.append(("(b) full push, in process", f"{fp.total:.2f} s", stages))
    else:
        projected = fp.stages["push context"] + (fp.total - fp.stages["push context"]) * fp.clients / max(1, fp.done)
        rows.append(("(b) full push, in process", f"> {budget_s:.0f} s",
                     f"{fp.done}/{fp.clients} clients in {fp.total:.1f} s ({stages}); ~{projected:.0f} s for all"))
    rows.append(("istiod start (load, validate, first PushContext)", f"{e2e.load_s:.2f} s", "process start to serving"))
    if e2e.sync_s is not None:
        rows.append((f"{e2e.clients} clients connected and in sync", f"{e2e.sync_s:.2f} s", "CDS, EDS, LDS, RDS each ACKed"))
    else:
        rows.append((f"{e2e.clients} clients connected and in sync", f"> {budget_s:.0f} s",
                     f"{e2e.synced}/{e2e.clients} in sync when the wait ended"))
    target = f"target < {CONVERGE_TARGET_S:.0f} s"
    if e2e.converge_s is not None:
        verdict = "ok" if e2e.converge_s < CONVERGE_TARGET_S else "MISSED"
        rows.append(("(a) one VirtualService edited -> affected clients ACKed", f"{e2e.converge_s:.2f} s",
                     f"first ACK {e2e.converge_first_s:.2f} s; {e2e.acked}/{e2e.affected} affected, "
                     f"{e2e.unaffected_pushed} unaffected pushed; {target}: {verdict}"))
    elif e2e.affected:
        rows.append(("(a) one VirtualService edited -> affected clients ACKed", f"> {budget_s:.0f} s",
                     f"{e2e.acked}/{e2e.affected} affected ACKed in time; {target}: MISSED"))
    else:
        rows.append(("(a) one VirtualService edited -> affected clients ACKed", "not measured",
                     f"the clients were not in sync; {target}: MISSED"))
    verdict = "ok" if e2e.rss_mb < RSS_TARGET_MB else "MISSED"
    rows.append(("(d) istiod RSS", f"{e2e.rss_mb:.0f} MB",
                 f"peak {e2e.peak_rss_mb:.0f} MB; target < {RSS_TARGET_MB:.0f} MB: {verdict}"))
    return rows


def _count_files(scale: Scale) -> int:
    return scale.namespaces * 4 + sum(scale.scoped(f"ns-{n}") for n in range(scale.namespaces)) + 1


def _short(type_url: str) -> str:
    return {CLUSTER: "CDS", ENDPOINT: "EDS", LISTENER: "LDS", ROUTE: "RDS"}.get(type_url, type_url)


def table(rows: Sequence[tuple[str, str, str]]) -> list[str]:
    rows = [("benchmark", "result", "notes"), *rows]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    out = []
    for i, row in enumerate(rows):
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
        if i == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=1_000)
    parser.add_argument("--sidecars", type=int, default=96)
    parser.add_argument("--budget", type=float, default=30.0, help="seconds each measurement may take")
    parser.add_argument("--profile", action="store_true", help="cProfile the full push (to stderr)")
    args = parser.parse_args(argv)
    scale = Scale(services=args.services, sidecars=args.sidecars)
    print("\n".join(table(run(scale, args.budget, args.profile))))


if __name__ == "__main__":
    main()
