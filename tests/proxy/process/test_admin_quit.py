"""``POST /quitquitquit`` on a real ``pilotfish proxy``: the process is gone a fraction of a
second after the OK (Envoy exits without a drain period), with one process or with workers;
with workers, the admin's histograms are the sum of every worker's."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from ..conftest import Backend, Reply, bootstrap, client, cluster
from .helpers import PILOTFISH, ProcessLog, children, get


@pytest.mark.parametrize("concurrency", [1, 2])
async def test_quitquitquit_exits_promptly(backend: Backend, tmp_path: Path, concurrency: int) -> None:
    doc = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "a"}}], [cluster("a", backend.port)])
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(doc))
    # A long drain time: /quitquitquit must not wait for it, nor for a request in flight.
    proc = subprocess.Popen([*PILOTFISH, "proxy", "-c", str(path), "--concurrency", str(concurrency),
                             "--drain-time-s", "30"], stderr=subprocess.PIPE)
    try:
        text = await ProcessLog(proc).wait_for("admin on port")
        port = int(text.split("listener main on port ")[1].split()[0])
        admin = int(text.split("admin on port ")[1].split()[0])
        if concurrency > 1:
            deadline = time.monotonic() + 10
            while len(children(proc.pid)) < concurrency and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            for _ in range(12):  # new connections: the kernel spreads them over the workers
                async with client(port) as c:
                    assert (await c.request()).status == 200
            prom = (await get(admin, "/stats/prometheus")).body.decode()
            assert 'envoy_http_downstream_rq_time_count{envoy_http_conn_manager_prefix="ingress"} 12' in prom
            assert 'envoy_cluster_upstream_rq_time_count{envoy_cluster_name="a"} 12' in prom
            assert "envoy_server_concurrency{} 2" in prom
        backend.handler = lambda s: Reply(body=b"slow", delay=5.0 if s.path == "/slow" else 0.0)
        async with client(port) as idle, client(port) as busy:  # one idle keep-alive, one in flight
            assert (await idle.request()).status == 200
            slow = asyncio.ensure_future(busy.request(path="/slow"))
            while not any(s.path == "/slow" for s in backend.seen):
                await asyncio.sleep(0.01)
            r = await get(admin, "/quitquitquit", "POST")
            ok_at = time.monotonic()
            assert (r.status, r.body) == (200, b"OK\n")
            rc = await asyncio.get_running_loop().run_in_executor(None, proc.wait, 10)
            gone_after = time.monotonic() - ok_at
            slow.cancel()
        assert rc == 0
        assert gone_after < 0.8, f"still running {gone_after:.2f}s after the OK"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in children(proc.pid):
            os.kill(pid, signal.SIGKILL)
