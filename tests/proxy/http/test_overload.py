"""The overload manager (overload_manager) and the downstream connection limits (layered_runtime),
as Envoy's: triggers and monitors with an injected memory reader, then real sockets."""

from __future__ import annotations

import asyncio
import copy
import os
import random
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pilotfish.proxy.http import overload
from pilotfish.proxy.compile.bootstrap_file import parse_bootstrap
from pilotfish.proxy.compile import compile_bootstrap
from pilotfish.proxy.common.errors import ProxyConfigError
from pilotfish.proxy.testing import ManualLoop

from ..conftest import Client, bootstrap, client, cluster, running_proxy, until

HEAP = "envoy.resource_monitors.fixed_heap"
CONNS = "envoy.resource_monitors.global_downstream_max_connections"
STOP = "envoy.overload_actions.stop_accepting_requests"
KEEPALIVE = "envoy.overload_actions.disable_http_keepalive"
REJECT = "envoy.overload_actions.reject_incoming_connections"
HEAP_TYPE = "type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig"
CONNS_TYPE = ("type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3."
              "DownstreamConnectionsConfig")


def heap_monitor(max_bytes: int) -> dict[str, Any]:
    return {"name": HEAP, "typed_config": {"@type": HEAP_TYPE, "max_heap_size_bytes": max_bytes}}


def action(name: str, value: float = 0.9, monitor: str = HEAP) -> dict[str, Any]:
    return {"name": name, "triggers": [{"name": monitor, "threshold": {"value": value}}]}


def with_overload(doc: dict[str, Any], monitors: list[dict[str, Any]], actions: list[dict[str, Any]],
                  refresh: str = "0.02s") -> dict[str, Any]:
    doc["overload_manager"] = {"refresh_interval": refresh, "resource_monitors": monitors, "actions": actions}
    return doc


def with_runtime(doc: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    doc["layered_runtime"] = {"layers": [{"name": "static", "static_layer": layer}]}
    return doc


def config_error(doc: dict[str, Any]) -> ProxyConfigError:
    with pytest.raises(ProxyConfigError) as info:
        parse_bootstrap(doc)
    return info.value


def _doc(backend_port: int = 1) -> dict[str, Any]:
    return bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "b"}}], [cluster("b", backend_port)])


def stats_of(proxy: Any) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in proxy.stats.text().splitlines() if ": " in line)


# ---- triggers, actions, monitors (no sockets) -------------------------------------------------
def test_threshold_trigger_saturates_at_its_value() -> None:
    t = overload.Trigger(0.9)
    assert not t.update(0.5) and t.state == 0.0
    assert t.update(0.9) and t.state == 1.0
    assert not t.update(0.95)
    assert t.update(0.89) and t.state == 0.0


def test_scaled_trigger_is_linear_between_its_thresholds() -> None:
    t = overload.Trigger(0.8, scaling=0.4)
    assert not t.update(0.4) and t.state == 0.0
    assert t.update(0.6) and t.state == pytest.approx(0.5)
    assert t.update(0.8) and t.state == 1.0
    assert t.update(0.1) and t.state == 0.0


def _manager(doc: dict[str, Any], memory: list[int], gate: overload.ConnectionGate | None = None
             ) -> tuple[overload.OverloadManager, list[Any]]:
    loaded = parse_bootstrap(doc)
    compiled = compile_bootstrap(loaded.message, random.Random(1), loaded.warnings)
    assert compiled.overload is not None
    published: list[Any] = []
    return compiled.overload.manager(gate, published.append, heap_reader=lambda: memory[0]), published


def test_manager_follows_the_injected_memory_reader() -> None:
    memory = [100]
    doc = with_overload(_doc(), [heap_monitor(1000)], [
        action(STOP, 0.9),
        {"name": KEEPALIVE, "triggers": [{"name": HEAP, "scaled": {"scaling_threshold": 0.5,
                                                                   "saturation_threshold": 1.0}}]}])
    om, published = _manager(doc, memory)
    om.refresh()
    heap, stop, keepalive = om.monitors[0].stats, om.actions[STOP].stats, om.actions[KEEPALIVE].stats
    assert (heap.pressure, stop.active, keepalive.scale_percent, published) == (10, 0, 0, [])
    memory[0] = 750  # keep-alive scales: 0.75 is half way from 0.5 to 1
    om.refresh()
    assert heap.pressure == 75 and (keepalive.active, keepalive.scale_percent) == (0, 50)
    assert published == [overload.RequestShed(0.0, 0.5)]
    memory[0] = 1000  # both saturated
    om.refresh()
    assert (stop.active, stop.scale_percent, keepalive.active) == (1, 100, 1)
    assert published[-1] == overload.RequestShed(1.0, 1.0)
    om.refresh()  # nothing changed: nothing published
    assert len(published) == 2
    memory[0] = 100
    om.refresh()
    assert published[-1] is None and (stop.active, keepalive.active) == (0, 0)


