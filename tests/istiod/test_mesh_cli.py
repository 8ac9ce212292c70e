"""`pilotfish proxy-status` and `pilotfish proxy-config` on a running mesh: istiod in process, a
gateway proxy process connected to it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner

from pilotfish.cli.main import cli

from .mesh import backend, config, eventually, free_port, gateway_bootstrap, get, istiod, proxy_process

GATEWAY_ID = "ingress-1.istio-system"


async def run(*args: str) -> tuple[int, str]:
    """The CLI in a thread: it calls istiod's HTTP API, which this test's loop serves."""
    result = await asyncio.to_thread(CliRunner().invoke, cli, list(args))
    return result.exit_code, result.output


async def test_proxy_status_and_proxy_config_show_a_connected_gateway(tmp_path: Path) -> None:
    (s1, v1), (s2, v2) = await backend("v1"), await backend("v2")
    gw = free_port()
    conf = tmp_path / "config"
    conf.mkdir()
    for name, text in config(gw, v1, v2).items():
        (conf / name).write_text(text)
    try:
        async with istiod(conf) as cp:
            api = f"http://127.0.0.1:{cp.http_port}"
            admin = free_port()
            with proxy_process(gateway_bootstrap(cp.xds_port, admin), tmp_path):
                await eventually(lambda: _ok(gw), 20)

                code, out = await run("proxy-status", "--istiod", api)
                assert code == 0, out
                header, row = out.splitlines()[:2]
                assert header.split() == ["NAME", "CDS", "LDS", "EDS", "RDS", "ISTIOD", "VERSION"]
                assert row.split()[:5] == [GATEWAY_ID, "SYNCED", "SYNCED", "SYNCED", "SYNCED"]

                code, out = await run("proxy-config", "cluster", GATEWAY_ID, "--istiod", api)
                assert code == 0, out
                rows = [line.split() for line in out.splitlines()[1:]]
                assert ["web.internal", "8000", "v1", "outbound", "EDS", "-"] in rows
                assert ["web.internal", "8000", "v2", "outbound", "EDS", "-"] in rows

                code, out = await run("proxy-config", "route", GATEWAY_ID, "--istiod", api)
                assert code == 0 and f"http.{gw}" in out and "web.example.com" in out and "web.default" in out

                code, out = await run("proxy-config", "listener", GATEWAY_ID, "--istiod", api)
                assert code == 0 and f"Route: http.{gw}" in out

                code, out = await run("proxy-config", "endpoint", GATEWAY_ID, "--istiod", api, "-o", "json")
                dump = json.loads(out)
                addresses = {lb["endpoint"]["address"]["socketAddress"]["portValue"]
                             for c in dump["dynamicEndpointConfigs"] for group in c["endpointConfig"]["endpoints"]
                             for lb in group["lbEndpoints"]}
                assert {v1, v2} <= addresses

                # The same, read from the proxy's own admin: what it holds, not what istiod would send.
                code, out = await run("proxy-config", "cluster", "--admin", f"http://127.0.0.1:{admin}")
                assert code == 0, out
                rows = [line.split() for line in out.splitlines()[1:]]
                assert ["web.internal", "8000", "v2", "outbound", "EDS", "-"] in rows
                assert ["xds-grpc", "-", "-", "-", "STATIC", "-"] not in rows  # static: not an xDS cluster

                code, out = await run("proxy-config", "cluster", "nobody.default", "--istiod", api)
                assert code == 1 and "not connected" in out
    finally:
        s1.close()
        s2.close()


async def _ok(port: int) -> bool:
    return (await get(port, "web.example.com"))[0] == 200
