"""The agent as a process: it bootstraps its proxy to istiod, holds the app until the proxy is
ready, answers readiness through the proxy's 15021 listener and merged metrics on 15020,
restarts an app that dies, and stops both in order on SIGTERM."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from pilotfish.agent.probe import http_get
from pilotfish.agent.spec import AgentSpec, AppSpec

from ..istiod.mesh import PILOTFISH, eventually, free_port, istiod

SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: hello, namespace: default}
spec:
  selector: {app: hello}
  ports: [{name: http, port: 8000, targetPort: 9080}]
"""
APP = "import http.server as h; h.ThreadingHTTPServer(('127.0.0.1', int(__import__('sys').argv[1])), h.SimpleHTTPRequestHandler).serve_forever()"


def instance_ip() -> str:
    return f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.{random.randint(2, 250)}"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1][0] != "Z"


async def test_agent_runs_proxy_and_app_and_restarts_and_stops_them(tmp_path: Path) -> None:
    conf = tmp_path / "config"
    conf.mkdir()
    (conf / "hello.yaml").write_text(SERVICE)
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("hello from the app")
    ip, app_port = instance_ip(), free_port()
    async with istiod(conf) as cp:
        spec = AgentSpec(role="sidecar", name="hello-v1-7d4b9c-x2k4p", namespace="default", ip=ip,
                         xds_address=f"127.0.0.1:{cp.xds_port}", log_dir=str(tmp_path / "logs"),
                         labels={"app": "hello", "version": "v1"}, workload_name="hello-v1",
                         http_proxy_port=free_port(), drain_seconds=0.2,
                         app=AppSpec(argv=[sys.executable, "-c", APP, str(app_port)], cwd=str(tmp_path / "www"),
                                     ports={9080: app_port}))
        (tmp_path / "spec.json").write_text(spec.to_json())
        agent = subprocess.Popen([*PILOTFISH, "agent", "--spec", str(tmp_path / "spec.json")],
                                 stderr=open(tmp_path / "agent.log", "wb"))
        try:
            async def ready() -> bool:  # through the proxy's IP_15021 listener, answered by the agent
                return (await http_get(ip, 15021, "/healthz/ready"))[0] == 200

            await eventually(ready, 30)
            # The inbound listener: the instance's address on the target port, to the app's private port.
            status, body = await http_get(ip, 9080, "/")
            assert (status, body) == (200, b"hello from the app")
            # The workload registered itself with its labels.
            eps = [e for s in cp.push_context.registry.services if s.name == "hello"
                   for e in cp.push_context.registry.endpoints_of(s)]
            assert [(e.address, e.labels.get("version")) for e in eps] == [(ip, "v1")]
            # Merged metrics: the proxy's stats and the agent's own.
            status, metrics = await http_get(ip, 15020, "/stats/prometheus")
            assert status == 200
            assert b"envoy_cluster_upstream_rq_total" in metrics or b"envoy_server_live" in metrics
            assert b'istio_agent_process_restarts_total{process="app"} 0' in metrics
            # The proxy's own metrics listener, Istio's 15090.
            assert (await http_get(ip, 15090, "/stats/prometheus"))[0] == 200

            # Kill the app: the agent starts it again and traffic recovers.
            app_pid = int(subprocess.check_output(["pgrep", "-f", "--", f"SimpleHTTPRequestHandler.*{app_port}"]).split()[0])
            os.kill(app_pid, signal.SIGKILL)

            async def recovered() -> bool:
                _, m = await http_get(ip, 15020, "/stats/prometheus")
                return b'restarts_total{process="app"} 1' in m and (await http_get(ip, 9080, "/"))[0] == 200

            await eventually(recovered, 15)
            new_app = int(subprocess.check_output(["pgrep", "-f", "--", f"SimpleHTTPRequestHandler.*{app_port}"]).split()[0])
            proxy_pid = int(subprocess.check_output(["pgrep", "-f", "--", str(tmp_path / "logs")]).split()[0])
        finally:
            agent.send_signal(signal.SIGTERM)
            code = agent.wait(20)
        assert code == 0
        assert not alive(new_app) and not alive(proxy_pid)
