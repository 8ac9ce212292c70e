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
        assert code == 1 and f"{bad}:1: VirtualService default/broken" in err and out == ""
        code, out, _ = await run("apply", "-f", str(good), *api)
        assert (code, out) == (0, "VirtualService default/reviews created\n")
        code, out, _ = await run("apply", "-f", str(good), *api)
        assert out == "VirtualService default/reviews unchanged\n"
        code, out, _ = await run("get", "virtualservice", *api)
        assert out.split() == ["NAMESPACE", "NAME", "KIND", "default", "reviews", "VirtualService"]
        code, out, _ = await run("get", "VirtualService", "reviews", "-n", "default", "-o", "yaml", *api)
        assert yaml.safe_load(out)["spec"]["hosts"] == ["reviews"]
        code, out, _ = await run("delete", "-f", str(good), *api)
        assert (code, out) == (0, "VirtualService default/reviews deleted\n")
        code, _, err = await run("get", "VirtualService", "reviews", *api)
        assert code == 1 and "not found" in err
