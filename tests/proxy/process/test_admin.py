"""The admin server's endpoints."""

from __future__ import annotations

import json

from ..conftest import Backend, bootstrap, client, cluster, port_of, running_proxy
from .helpers import get


async def test_admin_endpoints(backend: Backend) -> None:
    doc = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "a"}}], [cluster("a", backend.port)])
    async with running_proxy(doc) as proxy:
        admin = proxy.admin_port
        async with client(port_of(proxy)) as c:
            for _ in range(3):
                await c.request()
            r = await get(admin, "/stats")
            stats = dict(line.split(": ") for line in r.body.decode().splitlines())
            assert stats["cluster.a.upstream_rq_total"] == "3"
            assert stats["cluster.a.upstream_rq_2xx"] == "3"
            assert stats["cluster.a.upstream_rq_200"] == "3"
            assert stats["cluster.a.upstream_cx_active"] == "1"
            assert stats["http.ingress.downstream_rq_active"] == "0"
            assert stats["http.ingress.downstream_cx_active"] == "1"
        r = await get(admin, "/ready")
        assert (r.status, r.body) == (200, b"LIVE\n")
        assert (await get(admin, "/healthz")).status == 200
        info = json.loads((await get(admin, "/server_info")).body)
        assert info["state"] == "LIVE" and info["node"]["id"].startswith("sidecar~")
        prom = (await get(admin, "/stats/prometheus")).body.decode()
        assert 'envoy_cluster_upstream_rq_total{envoy_cluster_name="a"} 3' in prom
        assert 'envoy_cluster_upstream_rq{envoy_response_code="200",envoy_cluster_name="a"} 3' in prom
        assert "# TYPE envoy_cluster_upstream_rq_total counter" in prom
        clusters = (await get(admin, "/clusters")).body.decode()
        assert f"a::127.0.0.1:{backend.port}::rq_active::0" in clusters
        listeners = (await get(admin, "/listeners")).body.decode()
        assert listeners.strip() == f"main::127.0.0.1:{port_of(proxy)}"
        dump = json.loads((await get(admin, "/config_dump")).body)
        types = [c["@type"].rsplit(".", 1)[-1] for c in dump["configs"]]
        assert types == ["BootstrapConfigDump", "ClustersConfigDump", "ListenersConfigDump", "RoutesConfigDump"]
        assert dump["configs"][1]["static_clusters"][0]["cluster"]["name"] == "a"
        assert dump["configs"][3]["static_route_configs"][0]["route_config"]["virtual_hosts"][0]["name"] == "all"
        assert (await get(admin, "/quitquitquit")).status == 405
        assert (await get(admin, "/quitquitquit", "POST")).body == b"OK\n"
        await proxy._stop.wait()