def test_a_failing_monitor_counts_failed_updates_and_keeps_the_state() -> None:
    memory = [950]
    om, published = _manager(with_overload(_doc(), [heap_monitor(1000)], [action(STOP)]), memory)
    om.refresh()
    om.monitors[0].read = lambda: (_ for _ in ()).throw(OSError("no /proc"))
    om.refresh()
    assert om.monitors[0].stats.failed_updates == 1
    assert om.state(STOP) == 1.0 and len(published) == 1


def test_manager_samples_on_a_loop_timer_not_per_request() -> None:
    async def run() -> int:
        memory = [950]
        om, published = _manager(with_overload(_doc(), [heap_monitor(1000)], [action(STOP)]), memory)
        om.start(asyncio.get_running_loop())
        await asyncio.sleep(0.01)
        before = len(published)  # Envoy's first sample comes one refresh interval after start
        await until(lambda: bool(published))
        om.stop()
        return before

    assert asyncio.run(run()) == 0


def test_shrink_heap_runs_every_interval_while_saturated() -> None:
    memory = [100]
    om, _ = _manager(with_overload(_doc(), [heap_monitor(1000)], [action(overload.SHRINK_HEAP, 0.9)]), memory)
    loop = ManualLoop(start=0.0)
    om.start(loop)  # type: ignore[arg-type]
    assert loop.timers() == [0.02, overload.SHRINK_INTERVAL]  # the monitors' refresh, the shrink
    loop.advance(overload.SHRINK_INTERVAL)  # not saturated: nothing
    assert om.actions[overload.SHRINK_HEAP].stats.shrink_count == 0
    memory[0] = 950
    loop.advance(overload.SHRINK_INTERVAL)  # saturated: gc.collect() and malloc_trim(0)
    stats = om.actions[overload.SHRINK_HEAP].stats
    assert (stats.active, stats.shrink_count) == (1, 1)
    assert ("shrink_count", 1, True) in list(stats.values())


def test_gate_admits_under_the_limits_and_counts_refusals() -> None:
    class Conns:
        def __init__(self, limit: int | None = None, ignore_global: bool = False) -> None:
            self.connections: set[int] = set()
            self.limit, self.ignore_global, self.bypass_overload = limit, ignore_global, False

    class LStats:
        downstream_cx_overflow = downstream_global_cx_overflow = downstream_cx_overload_reject = 0

    gate = overload.ConnectionGate(global_max=2)
    a, exempt, lstats = Conns(limit=1), Conns(ignore_global=True), LStats()
    assert gate.admit(a, lstats)
    a.connections.add(1)
    assert not gate.admit(a, lstats) and lstats.downstream_cx_overflow == 1  # the listener's limit
    assert gate.admit(exempt, lstats) and gate.active == 2
    assert not gate.admit(Conns(), lstats) and lstats.downstream_global_cx_overflow == 1
    assert gate.admit(exempt, lstats)  # ignore_global_conn_limit
    gate.reject = 1.0
    assert not gate.admit(exempt, lstats) and lstats.downstream_cx_overload_reject == 1
    # a limit of 0 refuses every connection, as Envoy's (unset is no limit)
    assert not overload.ConnectionGate(global_max=0).admit(Conns(), lstats)
    assert not overload.ConnectionGate().admit(Conns(limit=0), lstats)
    assert overload.ConnectionGate().admit(Conns(), lstats)


