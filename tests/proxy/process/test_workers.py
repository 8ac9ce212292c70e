"""``pilotfish proxy --concurrency 2``: a supervisor, two workers on one port, stats summed, restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import yaml

from pilotfish.proxy.process.workers import describe_exit
from pilotfish.proxy.testing import FakeTransport

from ..conftest import Backend, bootstrap, client, cluster
from .helpers import PILOTFISH, ProcessLog, children, get, stat

async def test_workers_share_the_port_sum_stats_and_restart(backend: Backend, tmp_path: Path) -> None:
    doc = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "a"}}], [cluster("a", backend.port)])
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(doc))
    proc = subprocess.Popen([*PILOTFISH, "proxy", "-c", str(path), "--concurrency", "2", "--drain-time-s", "1"],
                            stderr=subprocess.PIPE)
    try:
        log = ProcessLog(proc)
        text = await log.wait_for("admin on port")
        port = int(text.split("listener main on port ")[1].split()[0])
        admin = int(text.split("admin on port ")[1].split()[0])
        deadline = time.monotonic() + 10
        while len(children(proc.pid)) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        workers = children(proc.pid)
        assert len(workers) == 2

        for _ in range(20):  # new connections each time: the kernel spreads them over both workers
            async with client(port) as c:
                assert (await c.request()).status == 200
        stats = (await get(admin, "/stats")).body.decode()
        assert stat(stats, "cluster.a.upstream_rq_total") == 20  # summed over both workers
        assert stat(stats, "http.ingress.downstream_rq_completed") == 20
        prom = (await get(admin, "/stats/prometheus")).body.decode()
        assert 'envoy_cluster_upstream_rq_total{envoy_cluster_name="a"} 20' in prom

        victim = max(workers)  # worker 1 (forked second); worker 0 serves admin
        os.kill(victim, signal.SIGKILL)
        await log.wait_for("was killed by signal 9 (SIGKILL); starting a new one")
        deadline = time.monotonic() + 10
        while (len(children(proc.pid)) < 2 or victim in children(proc.pid)) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        now = children(proc.pid)
        assert len(now) == 2 and victim not in now
        for _ in range(10):
            async with client(port) as c:
                assert (await c.request()).status == 200

        assert (await get(admin, "/quitquitquit", "POST")).status == 200
        rc = await asyncio.get_running_loop().run_in_executor(None, proc.wait, 15)
        assert rc == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in children(proc.pid):
            os.kill(pid, signal.SIGKILL)


def test_describe_exit() -> None:
    assert describe_exit(signal.SIGKILL) == "was killed by signal 9 (SIGKILL)"
    assert describe_exit(3 << 8) == "exited with status 3"


class _Stats:
    def snapshot(self) -> dict[str, int]:
        return {"x": 1}


def test_control_socket_speaks_bounded_frames() -> None:
    from pilotfish.proxy.process.workers import FrameDecoder, _ControlConnection, frame

    def run(data: bytes, relay: object = None) -> tuple[_ControlConnection, FakeTransport]:
        conn, t = _ControlConnection(_Stats(), relay), FakeTransport()
        conn.connection_made(t)  # type: ignore[arg-type]
        for i in range(len(data)):  # byte by byte: a command split across reads still parses
            conn.data_received(data[i:i + 1])
        return conn, t

    _, t = run(frame(b"stats"))
    assert FrameDecoder().feed(t.written) == [b'{"x": 1}'] and t.closed
    _, t = run(frame(b"nope"))
    assert t.written == b"" and t.closed
    _, t = run(frame(b"xds"))  # only worker 0 (which has a relay hub) takes subscriptions
    assert t.written == b"" and t.closed
    _, t = run((1 << 20).to_bytes(4, "big"))  # an oversized command is cut off at its length
    assert t.written == b"" and t.closed

    class Hub:
        def attach(self, transport: object) -> str:
            return "subscriber"

    conn, t = run(frame(b"xds"), Hub())
    assert conn.peer == "subscriber" and not t.closed
