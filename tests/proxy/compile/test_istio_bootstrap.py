"""Istio's sidecar bootstrap, as pilot-agent renders it, starts the proxy unchanged.

``data/istio-sidecar-bootstrap.json`` is a rendering of Istio's bootstrap template
(``tools/packaging/common/envoy_bootstrap.json`` in istio/istio, Apache License 2.0, Copyright
Istio Authors) for a Bookinfo ``productpage`` sidecar, in the shape Istio 1.2x writes to
``/etc/istio/proxy/envoy-rev.json``: node metadata, ``xds-grpc`` on the agent's unix socket
``./etc/istio/proxy/XDS``, ``sds-grpc``, ``prometheus_stats``, ``agent``, the 15090 (Prometheus)
and 15021 (health) listeners, ``stats_config`` with Istio's stats_tags (``cluster_name`` as the
template has it since Istio 1.23, for the ``;``-delimited ``alt_stat_name``) and inclusion
matcher, ``layered_runtime``, the internal-listener bootstrap extension. ``api_type`` is ``GRPC`` (state
of the world); Istio writes ``DELTA_GRPC`` when delta xDS is on, which is refused (below).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from pilotfish.proxy.compile.bootstrap_file import load_bootstrap, parse_bootstrap
from pilotfish.proxy.compile import compile_bootstrap
from pilotfish.proxy.common.errors import ProxyConfigError
from pilotfish.xds.settings import ads_settings
from pilotfish.xds.testing import FakeAds
from pilotfish.xds.type_urls import CLUSTER, LISTENER

from ..conftest import Backend, Reply, client, running_proxy

FIXTURE = Path(__file__).parent.parent / "data" / "istio-sidecar-bootstrap.json"
PILOTFISH = [sys.executable, "-c", "from pilotfish.cli.main import main; main()"]

#: Every warning the fixture draws (the field, or the cluster, it names).
EXPECTED_WARNINGS = {
    "application_log_config", "stats_config.stats_matcher", "cluster_manager.enable_deferred_cluster_creation",
    "deferred_stat_options",
    # layered_runtime: the keys no supported feature reads (a feature flag at its Envoy default, regex
    # limits, deprecated fields; the global connection limit of 2^31-1 is honoured)
    *(f"layered_runtime.layers[0].static_layer[{k!r}]" for k in (
        "envoy.reloadable_features.http_reject_path_with_fragment", "re2.max_program_size.error_level",
        "envoy.deprecated_features:envoy.config.listener.v3.Listener.hidden_envoy_deprecated_use_original_dst")),
    "admin.access_log", "admin.profile_path", "bootstrap_extensions[0] (envoy.bootstrap.internal_listener)",
    "static_resources.clusters[2] (sds-grpc)",  # SDS: not run until TLS exists
    "static_resources.clusters[3].upstream_connection_options",  # xds-grpc's TCP keepalive
}


def istio_doc() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def _clusters(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in doc["static_resources"]["clusters"]}


def _endpoint_address(cluster: dict[str, Any]) -> dict[str, Any]:
    return cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]


def _route(doc: dict[str, Any], listener: int = 0) -> dict[str, Any]:
    hcm = doc["static_resources"]["listeners"][listener]["filter_chains"][0]["filters"][0]["typed_config"]
    return hcm["route_config"]["virtual_hosts"][0]["routes"][0]["route"]


def _warned(warnings: list[str]) -> set[str]:
    return {w.split(": ", 1)[0] for w in warnings}


def error_of(doc: dict[str, Any]) -> ProxyConfigError:
    with pytest.raises(ProxyConfigError) as info:
        loaded = parse_bootstrap(doc)
        compile_bootstrap(loaded.message, warnings=loaded.warnings)
    return info.value


# ---- loading ------------------------------------------------------------------------------------
def test_fixture_loads_with_only_the_documented_warnings() -> None:
    loaded = load_bootstrap(FIXTURE)
    assert _warned(loaded.warnings) == EXPECTED_WARNINGS, loaded.warnings
    stats_warning = next(w for w in loaded.warnings if w.startswith("stats_config"))
    assert "stats_matcher" in stats_warning  # stats_tags are applied (compile/stats_config.py)
    compiled = compile_bootstrap(loaded.message, warnings=loaded.warnings)
    # xds-grpc is the gRPC client's and sds-grpc is not run: neither is a data-path cluster
    assert set(compiled.runtime.clusters) == {"prometheus_stats", "agent"}
    assert [lc.name for lc in compiled.runtime.listeners] == ["0.0.0.0_15090", "0.0.0.0_15021"]
    settings = ads_settings(loaded.message)
    assert settings is not None
    assert settings.target == "unix:./etc/istio/proxy/XDS"  # relative to the working directory, as Envoy
    assert settings.authority == "xds-grpc" and settings.node_on_first_message_only
    assert settings.initial_fetch_timeout == 0 and settings.lds and settings.cds


def test_ads_cluster_on_tcp_and_abstract_socket() -> None:
    doc = istio_doc()
    xds = _clusters(doc)["xds-grpc"]
    xds["type"] = "STRICT_DNS"
    xds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] = {
        "socket_address": {"address": "istiod.istio-system.svc", "port_value": 15010}}
    assert ads_settings(parse_bootstrap(doc).message).target == "istiod.istio-system.svc:15010"
    _endpoint_address(xds).clear()
    _endpoint_address(xds)["pipe"] = {"path": "@istio-xds", "mode": 0o600}
    assert ads_settings(parse_bootstrap(doc).message).target == "unix-abstract:istio-xds"


def test_tracing_and_other_grpc_service_clusters_are_warnings() -> None:
    doc = istio_doc()
    doc["static_resources"]["clusters"].append({
        "name": "zipkin", "type": "STRICT_DNS", "respect_dns_ttl": True, "dns_lookup_family": "V4_ONLY",
        "dns_refresh_rate": "30s", "connect_timeout": "1s", "lb_policy": "ROUND_ROBIN",
        "load_assignment": {"cluster_name": "zipkin", "endpoints": [{"lb_endpoints": [{"endpoint": {
            "address": {"socket_address": {"address": "zipkin.istio-system", "port_value": 9411}}}}]}]}})
    als = copy.deepcopy(_clusters(doc)["sds-grpc"])
    als["name"] = "envoy_accesslog_service"
    _endpoint_address(als).clear()
    _endpoint_address(als)["socket_address"] = {"address": "als.example", "port_value": 9000}
    doc["static_resources"]["clusters"].append(als)
    doc["tracing"] = {"http": {"name": "envoy.tracers.zipkin", "typed_config": {
        "@type": "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig", "collector_cluster": "zipkin",
        "collector_endpoint": "/api/v2/spans", "collector_endpoint_version": "HTTP_JSON",
        "trace_id_128bit": True, "shared_span_context": False}}}
    loaded = parse_bootstrap(doc)
    assert _warned(loaded.warnings) - EXPECTED_WARNINGS == {
        "tracing", "static_resources.clusters[4].respect_dns_ttl",
        "static_resources.clusters[5] (envoy_accesslog_service)"}


# ---- what stays an error ------------------------------------------------------------------------
def _route_to(cluster: str):
    return lambda d: _route(d).update(cluster=cluster)


def _h2_on_data_cluster(d: dict[str, Any]) -> None:
    _clusters(d)["agent"]["typed_extension_protocol_options"] = copy.deepcopy(
        _clusters(d)["sds-grpc"]["typed_extension_protocol_options"])


def _pipe_on_data_cluster(d: dict[str, Any]) -> None:
    _clusters(d)["agent"]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] = {
        "pipe": {"path": "/tmp/agent.sock"}}


def _sds_on_listener(d: dict[str, Any]) -> None:
    d["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"] = {
        "name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "common_tls_context": {"tls_certificate_sds_secret_configs": [{"name": "default", "sds_config": {
                "api_config_source": {"api_type": "GRPC", "transport_api_version": "V3",
                                      "grpc_services": [{"envoy_grpc": {"cluster_name": "sds-grpc"}}]}}}]}}}


def _unknown_extension(d: dict[str, Any]) -> None:
    d["bootstrap_extensions"][0]["typed_config"]["type_url"] = (
        "type.googleapis.com/envoy.extensions.wasm.v3.WasmService")


@pytest.mark.parametrize(("mutate", "path", "words"), [
    (_route_to("sds-grpc"), ("listeners[0].filter_chains[0].filters[0].typed_config.route_config"
                             ".virtual_hosts[0].routes[0].route.cluster"), "HTTP/2 upstreams are not supported"),
    (_route_to("xds-grpc"), "routes[0].route.cluster", "ADS cluster"),
    (_h2_on_data_cluster, ("static_resources.listeners[1].filter_chains[0].filters[0].typed_config"
                           ".route_config.virtual_hosts[0].routes[0].route.cluster"), "'agent' uses HTTP/2"),
    (_pipe_on_data_cluster, ("static_resources.clusters[1].load_assignment.endpoints[0].lb_endpoints[0]"
                             ".endpoint.address.pipe"), "unix socket"),
    (_sds_on_listener, "static_resources.listeners[0].filter_chains[0].transport_socket", "SDS"),
    (lambda d: d["dynamic_resources"]["ads_config"].update(api_type="DELTA_GRPC"),
     "dynamic_resources.ads_config.api_type", "GRPC"),
    (_unknown_extension, "bootstrap_extensions[0].typed_config", "WasmService"),
])
def test_what_the_proxy_cannot_do_is_an_error_naming_the_field(mutate, path: str, words: str) -> None:
    doc = istio_doc()
    mutate(doc)
    err = error_of(doc)
    assert path in err.field_path, (err.field_path, err.message)
    assert words in err.message, err.message


def test_http2_on_a_cds_cluster_is_an_error() -> None:
    """A cluster from CDS carries proxied traffic: HTTP/2 there is refused (the xDS update is NACKed)."""
    from envoy.config.cluster.v3 import cluster_pb2
    from google.protobuf import json_format

    from pilotfish.proxy.compile.clusters import compile_cluster

    doc = copy.deepcopy(_clusters(istio_doc())["sds-grpc"])
    doc["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] = {
        "socket_address": {"address": "10.0.0.1", "port_value": 9080}}
    with pytest.raises(ProxyConfigError) as info:
        compile_cluster(json_format.ParseDict(doc, cluster_pb2.Cluster()), "Cluster[grpc-svc]")
    assert info.value.field_path.endswith(".explicit_http_config.http2_protocol_options")
    assert "HTTP/2 upstreams are not supported yet" in info.value.message
    legacy = json_format.ParseDict({**doc, "typed_extension_protocol_options": {}, "http2_protocol_options": {}},
                                   cluster_pb2.Cluster())
    with pytest.raises(ProxyConfigError, match="HTTP/2 upstreams"):
        compile_cluster(legacy, "Cluster[grpc-svc]")


# ---- running it ---------------------------------------------------------------------------------
def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def localize(doc: dict[str, Any], admin: int, stats: int, health: int, agent: int,
             xds_path: str | None = None) -> dict[str, Any]:
    """Istio's ports (15000, 15090, 15021, 15020) moved to free loopback ports, for a test."""
    doc["admin"]["address"]["socket_address"]["port_value"] = admin
    clusters = _clusters(doc)
    _endpoint_address(clusters["prometheus_stats"])["socket_address"]["port_value"] = admin
    _endpoint_address(clusters["agent"])["socket_address"]["port_value"] = agent
    for lst, port in zip(doc["static_resources"]["listeners"], (stats, health)):
        lst["address"]["socket_address"].update(address="127.0.0.1", port_value=port)
    if xds_path is not None:
        _endpoint_address(clusters["xds-grpc"])["pipe"]["path"] = xds_path
    return doc


