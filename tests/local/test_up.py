"""The local mesh end to end, through the ``pilotfish`` command as a user runs it: ``up``
(detached and in the foreground), ``status``, ``apply`` while up, the agent restarting a killed
app, ``logs``, ``down``, and cleaning up after a crash. Each test's mesh lives in its own
directory, so its addresses (a /24 of 127/8 chosen from that path) meet no other test's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ..e2e.harness import PILOTFISH, Mesh, eventually, request
from ..e2e.web_app import GATEWAY, WEB_SERVICE, documents, virtual_service, web_content, web_deployment

APP = documents(WEB_SERVICE, web_deployment("v1", replicas=2), GATEWAY, virtual_service())
V2 = web_deployment("v2")


def run(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PILOTFISH, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def get(url: str) -> tuple[int, str]:
    reply = request(url, timeout=5)
    return reply.status, reply.body


def ours(tmp: Path) -> list[int]:
    """Processes of this test's mesh: every one runs in its directory (apps beside their manifest)."""
    return Mesh(tmp).processes()


@pytest.fixture
def app_dir(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "app.yaml").write_text(APP)
    web_content(tmp_path, "v1", "v2")
    yield tmp_path
    run(tmp_path, "down")
    for pid in ours(tmp_path):
        os.kill(pid, signal.SIGKILL)


def test_up_status_apply_restart_logs_down(app_dir: Path) -> None:
    up = run(app_dir, "up", "-f", "app.yaml", "--detach")
    assert up.returncode == 0, up.stderr
    status = json.loads(run(app_dir, "status", "-o", "json").stdout)
    assert up.stdout.splitlines()[-1] == f"ingress: {status['ingress_url']}"
    assert status["istiod"]["ready"] and status["istiod"]["xds"].endswith(":15010")
    workloads = status["workloads"]
    assert len(workloads) == 2 and all(w["ready"] for w in workloads)
    w = workloads[0]
    assert w["name"].startswith("web-v1-") and w["namespace"] == "default"
    assert w["labels"] == {"app": "web", "version": "v1"} and w["identity"] == ""
    assert w["ports"]["inbound"] == {"8000": 9000}  # the sidecar serves service port 8000 on 9000
    assert isinstance(w["ports"]["outbound"], int) and (w["ports"]["admin"], w["ports"]["health"]) == (15000, 15021)
    assert len({x["address"] for x in workloads}) == 2  # an address each, like pods
    assert [g["labels"]["istio"] for g in status["gateways"]] == ["ingressgateway"]

    # Through the ingress gateway: Gateway port 80 is served on the gateway Service's target port 8080.
    assert status["ingress_url"].endswith(":8080")
    assert get(status["ingress_url"] + "/") == (200, "web v1\n")
    # Each workload's sidecar serves the service port on the instance's address.
    assert get(f"http://{w['address']}:9000/")[0] == 200

    again = run(app_dir, "up", "-f", "app.yaml", "--detach")
    assert again.returncode == 1 and "already up" in again.stderr

    # A Deployment applied while up starts, as a cluster would run it; traffic reaches it.
    (app_dir / "v2.yaml").write_text(V2)
    applied = run(app_dir, "apply", "-f", "v2.yaml")
    assert applied.returncode == 0, applied.stderr

    def three_ready() -> bool:
        s = json.loads(run(app_dir, "status", "-o", "json").stdout)
        return len(s["workloads"]) == 3 and all(x["ready"] for x in s["workloads"])

    eventually(three_ready, 30)
    # A Deployment the local mesh cannot run is stored (istiod takes it) with a warning; the mesh goes on.
    (app_dir / "norun.yaml").write_text(V2.replace("web-v2", "norun").replace(
        '      annotations: {pilotfish.io/run: "{python} -m http.server --bind 127.0.0.1 --directory v2 {port}"}\n', ""))
    norun = run(app_dir, "apply", "-f", "norun.yaml")
    assert norun.returncode == 0 and "no 'pilotfish.io/run' annotation" in norun.stderr, norun.stderr
    time.sleep(1.5)
    assert three_ready()
    eventually(lambda: "web v2\n" in {get(status["ingress_url"] + "/")[1] for _ in range(12)}, 20)

    # Kill an app: its agent starts it again and the service recovers.
    app_pid = int(subprocess.check_output(["pgrep", "-f", "--", "http.server --bind 127.0.0.1 --directory v1"]).split()[0])
    os.kill(app_pid, signal.SIGKILL)
    eventually(lambda: all(get(status["ingress_url"] + "/")[0] == 200 for _ in range(4)) and any(
        int(p) != app_pid for p in subprocess.check_output(
            ["pgrep", "-f", "--", "http.server --bind 127.0.0.1 --directory v1"]).split()), 20)

    logs = run(app_dir, "logs", "web-v1")
    assert logs.returncode == 0 and '"GET / HTTP/1.1" 200' in logs.stdout
    assert run(app_dir, "logs", "web-v1", "-c", "proxy").returncode == 0

    down = run(app_dir, "down")
    assert down.returncode == 0 and "stopped the mesh" in down.stdout
    eventually(lambda: not ours(app_dir), 10)
    assert run(app_dir, "status").returncode == 1


