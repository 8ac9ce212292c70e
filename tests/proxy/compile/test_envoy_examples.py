"""Envoy's own examples (github.com/envoyproxy/examples, see data/envoy-examples/README.md) start
unchanged except for their addresses, loaded as ``pilotfish proxy --bootstrap`` loads them; the
fault-injection example's faults fire once its runtime (disk layer) enables them, and the
route-mirror example mirrors by cluster name and by the cluster a request header names."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pilotfish.proxy.compile.bootstrap_file import load_bootstrap
from pilotfish.proxy.compile import compile_bootstrap
from pilotfish.proxy.process.assemble import build_proxy

from ..conftest import Backend, client, until

EXAMPLES = Path(__file__).parent.parent / "data" / "envoy-examples"

#: What each example draws as warnings (the field each names).
EXPECTED_WARNINGS = {
    "front-proxy.yaml": {
        # the example's listener has no name, so its connection limit applies to no listener
        "layered_runtime.layers[0].static_layer['envoy.resource_limits.listener.example_listener_name"
        ".connection_limit']"},
    "websocket-ws.yaml": set(),
    "route-mirror.yaml": set(),
    "fault-injection.yaml": set(),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_WARNINGS))
def test_example_compiles_without_errors(name: str) -> None:
    loaded = load_bootstrap(EXAMPLES / name)
    compiled = compile_bootstrap(loaded.message, warnings=loaded.warnings)
    assert {w.split(": ", 1)[0] for w in loaded.warnings} == EXPECTED_WARNINGS[name]
    assert len(compiled.runtime.listeners) == 1


def _with_ports(name: str, tmp: Path, ports: dict[str, int], **edits: Any) -> Path:
    """The example with its clusters' endpoint ports set to local backends (an address change)."""
    doc = yaml.safe_load((EXAMPLES / name).read_text())
    for c in doc["static_resources"]["clusters"]:
        ep = c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
        ep["address"]["socket_address"]["port_value"] = ports[c["name"]]
    for layer in doc.get("layered_runtime", {}).get("layers", []):
        if "disk_layer" in layer and "symlink_root" in edits:
            layer["disk_layer"]["symlink_root"] = edits["symlink_root"]
    path = tmp / name
    path.write_text(yaml.safe_dump(doc))
    return path


@contextlib.asynccontextmanager
async def proxy_from(path: Path) -> AsyncIterator[int]:
    """A proxy started in-process from a bootstrap file, as ``pilotfish proxy`` starts it."""
    loaded = load_bootstrap(path)
    compiled = compile_bootstrap(loaded.message, random.Random(1), loaded.warnings)
    server = build_proxy(compiled, rng=random.Random(1), drain_time=1.0)
    await server.start()
    try:
        (port,) = server.listener_ports.values()
        yield port
    finally:
        await server.stop(drain_time=0.2)


def _runtime_version(root: Path, version: str, values: dict[str, str]) -> None:
    """What the example's enable_*_fault_injection.sh do: write files under
    /srv/runtime/<version>/envoy/..., then point the ``current`` symlink at that version."""
    for key, value in values.items():
        f = root / version / "envoy" / Path(*key.split("."))
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(value + "\n")
    new = root / "new"
    new.symlink_to(root / version)
    os.replace(new, root / "current")


async def test_fault_injection_example_fires_only_through_its_runtime(backend: Backend, tmp_path: Path) -> None:
    runtime_root = tmp_path / "runtime"
    runtime_root.mkdir()
    path = _with_ports("fault-injection.yaml", tmp_path, {"local_service": backend.port},
                       symlink_root=str(runtime_root / "current"))
    # No runtime yet: the filter's faults are at 0%, requests pass.
    async with proxy_from(path) as port, client(port) as c:
        r = await c.request(path="/")
        assert r.status == 200 and r.body == f"{backend.name} /".encode()
    # enable_abort_fault_injection.sh: abort_percent 100, http_status 503.
    _runtime_version(runtime_root, "v1", {"fault.http.abort.abort_percent": "100",
                                          "fault.http.abort.http_status": "503"})
    seen = len(backend.seen)
    async with proxy_from(path) as port, client(port) as c:
        r = await c.request(path="/")
        assert r.status == 503 and r.body == b"fault filter abort"
    assert len(backend.seen) == seen  # the request never reached the origin
    # enable_delay_fault_injection.sh's keys (its 50% and 3 s made 100% and 0.3 s for the test),
    # with the abort files removed as disable_abort_fault_injection.sh does.
    _runtime_version(runtime_root, "v2", {"fault.http.delay.fixed_delay_percent": "100",
                                          "fault.http.delay.fixed_duration_ms": "300"})
    async with proxy_from(path) as port, client(port) as c:
        loop = asyncio.get_running_loop()
        start = loop.time()
        r = await c.request(path="/slow")
        assert r.status == 200 and r.body == f"{backend.name} /slow".encode()
        assert loop.time() - start >= 0.29  # the example's 3 s delay replaced by the runtime's 300 ms


async def test_route_mirror_example_mirrors_by_name_and_by_header(tmp_path: Path) -> None:
    names = ("service1", "service1-mirror", "service2", "service2-mirror")
    backends = {n: await Backend(n).start() for n in names}
    try:
        path = _with_ports("route-mirror.yaml", tmp_path, {n: b.port for n, b in backends.items()})
        async with proxy_from(path) as port, client(port) as c:
            r = await c.request(path="/service/1")
            assert r.status == 200 and r.body == b"service1 /service/1"
            await until(lambda: len(backends["service1-mirror"].seen) == 1)
            assert backends["service1-mirror"].seen[0].headers["host"].endswith("-shadow")
            # /service/2 mirrors to the cluster named by x-mirror-cluster, and not without it
            r = await c.request(path="/service/2", headers={"x-mirror-cluster": "service2-mirror"})
            assert r.status == 200 and r.body == b"service2 /service/2"
            await until(lambda: len(backends["service2-mirror"].seen) == 1)
            r = await c.request(path="/service/2")
            r = await c.request(path="/service/2", headers={"x-mirror-cluster": "no-such-cluster"})
            assert r.status == 200
            await asyncio.sleep(0.1)
            assert len(backends["service2-mirror"].seen) == 1
    finally:
        for b in backends.values():
            await b.stop()


async def test_websocket_example_upgrades(tmp_path: Path) -> None:
    """The plain-ws example's listener passes a WebSocket upgrade through to its origin."""
    got: list[bytes] = []

    async def origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n")
        writer.write(await reader.readexactly(5))  # echo one frame's worth of bytes
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(origin, "127.0.0.1", 0)
    try:
        path = _with_ports("websocket-ws.yaml", tmp_path, {"service_ws": server.sockets[0].getsockname()[1]})
        async with proxy_from(path) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n")
            async with asyncio.timeout(3):
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 101")
                writer.write(b"hello")
                assert await reader.readexactly(5) == b"hello"
            writer.close()
        assert got and got[0].lower().count(b"upgrade: websocket") == 1
    finally:
        server.close()
        await server.wait_closed()
