"""Faults of the mesh itself: an invalid apply changes nothing; a killed sidecar is restarted
by its agent and traffic recovers; a killed istiod leaves the proxies serving their last config,
and when it is back (the mesh restarts it) they resync and nothing applied before is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import Mesh, eventually, request
from .web_app import GATEWAY, WEB_SERVICE, documents, virtual_service, web_content, web_deployment


DESTINATION_RULE = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web}
spec:
  host: web
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
"""


def routing(subset: str) -> str:
    return documents(GATEWAY, DESTINATION_RULE, virtual_service(subset))


@pytest.fixture(scope="module")
def web(mesh_factory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:  # type: ignore[no-untyped-def]
    src = tmp_path_factory.mktemp("web")
    web_content(src, "v1", "v2")
    (src / "app.yaml").write_text(documents(WEB_SERVICE, web_deployment("v1"), web_deployment("v2")))
    (src / "routing.yaml").write_text(routing("v1"))
    yield mesh_factory(src / "app.yaml", src / "routing.yaml")


def served(mesh: Mesh) -> str:
    return request(mesh.ingress + "/", timeout=5).body


def test_an_invalid_apply_is_refused_with_istios_error_and_changes_nothing(web: Mesh, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(routing("v2").replace('hosts: ["*"]\n  gateways', 'hosts: []\n  gateways'))
    result = web.run("apply", "-f", str(bad))
    assert result.returncode == 1
    assert "bad.yaml:" in result.stderr and "VirtualService default/web" in result.stderr
    assert served(web) == "web v1\n"
    assert "subset: v1" in web.run("get", "virtualservice", "web", "-o", "yaml", check=True).stdout


def test_a_killed_sidecar_is_restarted_and_traffic_recovers(web: Mesh) -> None:
    (v1,) = [w for w in web.workloads("web") if w["labels"]["version"] == "v1"]
    bootstrap = f"{v1['name']}.bootstrap.json"
    pid = int(subprocess.check_output(["pgrep", "-f", "--", bootstrap]).split()[0])
    os.kill(pid, signal.SIGKILL)
    eventually(lambda: served(web) == "web v1\n", 30)
    new = int(subprocess.check_output(["pgrep", "-f", "--", bootstrap]).split()[0])
    assert new != pid
    assert eventually(lambda: all(w["ready"] for w in web.status()["workloads"]), 30)


def test_istiod_down_proxies_keep_serving_then_resync_and_nothing_is_lost(web: Mesh, tmp_path: Path) -> None:
    web.apply(routing("v2"))
    assert served(web) == "web v2\n"
    istiod = web.mesh["istiod"]["pid"]
    os.kill(istiod, signal.SIGSTOP)  # istiod gone quiet: the proxies keep their last config
    try:
        for _ in range(5):
            assert served(web) == "web v2\n"
    finally:
        os.kill(istiod, signal.SIGKILL)
        os.kill(istiod, signal.SIGCONT)
    # The mesh starts istiod again; it serves what was applied before (v2), and takes new changes.
    eventually(lambda: web.mesh["istiod"]["pid"] not in (None, istiod) and web.status()["istiod"]["ready"], 30)
    time.sleep(0.5)
    assert served(web) == "web v2\n"
    web.apply(routing("v1"))
    eventually(lambda: served(web) == "web v1\n", 20)
    assert all(w["ready"] for w in web.status()["workloads"])
