"""The admin's output read as tools read Envoy's: JSON parsed into Envoy's admin protos,
text lines split on ``::`` and ``: ``, Prometheus histograms as a scraper sees them."""

from __future__ import annotations

import json
import re

from envoy.admin.v3 import clusters_pb2, config_dump_pb2, listeners_pb2
from google.protobuf import json_format

from ..conftest import Backend, Reply, bootstrap, client, cluster, port_of, running_proxy


async def get(port: int, path: str, method: str = "GET"):
    async with client(port) as c:
        return await c.request(method, path=path)


def _doc(backend: Backend) -> dict:
    doc = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "a"}}], [cluster("a", backend.port)])
    lbe = doc["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]
    lbe["locality"] = {"region": "eu-west", "zone": "eu-west-1a", "sub_zone": "rack7"}
    lbe["lb_endpoints"][0]["endpoint"]["hostname"] = "origin.local"
    return doc


async def test_clusters_json_is_envoys_clusters_proto(backend: Backend) -> None:
    backend.handler = lambda s: Reply(status=503)
    async with running_proxy(_doc(backend)) as proxy:
        async with client(port_of(proxy)) as c:
            for _ in range(2):
                assert (await c.request()).status == 503
        backend.handler = lambda s: Reply()
        async with client(port_of(proxy)) as c:
            for _ in range(3):
                await c.request()
        r = await get(proxy.admin_port, "/clusters?format=json")
        assert r.status == 200 and r.headers["content-type"] == "application/json"
        msg = json_format.Parse(r.body, clusters_pb2.Clusters())  # fails on any field not in Envoy's proto
        [status] = msg.cluster_statuses
        assert status.name == "a" and not status.added_via_api
        assert [t.max_requests.value for t in status.circuit_breakers.thresholds] == [1024, 1024]
        [host] = status.host_statuses
        assert (host.address.socket_address.address, host.address.socket_address.port_value) == (
            "127.0.0.1", backend.port)
        assert host.hostname == "origin.local"
        assert (host.locality.region, host.locality.zone, host.locality.sub_zone) == ("eu-west", "eu-west-1a", "rack7")
        stats = {s.name: s.value for s in host.stats}
        assert (stats["rq_total"], stats["rq_success"], stats["rq_error"], stats["rq_active"]) == (5, 3, 2, 0)
        types = {s.name: s.type for s in host.stats}
        assert types["rq_total"] == types["cx_total"] == 0  # COUNTER
        assert types["cx_active"] == types["rq_active"] == 1  # GAUGE
        assert host.health_status.eds_health_status == 1  # HEALTHY
        assert host.weight == 1 and host.priority == 0
        raw = json.loads(r.body)  # Envoy's JSON mapping: proto field names, uint64 as strings
        stat = next(s for s in raw["cluster_statuses"][0]["host_statuses"][0]["stats"] if s["name"] == "rq_total")
        assert stat == {"name": "rq_total", "value": "5"}


async def test_clusters_text_has_envoys_per_host_lines(backend: Backend) -> None:
    async with running_proxy(_doc(backend)) as proxy:
        async with client(port_of(proxy)) as c:
            for _ in range(4):
                await c.request()
        body = (await get(proxy.admin_port, "/clusters")).body.decode()
        p = f"a::127.0.0.1:{backend.port}::"
        values = {line[len(p):].split("::")[0]: line.rsplit("::", 1)[1]
                  for line in body.splitlines() if line.startswith(p)}
        assert values["rq_total"] == "4" and values["rq_success"] == "4" and values["rq_error"] == "0"
        assert values["cx_total"] == "1" and values["cx_active"] == "1" and values["cx_connect_fail"] == "0"
        assert (values["region"], values["zone"], values["sub_zone"]) == ("eu-west", "eu-west-1a", "rack7")
        assert values["hostname"] == "origin.local" and values["canary"] == "false"
        assert values["priority"] == "0" and values["weight"] == "1" and values["health_flags"] == "healthy"
        assert values["success_rate"] == "-1" and values["local_origin_success_rate"] == "-1"
        host_keys = [line[len(p):].split("::")[0] for line in body.splitlines() if line.startswith(p)]
        stats = host_keys[:8]
        assert stats == sorted(stats) == ["cx_active", "cx_connect_fail", "cx_total", "rq_active", "rq_error",
                                          "rq_success", "rq_timeout", "rq_total"]  # Envoy prints them sorted
        assert "a::added_via_api::false" in body.splitlines()
        assert "a::default_priority::max_connections::1024" in body.splitlines()


async def test_clusters_count_connect_failures_per_host(backend: Backend) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    doc = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "a"}}], [cluster("a", dead)])
    async with running_proxy(doc) as proxy:
        async with client(port_of(proxy)) as c:
            assert (await c.request()).status == 503
        r = await get(proxy.admin_port, "/clusters?format=json")
        [host] = json_format.Parse(r.body, clusters_pb2.Clusters()).cluster_statuses[0].host_statuses
        stats = {s.name: s.value for s in host.stats}
        assert (stats["cx_total"], stats["cx_connect_fail"], stats["rq_error"]) == (1, 1, 1)