# ---- config errors name their paths --------------------------------------------------------
@pytest.mark.parametrize(("monitors", "actions", "path", "words"), [
    ([{"name": "envoy.resource_monitors.injected_resource"}], [], "overload_manager.resource_monitors[0].name",
     "not supported"),
    ([heap_monitor(1000)], [action("envoy.overload_actions.launch_rockets")], "overload_manager.actions[0].name",
     "unknown overload action"),
    ([heap_monitor(1000)], [action(STOP, monitor="envoy.resource_monitors.cpu")],
     "overload_manager.actions[0].triggers[0].name", "unknown trigger resource"),
    ([heap_monitor(1000)], [action("envoy.overload_actions.stop_accepting_connections")],
     "overload_manager.actions[0].name", "cannot pause accepting"),
    ([heap_monitor(0)], [], "overload_manager.resource_monitors[0].typed_config.max_heap_size_bytes",
     "greater than 0"),
    ([heap_monitor(1000)], [{"name": STOP, "triggers": [{"name": HEAP, "scaled": {
        "scaling_threshold": 0.9, "saturation_threshold": 0.5}}]}],
     "overload_manager.actions[0].triggers[0].scaled", "less than saturation_threshold"),
    ([heap_monitor(1000)], [action(STOP, 1.5)], "overload_manager.actions[0].triggers[0].threshold.value",
     "within [0, 1]"),
    ([heap_monitor(1000), heap_monitor(2000)], [], "overload_manager.resource_monitors[1].name", "duplicate"),
])
def test_bad_overload_config_is_an_error_naming_its_path(monitors: Any, actions: Any, path: str,
                                                          words: str) -> None:
    err = config_error(with_overload(_doc(), monitors, actions))
    assert any(e.field_path == path and words in e.message for e in err.errors), str(err)


def test_connection_limit_runtime_keys_are_honoured_and_others_still_refused() -> None:
    doc = with_runtime(_doc(), {"overload": {"global_downstream_max_connections": 7},
                                "envoy": {"resource_limits": {"listener": {"main": {"connection_limit": 3}}}}})
    loaded = parse_bootstrap(doc)
    compiled = compile_bootstrap(loaded.message, random.Random(1), loaded.warnings)
    assert compiled.overload is not None and compiled.overload.global_max_connections == 7
    assert compiled.runtime.listeners[0].connection_limit == 3
    err = config_error(with_runtime(_doc(), {"overload": {"premature_reset_total_stream_count": 5}}))
    assert "overload.premature_reset_total_stream_count" in str(err)


def test_the_connections_monitor_overrides_the_runtime_key_with_a_warning() -> None:
    doc = with_overload(with_runtime(_doc(), {"overload": {"global_downstream_max_connections": 7}}),
                        [{"name": CONNS, "typed_config": {"@type": CONNS_TYPE, "max_active_downstream_connections": 3}}],
                        [])
    loaded = parse_bootstrap(doc)
    compiled = compile_bootstrap(loaded.message, random.Random(1), loaded.warnings)
    assert compiled.overload is not None and compiled.overload.global_max_connections == 3
    assert any("global_downstream_max_connections: ignored" in w for w in loaded.warnings)


# ---- end to end ---------------------------------------------------------------------------
async def test_heap_over_the_threshold_answers_503_and_recovers(backend, tmp_path: Path) -> None:
    # max_heap_size_bytes far below any Python process's resident set: pressure > 1
    doc = with_overload(_doc(backend.port), [heap_monitor(1 << 20)], [action(STOP, 0.95)])
    log = tmp_path / "access.log"
    doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["access_log"] = [{
        "name": "envoy.access_loggers.file", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog", "path": str(log),
            "log_format": {"text_format_source": {
                "inline_string": "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%\n"}}}}]
    async with running_proxy(doc) as proxy:
        port = proxy.listener_ports["main"]
        await until(lambda: proxy.overload.state(STOP) == 1.0)
        async with client(port) as c:
            r = await c.request(path="/x")
            assert (r.status, r.body) == (503, b"envoy overloaded")
            r = await c.request(path="/y")  # keep-alive stays: the next request is answered too
            assert r.status == 503
        assert backend.seen == []
        stats = stats_of(proxy)
        assert stats["http.ingress.downstream_rq_overload_close"] == "2"
        assert stats["http.ingress.downstream_rq_5xx"] == "2"
        assert int(stats[f"overload.{HEAP}.pressure"]) > 100
        assert (stats[f"overload.{STOP}.active"], stats[f"overload.{STOP}.scale_percent"]) == ("1", "100")
        assert "envoy_overload_envoy_overload_actions_stop_accepting_requests_active{} 1" in proxy.stats.prometheus()
        # memory falls below the threshold (the monitor now reads 10% of its max): served again
        proxy.overload.monitors[0].read = lambda: 0.1
        await until(lambda: proxy.overload.state(STOP) == 0.0)
        async with client(port) as c:
            r = await c.request(path="/z")
            assert r.status == 200 and [s.path for s in backend.seen] == ["/z"]
        assert stats_of(proxy)[f"overload.{STOP}.active"] == "0"
    # Envoy sets no response flag here; the details say why
    assert log.read_text().splitlines() == ["503 - overload_manager"] * 2 + ["200 - via_upstream"]


