"""`pilotfish apply / get / delete` against a running istiod."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml
from click.testing import CliRunner

from pilotfish.cli.main import cli

from .mesh import istiod

VS = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews}}]}]
"""


async def run(*args: str) -> tuple[int, str, str]:
    result = await asyncio.to_thread(CliRunner().invoke, cli, list(args))
    return result.exit_code, result.stdout, result.stderr


async def test_apply_get_delete(tmp_path: Path) -> None:
    conf = tmp_path / "config"
    conf.mkdir()
    good = tmp_path / "vs.yaml"
    good.write_text(VS)
    bad = tmp_path / "bad.yaml"
    bad.write_text(VS.replace("name: reviews}", "name: broken}") + "  tcp: [{route: [{destination: {host: x}, weight: -3}]}]\n")
    async with istiod(conf) as cp:
        api = ("--istiod", f"http://127.0.0.1:{cp.http_port}")
        code, out, err = await run("apply", "-f", str(good), "-f", str(bad), *api)
        assert code == 1 and f"{bad}:7: VirtualService default/broken: spec.tcp[0]: weight -3 < 0" in err and out == ""
        code, out, _ = await run("apply", "-f", str(good), *api)
        # What was applied is analyzed against the whole mesh: no Service "reviews" exists.
        assert code == 0 and out.splitlines() == [
            "VirtualService default/reviews created",
            'Error [IST0101] (VirtualService default/reviews) Referenced host not found: "reviews" [istiod]']
        code, out, _ = await run("apply", "-f", str(good), *api)
        assert out.splitlines()[0] == "VirtualService default/reviews unchanged"
        code, out, _ = await run("get", "virtualservice", *api)
        assert out.split() == ["NAMESPACE", "NAME", "KIND", "default", "reviews", "VirtualService"]
        code, out, _ = await run("get", "VirtualService", "reviews", "-n", "default", "-o", "yaml", *api)
        assert yaml.safe_load(out)["spec"]["hosts"] == ["reviews"]
        code, out, _ = await run("delete", "-f", str(good), *api)
        assert (code, out) == (0, "VirtualService default/reviews deleted\n")
        code, _, err = await run("get", "VirtualService", "reviews", *api)
        assert code == 1 and "not found" in err


SERVICE = """apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
"""


async def test_analyze_the_running_mesh_and_a_change_layered_on_it(tmp_path: Path) -> None:
    """``analyze`` without -f reads istiod's config as istioctl reads a live cluster (its
    Services count); ``--live -f`` checks a change on top of it before it is applied."""
    conf = tmp_path / "config"
    conf.mkdir()
    (conf / "vs.yaml").write_text(VS.replace("host: reviews}", "host: reviews, subset: v1}"))
    (conf / "svc.yaml").write_text(SERVICE + """---
apiVersion: v1
kind: Pod
metadata: {name: reviews-v1-1, labels: {app: reviews, version: v1}}
spec: {containers: [{name: reviews, ports: [{containerPort: 9080}]}]}
status: {phase: Running, podIP: 10.0.0.7}
""")
    dr = tmp_path / "dr.yaml"
    dr.write_text("""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
""")
    async with istiod(conf) as cp:
        api = ("--istiod", f"http://127.0.0.1:{cp.http_port}")
        code, out, _ = await run("analyze", *api)
        assert code == 79
        assert out.splitlines() == [
            'Error [IST0101] (VirtualService default/reviews) Referenced host+subset in destinationrule '
            'not found: "reviews+v1" [istiod]']  # the host itself is found: its Service is live
        code, out, _ = await run("analyze", "--live", "-f", str(dr), *api)
        assert code == 0, out
        assert "No validation issues found when analyzing namespace: default." in out
        code, out, _ = await run("analyze", "-f", str(dr), *api)  # the file alone: no Service to check against
        assert code == 0