async def test_listeners_json_is_envoys_listeners_proto(backend: Backend) -> None:
    async with running_proxy(_doc(backend)) as proxy:
        r = await get(proxy.admin_port, "/listeners?format=json")
        assert r.headers["content-type"] == "application/json"
        msg = json_format.Parse(r.body, listeners_pb2.Listeners())
        [st] = msg.listener_statuses
        assert st.name == "main"
        assert (st.local_address.socket_address.address, st.local_address.socket_address.port_value) == (
            "127.0.0.1", port_of(proxy))
        text = (await get(proxy.admin_port, "/listeners")).body.decode()
        assert text == f"main::127.0.0.1:{port_of(proxy)}\n"


async def test_help_lists_endpoints_as_envoy(backend: Backend) -> None:
    async with running_proxy(_doc(backend)) as proxy:
        r = await get(proxy.admin_port, "/help")
        lines = r.body.decode().splitlines()
        assert lines[0] == "admin commands are:"
        paths = [line.split(":")[0].strip() for line in lines[1:] if line.startswith("  /")]
        assert paths == sorted(paths)
        for p in ("/clusters", "/config_dump", "/listeners", "/quitquitquit", "/ready", "/server_info", "/stats",
                  "/stats/prometheus", "/help", "/drain_listeners"):
            assert p in paths
        assert "  /quitquitquit: exit the server" in lines
        assert "      format: File format to use; One of (text, json)" in lines
        r = await get(proxy.admin_port, "/nope")
        assert r.status == 404 and r.body.decode().startswith("invalid path. admin commands are:\n")


async def test_config_dump_resource_mask_and_eds(backend: Backend) -> None:
    async with running_proxy(_doc(backend)) as proxy:
        admin = proxy.admin_port
        dump = json_format.Parse((await get(admin, "/config_dump")).body, config_dump_pb2.ConfigDump(),
                                 ignore_unknown_fields=False)
        names = [c.TypeName().rsplit(".", 1)[-1] for c in dump.configs]
        assert "EndpointsConfigDump" not in names  # only with include_eds, as Envoy
        r = await get(admin, "/config_dump?include_eds")
        names = [c["@type"].rsplit(".", 1)[-1] for c in json.loads(r.body)["configs"]]
        assert names == ["BootstrapConfigDump", "ClustersConfigDump", "EndpointsConfigDump",
                         "ListenersConfigDump", "RoutesConfigDump"]
        eds = json.loads(r.body)["configs"][2]["static_endpoint_configs"][0]["endpoint_config"]
        assert eds["cluster_name"] == "a"

        r = await get(admin, "/config_dump?resource=static_clusters")
        configs = json.loads(r.body)["configs"]
        assert [c["@type"] for c in configs] == [
            "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster"]
        assert configs[0]["cluster"]["name"] == "a" and "last_updated" in configs[0]

        r = await get(admin, "/config_dump?resource=static_clusters&mask=cluster.name")
        configs = json.loads(r.body)["configs"]
        assert configs[0]["cluster"] == {"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
                                         "name": "a"}
        assert "last_updated" not in configs[0]

        r = await get(admin, "/config_dump?resource=static_listeners&mask=listener.name,last_updated")
        [one] = json.loads(r.body)["configs"]
        assert one["listener"]["name"] == "main" and "address" not in one["listener"] and "last_updated" in one

        r = await get(admin, "/config_dump?mask=static_clusters")
        configs = json.loads(r.body)["configs"]
        assert configs[1]["static_clusters"][0]["cluster"]["name"] == "a"
        assert list(configs[0]) == ["@type"]  # the bootstrap dump has no static_clusters field: emptied
        assert list(configs[2]) == ["@type"]

        r = await get(admin, "/config_dump?resource=no_such_thing")
        assert (r.status, r.body) == (404, b"no_such_thing not found in config dump")
        r = await get(admin, "/config_dump?resource=bootstrap")
        assert r.status == 400
        assert r.body == b"bootstrap is not a repeated field. Use ?mask=bootstrap to get only this field"


async def test_server_stats_as_envoy(backend: Backend) -> None:
    async with running_proxy(_doc(backend)) as proxy:
        async with client(port_of(proxy)) as c:
            await c.request()
            text = (await get(proxy.admin_port, "/stats?filter=^server%5C.")).body.decode()
            stats = dict(line.split(": ") for line in text.splitlines())
            assert stats["server.concurrency"] == "1"
            assert stats["server.live"] == "1" and stats["server.state"] == "0"
            assert stats["server.total_connections"] == "1"  # this client's connection
            assert stats["server.parent_connections"] == "0" and stats["server.hot_restart_epoch"] == "0"
            assert int(stats["server.uptime"]) >= 0 and int(stats["server.version"]) > 0
            assert int(stats["server.memory_allocated"]) > 1_000_000
            assert int(stats["server.memory_heap_size"]) > 1_000_000
        prom = (await get(proxy.admin_port, "/stats/prometheus")).body.decode()
        assert "# TYPE envoy_server_uptime gauge" in prom
        assert re.search(r"^envoy_server_concurrency\{\} 1$", prom, re.M)