async def test_a_listener_bypassing_the_overload_manager_still_serves(backend) -> None:
    doc = with_overload(_doc(backend.port), [heap_monitor(1 << 20)], [action(STOP, 0.95)])
    doc["static_resources"]["listeners"][0]["bypass_overload_manager"] = True
    async with running_proxy(doc) as proxy:
        await until(lambda: proxy.overload.state(STOP) == 1.0)
        async with client(proxy.listener_ports["main"]) as c:
            assert (await c.request()).status == 200


async def test_disable_http_keepalive_closes_after_the_response(backend) -> None:
    doc = with_overload(_doc(backend.port), [heap_monitor(1 << 20)], [action(KEEPALIVE, 0.95)])
    routes = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"][
        "route_config"]["virtual_hosts"][0]["routes"]
    routes.insert(0, {"match": {"prefix": "/local"}, "direct_response": {"status": 200, "body": {"inline_string": "hi"}}})
    async with running_proxy(doc) as proxy:
        await until(lambda: proxy.overload.state(KEEPALIVE) == 1.0)
        for path in ("/", "/local"):  # a proxied response and a local one
            async with client(proxy.listener_ports["main"]) as c:
                r = await c.request(path=path)
                assert r.status == 200 and r.headers["connection"] == "close"
                assert await c.closed_by_peer()
        assert stats_of(proxy)["http.ingress.downstream_cx_overload_disable_keepalive"] == "2"


async def _served(port: int) -> Client:
    """A connection the proxy accepted (a request answered on it)."""
    c = await Client(port).connect()
    assert (await c.request()).status == 200
    return c


