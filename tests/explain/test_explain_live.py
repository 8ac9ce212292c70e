"""``pilotfish x explain`` against a running mesh: istiod in process, a `pilotfish proxy`
gateway connected to it, explain reading istiod's view (--istiod) and the proxy's own (--admin)."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path

from ..istiod.mesh import eventually, free_port, gateway_bootstrap, istiod, proxy_process
from .bookinfo import config_dir, explain_json, gateway_yaml


async def test_explain_reads_a_connected_gateway_from_istiod_and_from_its_admin(tmp_path: Path) -> None:
    gw, admin = free_port(), free_port()
    conf = config_dir(tmp_path / "conf", gateway_yaml(gw, backend_port=free_port()))
    async with istiod(conf) as cp:
        bootstrap = gateway_bootstrap(cp.xds_port)
        bootstrap["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}}
        with proxy_process(bootstrap, tmp_path):
            async def connected() -> bool:
                return cp.node_of("ingress-1.istio-system") is not None

            await eventually(connected, 20)
            base = f"http://127.0.0.1:{cp.http_port}"
            args = ("--url", f"http://bookinfo.example.com:{gw}/productpage")
            out = await asyncio.to_thread(explain_json, "ingress-1.istio-system", "--istiod", base, *args)
            assert out["outcome"] == "routed"
            assert out["listener"]["port"] == gw and out["route_config"]["name"] == f"http.{gw}"
            assert out["cluster"]["name"] == "outbound|9080||productpage.default.svc.cluster.local"
            unbound = await asyncio.to_thread(explain_json, "ingress-1.istio-system", "--istiod", base,
                                              "--url", f"http://unbound.example.com:{gw}/")
            assert unbound["outcome"] == "not_found"

            def admin_has_routes() -> bool:
                with urllib.request.urlopen(f"http://127.0.0.1:{admin}/config_dump", timeout=2) as r:
                    return f"http.{gw}".encode() in r.read()

            async def admin_ready() -> bool:
                return await asyncio.to_thread(admin_has_routes)

            await eventually(admin_ready, 20)
            held = await asyncio.to_thread(explain_json, "--admin", f"http://127.0.0.1:{admin}", *args)
            assert held["outcome"] == "routed"
            assert held["cluster"] == out["cluster"] and held["endpoints"] == out["endpoints"]
