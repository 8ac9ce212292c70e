"""End to end: Istio YAML in a directory, `pilotfish istiod` translating it, and a `pilotfish proxy`
gateway process started from a plain Envoy bootstrap whose ADS points at istiod, carrying real
traffic to two backends as the YAML says."""

from __future__ import annotations

from pathlib import Path

from .mesh import backend, config, eventually, free_port, gateway_bootstrap, get, istiod, proxy_process


async def test_a_gateway_routes_as_the_istio_yaml_says_and_follows_edits_and_istiod_restarts(tmp_path: Path) -> None:
    (s1, v1), (s2, v2) = await backend("v1"), await backend("v2")
    gw = free_port()
    conf = tmp_path / "config"
    conf.mkdir()
    for name, text in config(gw, v1, v2).items():
        (conf / name).write_text(text)
    try:
        async with istiod(conf) as cp:
            xds_port = cp.xds_port
            with proxy_process(gateway_bootstrap(xds_port), tmp_path):
                async def canary_is(name: bytes) -> bool:
                    return await get(gw, "web.example.com", {"x-canary": "yes"}) == (200, name)

                await eventually(lambda: canary_is(b"v2"), 20)
                counts = {b"v1": 0, b"v2": 0}
                for _ in range(100):
                    status, body = await get(gw, "web.example.com")
                    assert status == 200
                    counts[body] += 1
                assert 60 <= counts[b"v1"] <= 95, counts  # 80/20
                # A host the Gateway lists but no VirtualService binds: 404, as Istio.
                assert (await get(gw, "unbound.example.com"))[0] == 404

                # A live edit of the VirtualService file.
                (conf / "vs.yaml").write_text(config(gw, v1, v2, canary="v1")["vs.yaml"])
                await eventually(lambda: canary_is(b"v1"))

                # istiod goes away: the gateway keeps its last config.
                await cp.stop()
                assert await canary_is(b"v1")
                (conf / "vs.yaml").write_text(config(gw, v1, v2, canary="v2")["vs.yaml"])
                async with istiod(conf, xds_port) as again:
                    assert again.xds_port == xds_port
                    await eventually(lambda: canary_is(b"v2"), 20)  # reconnected and resynced
    finally:
        s1.close()
        s2.close()