async def _refused(port: int) -> bool:
    """A new connection is closed by the proxy before it answers anything."""
    c = await Client(port).connect()
    try:
        c.send(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
        return await c.closed_by_peer()
    finally:
        await c.close()


def free_ports(n: int) -> list[int]:
    """Ports from the OS, so that each listener has its own ``listener.<address>`` stats."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _listeners(doc: dict[str, Any], *names: str) -> dict[str, Any]:
    """The doc's listener as ``names``, each on its own port."""
    first = doc["static_resources"]["listeners"][0]
    doc["static_resources"]["listeners"] = []
    for name, port in zip(names, free_ports(len(names))):
        lst = copy.deepcopy(first)
        lst.update(name=name, address={"socket_address": {"address": "127.0.0.1", "port_value": port}})
        doc["static_resources"]["listeners"].append(lst)
    return doc


def listener_stats(proxy: Any, name: str) -> dict[str, int]:
    prefix = f"listener.127.0.0.1_{proxy.listener_ports[name]}."
    return {k[len(prefix):]: int(v) for k, v in stats_of(proxy).items() if k.startswith(prefix) and v.isdigit()}


async def test_global_connection_limit_refuses_the_next_connection_on_any_listener(backend) -> None:
    doc = _listeners(with_runtime(_doc(backend.port), {"overload": {"global_downstream_max_connections": 2}}),
                     "main", "other", "exempt")
    doc["static_resources"]["listeners"][2]["ignore_global_conn_limit"] = True
    async with running_proxy(doc) as proxy:
        main, other, free = (proxy.listener_ports[n] for n in ("main", "other", "exempt"))
        a, b = await _served(main), await _served(other)
        assert await _refused(other) and await _refused(main)
        c = await _served(free)  # ignore_global_conn_limit
        for name, total in (("main", 1), ("other", 1), ("exempt", 1)):
            lstats = listener_stats(proxy, name)
            assert (lstats["downstream_cx_total"], lstats["downstream_global_cx_overflow"]) == (
                total, 0 if name == "exempt" else 1), name
        await a.close()
        await until(lambda: proxy.gate.active == 2)
        assert await _refused(main)  # the exempt listener's connection counts toward the limit, as Envoy's
        await c.close()
        await until(lambda: proxy.gate.active == 1)
        d = await _served(main)  # room again
        for x in (b, d):
            await x.close()


async def test_listener_connection_limit_refuses_the_next_connection(backend) -> None:
    doc = _listeners(with_runtime(_doc(backend.port), {
        "envoy": {"resource_limits": {"listener": {"main": {"connection_limit": 1}}}}}), "main", "other")
    async with running_proxy(doc) as proxy:
        main, other = proxy.listener_ports["main"], proxy.listener_ports["other"]
        a = await _served(main)
        assert await _refused(main)
        b, c = await _served(other), await _served(other)  # the other listener has no limit
        lstats = listener_stats(proxy, "main")
        assert (lstats["downstream_cx_overflow"], lstats["downstream_cx_total"], lstats["downstream_cx_active"]) == (
            1, 1, 1)
        assert listener_stats(proxy, "other")["downstream_cx_overflow"] == 0
        await a.close()
        await until(lambda: listener_stats(proxy, "main")["downstream_cx_active"] == 0)
        a = await _served(main)  # room again
        for x in (a, b, c):
            await x.close()


async def test_connections_monitor_limits_and_reports_its_pressure(backend) -> None:
    doc = with_overload(_doc(backend.port), [
        {"name": CONNS, "typed_config": {"@type": CONNS_TYPE, "max_active_downstream_connections": 2}}], [])
    async with running_proxy(doc) as proxy:
        port = proxy.listener_ports["main"]
        a, b = await _served(port), await _served(port)
        assert await _refused(port)
        await until(lambda: stats_of(proxy)[f"overload.{CONNS}.pressure"] == "100")
        for x in (a, b):
            await x.close()


async def test_reject_incoming_connections_while_saturated(backend) -> None:
    doc = with_overload(_doc(backend.port), [heap_monitor(1 << 20)], [action(REJECT, 0.95)])
    async with running_proxy(doc) as proxy:
        await until(lambda: proxy.overload.state(REJECT) == 1.0)
        assert await _refused(proxy.listener_ports["main"])
        assert any(k.endswith("downstream_cx_overload_reject") and v == "1" for k, v in stats_of(proxy).items())


async def test_each_worker_process_sheds_on_its_own_memory(backend, tmp_path: Path) -> None:
    """``pilotfish proxy --concurrency 2`` with the edge config's overload manager and a
    max_heap_size_bytes below any worker's resident set: every worker answers 503; /stats sums the
    counters and shows the most loaded worker's pressure."""
    from ..process.helpers import PILOTFISH, ProcessLog, children, get, stat

    doc = with_overload(_doc(backend.port), [heap_monitor(1 << 20)], [action(STOP, 0.98)], refresh="0.25s")
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(doc))
    proc = subprocess.Popen([*PILOTFISH, "proxy", "-c", str(path), "--concurrency", "2", "--drain-time-s", "1"],
                            stderr=subprocess.PIPE)
    try:
        log = ProcessLog(proc)
        await log.wait_for(f"{STOP} became saturated")
        text = await log.wait_for("admin on port")
        port = int(text.split("listener main on port ")[1].split()[0])
        admin = int(text.split("admin on port ")[1].split()[0])
        async with asyncio.timeout(15):
            while text.count(f"{STOP} became saturated") < 2:  # both workers sampled their memory
                text = await log.wait_for(f"{STOP} became saturated")
                await asyncio.sleep(0.05)
        for _ in range(10):  # new connections: the kernel spreads them over both workers
            async with client(port) as c:
                r = await c.request()
                assert (r.status, r.body) == (503, b"envoy overloaded")
        stats = (await get(admin, "/stats")).body.decode()
        assert stat(stats, "http.ingress.downstream_rq_overload_close") == 10
        assert stat(stats, f"overload.{STOP}.active") == 1  # not 2: the most loaded worker's
        assert stat(stats, f"overload.{HEAP}.pressure") > 100
        assert backend.seen == []
        assert (await get(admin, "/quitquitquit", "POST")).status == 200
        assert await asyncio.get_running_loop().run_in_executor(None, proc.wait, 15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in children(proc.pid):
            os.kill(pid, signal.SIGKILL)