def test_invalid_config_starts_nothing_and_stores_nothing(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(APP.replace('hosts: ["*"]\n  gateways', 'hosts: []\n  gateways'))
    result = run(tmp_path, "up", "-f", "bad.yaml", "--detach")
    assert result.returncode == 1
    assert "bad.yaml:" in result.stderr and "VirtualService default/web" in result.stderr
    assert not (tmp_path / ".pilotfish" / "mesh.json").exists()
    assert not ours(tmp_path)


def test_foreground_up_stops_everything_on_ctrl_c_and_down_cleans_after_a_crash(app_dir: Path) -> None:
    proc = subprocess.Popen([*PILOTFISH, "up", "-f", "app.yaml"], cwd=app_dir, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("mesh ready: 2 workload instance(s), 1 gateway(s)"), proc.stderr.read()  # type: ignore[union-attr]
        assert len(ours(app_dir)) >= 1
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    eventually(lambda: not ours(app_dir), 10)
    assert not (app_dir / ".pilotfish" / "mesh.json").exists()

    # A crashed supervisor: its children stop with it; down clears what is left, up works again.
    assert run(app_dir, "up", "--detach").returncode == 0  # the stored config comes back up
    mesh = json.loads((app_dir / ".pilotfish" / "mesh.json").read_text())
    os.kill(mesh["pid"], signal.SIGKILL)
    down = run(app_dir, "down")
    assert down.returncode == 0
    eventually(lambda: not ours(app_dir), 15)
    assert not (app_dir / ".pilotfish" / "mesh.json").exists()


def test_foreground_up_on_a_terminal_shows_the_live_table(app_dir: Path) -> None:
    import pty
    import select

    leader, follower = pty.openpty()
    proc = subprocess.Popen([*PILOTFISH, "up", "-f", "app.yaml"], cwd=app_dir, stdin=follower, stdout=follower,
                            stderr=follower, env={**os.environ, "COLUMNS": "140", "TERM": "xterm"})
    os.close(follower)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (b"web-v1-" in seen and b"REQ/S" in seen and seen.count(b"yes") >= 4):
            if select.select([leader], [], [], 0.5)[0]:
                try:
                    seen += os.read(leader, 65536)
                except OSError:
                    break
        text = seen.decode(errors="replace")
        assert "mesh ready: 2 workload instance(s)" in text
        assert "READY" in text and "REQ/S" in text and "istio-ingressgateway" in text, text[-2000:]
        assert text.count("yes") >= 4  # istiod, the gateway and both instances ready
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    eventually(lambda: not ours(app_dir), 10)


OUTSIDE = """
apiVersion: v1
kind: Service
metadata: {name: plain}
spec:
  selector: {app: plain}
  ports: [{name: http, port: 8000, targetPort: 9000}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: plain}
spec:
  selector: {matchLabels: {app: plain}}
  template:
    metadata:
      labels: {app: plain, sidecar.istio.io/inject: "false"}
      annotations: {pilotfish.io/run: "{python} -m http.server --bind 127.0.0.1 --directory v1 {port}"}
    spec:
      containers: [{name: web, image: python:3.11-slim, ports: [{containerPort: 9000}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: client}
spec:
  selector: {matchLabels: {app: client}}
  template:
    metadata:
      labels: {app: client}
      annotations: {pilotfish.io/run: "{python} -c 'import time; time.sleep(1e9)'"}
    spec:
      containers: [{name: c, image: python:3.11-slim}]
"""


def test_a_workload_without_a_sidecar_runs_on_its_address_and_meshed_clients_reach_it(app_dir: Path) -> None:
    (app_dir / "outside.yaml").write_text(OUTSIDE)
    assert run(app_dir, "up", "-f", "outside.yaml", "--detach").returncode == 0
    status = json.loads(run(app_dir, "status", "-o", "json").stdout)
    (plain,) = [w for w in status["workloads"] if w["workload"] == "plain"]
    assert plain["ready"] and plain["ports"]["outbound"] is None  # no sidecar, no HTTP proxy
    # Its address serves the container port, as a pod's does.
    assert get(f"http://{plain['address']}:9000/") == (200, "web v1\n")
    # A meshed client reaches it by service name through its own sidecar.
    out = run(app_dir, "exec", "client", "--", "python3", "-c",
              "import urllib.request; print(urllib.request.urlopen('http://plain:8000/').read().decode(), end='')")
    assert out.returncode == 0 and out.stdout == "web v1\n", out.stderr
    assert run(app_dir, "exec", "plain", "--", "true").returncode == 1  # nothing to exec through
    assert run(app_dir, "down").returncode == 0
    assert not list((app_dir / ".pilotfish" / "config" / "pods").glob("*.yaml"))


def test_shared_address_mode_gives_each_instance_ports_of_its_own(app_dir: Path) -> None:
    """Where the system has no loopback aliases (``--addresses shared`` forces it here): every
    instance on 127.0.0.1 with its own ports; traffic still reaches both replicas."""
    up = run(app_dir, "up", "-f", "app.yaml", "--detach", "--addresses", "shared")
    assert up.returncode == 0, up.stderr
    status = json.loads(run(app_dir, "status", "-o", "json").stdout)
    workloads = status["workloads"]
    assert {w["address"] for w in workloads + status["gateways"]} == {"127.0.0.1"}
    assert all(w["ready"] for w in workloads)
    ports = [w["ports"]["inbound"]["8000"] for w in workloads] + [w["ports"]["admin"] for w in workloads]
    assert len(set(ports)) == 4 and 15000 not in ports
    assert status["ingress_url"] == "http://127.0.0.1:8080"
    for w in workloads:  # each sidecar serves its own instance
        assert get(f"http://127.0.0.1:{w['ports']['inbound']['8000']}/") == (200, "web v1\n")
    for _ in range(20):
        assert get(status["ingress_url"] + "/") == (200, "web v1\n")
    logs = [run(app_dir, "logs", w["name"]).stdout.count('"GET / HTTP/1.1" 200') for w in workloads]
    assert all(n >= 2 for n in logs), logs  # both replicas served through the gateway (and once directly)


def test_down_after_a_crash_never_kills_a_process_that_reused_a_pid(tmp_path: Path) -> None:
    (tmp_path / "mesh").mkdir()
    (tmp_path / "elsewhere").mkdir()
    other = subprocess.Popen(["sleep", "60"], cwd=tmp_path / "elsewhere")
    try:
        state = tmp_path / "mesh" / ".pilotfish"
        state.mkdir()
        (state / "mesh.json").write_text(json.dumps({"pid": other.pid, "istiod": {"pid": other.pid},
                                                     "workloads": [{"pid": other.pid}], "gateways": []}))
        result = run(tmp_path / "mesh", "down")
        assert result.returncode == 0 and "not running" in result.stdout
        assert other.poll() is None  # not ours: left alone
        assert not (state / "mesh.json").exists()
    finally:
        other.kill()
        other.wait()
