"""Envoy's edge best-practice config (tests/proxy/data/envoy-examples/edge-best-practice.yaml, its
TLS and HTTP/2 parts removed as README-edge.md says) starts and serves, addresses aside."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import yaml

from pilotfish.proxy.compile.bootstrap_file import parse_bootstrap
from pilotfish.proxy.compile import compile_bootstrap

from ..conftest import admin_get, client, running_proxy, until

EDGE = Path(__file__).parent.parent / "data" / "envoy-examples" / "edge-best-practice.yaml"


def _edge(backend_port: int = 8080) -> dict[str, Any]:
    """The config with only its addresses changed: ports from the OS, the backend's port."""
    doc = yaml.safe_load(EDGE.read_text())
    doc["admin"]["address"]["socket_address"].update(port_value=0)
    listener = doc["static_resources"]["listeners"][0]
    listener["address"]["socket_address"].update(address="127.0.0.1", port_value=0)
    endpoint = doc["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    endpoint["endpoint"]["address"]["socket_address"]["port_value"] = backend_port
    return doc


def test_compiles_without_errors() -> None:
    loaded = parse_bootstrap(_edge())
    compiled = compile_bootstrap(loaded.message, random.Random(1), loaded.warnings)
    hcm = compiled.runtime.listeners[0].hcm
    assert hcm.pre_route is not None  # normalize_path, merge_slashes, escaped slashes
    assert hcm.buffer_limit == 32768
    assert hcm.underscores == 1  # REJECT_REQUEST
    overload = compiled.overload
    assert overload is not None and overload.refresh_interval == 0.25
    assert [(m.name, m.max_value) for m in overload.monitors] == [("envoy.resource_monitors.fixed_heap", 2**31)]
    assert [(a.name, a.triggers[0].threshold) for a in overload.actions] == [
        ("envoy.overload_actions.shrink_heap", 0.95), ("envoy.overload_actions.stop_accepting_requests", 0.98)]
    assert overload.global_max_connections == 50000
    # the listener has no name (Envoy gives it a UUID): example_listener_name's limit is for no listener
    assert compiled.runtime.listeners[0].connection_limit is None
    assert any("example_listener_name" in w and "names no listener" in w for w in loaded.warnings)


async def test_serves_requests_with_the_edge_protections(backend) -> None:
    doc = _edge(backend.port)
    async with running_proxy(doc) as proxy:
        port = next(iter(proxy.listener_ports.values()))
        async with client(port) as c:
            r = await c.request(path="/hello", headers={"x-forwarded-for": "6.6.6.6"})
            assert (r.status, r.body) == (200, b"a /hello")
            seen = backend.seen[-1]
            # use_remote_address: the client's own address, not what it claimed, is trusted
            assert seen.headers["x-forwarded-for"].split(",")[-1].strip() == "127.0.0.1"
            r = await c.request(path="/a/../b//c/./d?q=/../x")
            assert r.status == 200 and backend.seen[-1].path == "/b/c/d?q=/../x"
            r = await c.request(path="/a%2F..%2Fsecret")
            assert (r.status, r.headers["location"]) == (307, "/secret")
        async with client(port) as c:  # headers_with_underscores_action: REJECT_REQUEST
            r = await c.request(path="/x", headers={"x_bad": "1"})
            assert r.status == 400
        assert len(backend.seen) == 2
        # the overload manager samples the fixed_heap monitor every 250 ms: far below 2 GiB
        await until(lambda: "fixed_heap.pressure: 0" not in proxy.stats.text())
        stats = dict(line.split(": ", 1) for line in (await admin_get(proxy, "/stats")).splitlines())
        assert 0 < int(stats["overload.envoy.resource_monitors.fixed_heap.pressure"]) < 95
        assert stats["overload.envoy.overload_actions.stop_accepting_requests.active"] == "0"
        assert stats["overload.envoy.overload_actions.shrink_heap.active"] == "0"
