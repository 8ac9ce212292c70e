"""``pilotfish proxy`` as a real subprocess: starts, serves, drains on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from ..conftest import Backend, bootstrap, client, cluster

PILOTFISH = [sys.executable, "-c", "from pilotfish.cli.main import main; main()"]


async def test_proxy_subprocess_serves_and_drains(backend: Backend, tmp_path: Path) -> None:
    doc = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "a"}}], [cluster("a", backend.port)])
    doc["layered_runtime"] = {"layers": [{"name": "static", "static_layer": {"re2.max_program_size.error_level": 100}}]}
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(doc))
    proc = subprocess.Popen([*PILOTFISH, "proxy", "--bootstrap", str(path), "--log-level", "info"],
                            stderr=subprocess.PIPE)
    try:
        ports: dict[str, int] = {}
        deadline = time.monotonic() + 15
        assert proc.stderr is not None
        os.set_blocking(proc.stderr.fileno(), False)
        buf = ""
        while len(ports) < 2 and time.monotonic() < deadline:
            try:
                buf += os.read(proc.stderr.fileno(), 65536).decode()
            except BlockingIOError:
                pass
            for line in buf.splitlines():
                if "listener main on port" in line:
                    ports["main"] = int(line.rsplit(" ", 1)[-1])
                if "admin on port" in line:
                    ports["admin"] = int(line.rsplit(" ", 1)[-1])
            await asyncio.sleep(0.05)
        assert len(ports) == 2, buf
        assert "layered_runtime.layers[0].static_layer['re2.max_program_size.error_level']: ignored" in buf
        async with client(ports["main"]) as c:
            r = await c.request(path="/sub")
            assert r.status == 200 and r.body == b"a /sub"
        async with client(ports["admin"]) as c:
            info = json.loads((await c.request(path="/server_info")).body)
            assert info["command_line_options"]["concurrency"] == 1
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.get_running_loop().run_in_executor(None, proc.wait, 10)
        assert rc == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_config_error_exits_1_naming_the_field(tmp_path: Path) -> None:
    doc = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "a", "hedge_policy": {"hedge_on_per_try_timeout": True}}}],
                    [cluster("a", 1)])
    path = tmp_path / "envoy.json"
    path.write_text(json.dumps(doc))
    r = subprocess.run([*PILOTFISH, "proxy", "-c", str(path)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "routes[0].route.hedge_policy" in r.stderr