@contextlib.contextmanager
def short_tmp() -> Iterator[Path]:
    """A short directory: a unix socket path must fit in 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="pf-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.asynccontextmanager
async def unix_ads(path: Path) -> AsyncIterator[FakeAds]:
    ads = await FakeAds().start_unix(path)
    try:
        yield ads
    finally:
        await ads.stop()


def assert_node_from_fixture(request: Any) -> None:
    node = request.node
    assert node.id == "sidecar~10.244.0.12~productpage-v1-5c9f8b5d8b-7xk2p.default~default.svc.cluster.local"
    assert node.cluster == "productpage.default" and node.locality.zone == "us-central1-a"
    md = node.metadata
    assert md["NAMESPACE"] == "default" and md["ISTIO_VERSION"] == "1.24.2"
    assert md["LABELS"]["service.istio.io/canonical-name"] == "productpage"
    assert md["PROXY_CONFIG"]["statusPort"] == 15020 and md["ENVOY_PROMETHEUS_PORT"] == 15090


async def test_istio_bootstrap_serves_ads_over_unix_socket_metrics_and_health(backend: Backend) -> None:
    backend.handler = lambda s: Reply(body=b"ready" if s.path == "/healthz/ready" else b"?")
    admin, stats, health = free_ports(3)
    with short_tmp() as tmp:
        sock = tmp / "XDS"
        async with unix_ads(sock) as ads:
            doc = localize(istio_doc(), admin, stats, health, backend.port, str(sock))
            async with running_proxy(doc) as proxy:
                first = ads.requests[0]
                assert first.type_url == CLUSTER and first.response_nonce == ""
                assert_node_from_fixture(first)
                assert not any(r.HasField("node") for r in ads.requests[1:])  # set_node_on_first_message_only
                await ads.wait_ack(LISTENER, "0")
                async with client(stats) as c:
                    r = await c.request(path="/stats/prometheus")
                    assert r.status == 200, r
                    text = r.body.decode()
                    assert "# TYPE envoy_cluster_upstream_rq_total counter" in text
                    assert 'envoy_cluster_upstream_cx_total{cluster_name="prometheus_stats"}' in text
                    assert (await c.request(path="/other")).status == 404  # only /stats/prometheus is routed
                async with client(health) as c:
                    r = await c.request(path="/healthz/ready")
                    assert r.status == 200 and r.body == b"ready"
                assert backend.seen[-1].path == "/healthz/ready"
                assert proxy.listener_ports == {"0.0.0.0_15090": stats, "0.0.0.0_15021": health}


async def test_pilotfish_proxy_starts_on_the_bootstrap_with_its_relative_xds_socket(backend: Backend) -> None:
    """The CLI, run where pilot-agent runs Envoy: the bootstrap's ./etc/istio/proxy/XDS resolves
    against the working directory."""
    admin, stats, health = free_ports(3)
    with short_tmp() as tmp:
        path = tmp / "envoy-rev.json"
        path.write_text(json.dumps(localize(istio_doc(), admin, stats, health, backend.port)))
        async with unix_ads(tmp / "etc" / "istio" / "proxy" / "XDS") as ads:
            proc = subprocess.Popen([*PILOTFISH, "proxy", "--bootstrap", str(path), "--log-level", "info"],
                                    cwd=tmp, stderr=subprocess.PIPE)
            try:
                assert proc.stderr is not None
                os.set_blocking(proc.stderr.fileno(), False)
                log = ""
                deadline = time.monotonic() + 15
                while "listener 0.0.0.0_15021 on port" not in log and time.monotonic() < deadline:
                    assert proc.poll() is None, log + _drain(proc)
                    with contextlib.suppress(BlockingIOError):
                        log += os.read(proc.stderr.fileno(), 65536).decode()
                    await asyncio.sleep(0.05)
                assert "listener 0.0.0.0_15021 on port" in log, log
                assert_node_from_fixture(ads.requests[0])
                assert "sds-grpc" in log and "stats_config.stats_matcher: ignored" in log
                async with client(stats) as c:
                    r = await c.request(path="/stats/prometheus")
                    assert r.status == 200 and b"envoy_cluster_upstream_rq_total" in r.body
                proc.send_signal(signal.SIGTERM)
                assert await asyncio.get_running_loop().run_in_executor(None, proc.wait, 10) == 0
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


def _drain(proc: subprocess.Popen) -> str:
    assert proc.stderr is not None
    with contextlib.suppress(BlockingIOError, ValueError):
        return os.read(proc.stderr.fileno(), 65536).decode()
    return ""


def test_service_cluster_circuit_breakers_are_still_checked_and_health_checks_warned() -> None:
    doc = istio_doc()
    xds = _clusters(doc)["xds-grpc"]
    xds["outlier_detection"] = {"consecutive_5xx": 3}
    assert "static_resources.clusters[3].outlier_detection" in _warned(parse_bootstrap(doc).warnings)
    xds["circuit_breakers"]["thresholds"][0]["retry_budget"] = {"budget_percent": {"value": 120}}
    with pytest.raises(ProxyConfigError) as info:
        parse_bootstrap(doc)
    assert info.value.field_path.startswith("static_resources.clusters[3].circuit_breakers")
