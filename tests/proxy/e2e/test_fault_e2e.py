"""The fault filter (envoy.filters.http.fault) on the request path over loopback: aborts and
delays with their access-log flags and stats, per-route overrides, header-controlled faults,
gRPC aborts and max_active_faults."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import pytest

from pilotfish.proxy.common.errors import ProxyConfigError
from pilotfish.proxy.common.fractional import MILLION, Fraction
from pilotfish.proxy.filters.fault import NO_FAULT

from ..conftest import Backend, bootstrap, client, cluster, port_of, running_proxy

FAULT = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
ALL = {"numerator": 100}


def fault_filter(**config: Any) -> list[dict[str, Any]]:
    return [{"name": "envoy.filters.http.fault", "typed_config": {"@type": FAULT, **config}}]


def per_route(**config: Any) -> dict[str, Any]:
    return {"envoy.filters.http.fault": {"@type": FAULT, **config}}


def doc_for(backend: Backend, routes: list[dict[str, Any]] | None = None, log: Path | None = None,
            **fault: Any) -> dict[str, Any]:
    hcm: dict[str, Any] = {}
    if log is not None:
        hcm["access_log"] = [{"name": "log", "typed_config": {"@type": LOG, "path": str(log)}}]
    return bootstrap(routes or [{"match": {"prefix": "/"}, "route": {"cluster": "c"}}],
                     [cluster("c", backend.port)], http_filters=fault_filter(**fault), **hcm)


async def stats(proxy: Any) -> str:
    async with client(proxy.admin_port) as c:
        return (await c.request(path="/stats")).body.decode()


async def log_lines(path: Path, n: int) -> list[str]:
    async with asyncio.timeout(3):
        while True:
            if path.exists():
                lines = path.read_text().splitlines()
                if len(lines) >= n:
                    return lines
            await asyncio.sleep(0.05)


async def test_abort_100_percent_answers_status_with_flag_fi(backend: Backend, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    doc = doc_for(backend, log=log, abort={"http_status": 503, "percentage": ALL})
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        r = await c.request()
        assert (r.status, r.body) == (503, b"fault filter abort")
        assert backend.seen == []
        line = (await log_lines(log, 1))[0]
        assert '" 503 FI ' in line
        s = await stats(proxy)
        assert "http.ingress.fault.aborts_injected: 1" in s
        assert "http.ingress.fault.active_faults: 0" in s


async def test_abort_percentage_million_denominator(backend: Backend) -> None:
    # Istio's `percentage: {value: 0.1}` arrives as 1000 / MILLION: one request in a thousand.
    doc = doc_for(backend, abort={"http_status": 500,
                                  "percentage": {"numerator": 1000, "denominator": "MILLION"}})
    async with running_proxy(doc) as proxy:
        policy = proxy.config.listeners[0].hcm.fault.policy
        assert policy.abort.percentage == Fraction(1000, MILLION)
        rng = random.Random(7)
        hits = sum(policy.decide([], "c", rng) != NO_FAULT for _ in range(200_000))
        assert 150 < hits < 250
        async with client(port_of(proxy)) as c:  # nearly every request goes through
            statuses = [(await c.request()).status for _ in range(50)]
            assert statuses.count(200) >= 48


async def test_delay_does_not_hold_up_other_requests(backend: Backend, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    routes = [{"match": {"prefix": "/slow"}, "route": {"cluster": "c"},
               "typed_per_filter_config": per_route(delay={"fixed_delay": "0.3s", "percentage": ALL})},
              {"match": {"prefix": "/"}, "route": {"cluster": "c"}}]
    doc = doc_for(backend, routes, log=log)
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as slow, client(port_of(proxy)) as fast:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        slow_task = asyncio.create_task(slow.request(path="/slow", method="POST", body=b"payload"))
        await asyncio.sleep(0.02)
        r = await fast.request(path="/fast")
        fast_elapsed = loop.time() - t0
        assert r.status == 200 and fast_elapsed < 0.2
        rs = await slow_task
        assert rs.status == 200 and rs.body == b"a /slow"
        assert loop.time() - t0 >= 0.3
        assert [s.body for s in backend.seen if s.path == "/slow"] == [b"payload"]
        lines = await log_lines(log, 2)
        assert any('"POST /slow HTTP/1.1" 200 DI ' in line for line in lines)
        s = await stats(proxy)
        assert "http.ingress.fault.delays_injected: 1" in s
        assert "http.ingress.fault.active_faults: 0" in s


async def test_delay_then_abort(backend: Backend) -> None:
    doc = doc_for(backend, delay={"fixed_delay": "0.1s", "percentage": ALL},
                  abort={"http_status": 418, "percentage": ALL})
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        t0 = time.monotonic()
        r = await c.request()
        assert r.status == 418 and time.monotonic() - t0 >= 0.1
        assert backend.seen == []


async def test_per_route_and_virtual_host_override_replace_the_filter_config(backend: Backend) -> None:
    routes = {"virtual_hosts": [
        {"name": "override", "domains": ["vh.example"],
         "typed_per_filter_config": per_route(abort={"http_status": 429, "percentage": ALL}),
         "routes": [{"match": {"prefix": "/none"}, "route": {"cluster": "c"},
                     "typed_per_filter_config": per_route()},
                    {"match": {"prefix": "/"}, "route": {"cluster": "c"}}]},
        {"name": "all", "domains": ["*"], "routes": [
            {"match": {"prefix": "/teapot"}, "route": {"cluster": "c"},
             "typed_per_filter_config": per_route(abort={"http_status": 418, "percentage": ALL})},
            {"match": {"prefix": "/"}, "route": {"cluster": "c"}}]}]}
    doc = doc_for(backend, routes, abort={"http_status": 503, "percentage": ALL})
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        assert (await c.request(path="/teapot")).status == 418
        assert (await c.request(path="/other")).status == 503
        assert (await c.request(path="/x", host="vh.example")).status == 429
        assert (await c.request(path="/none", host="vh.example")).status == 200  # an empty override: no fault


async def test_header_faults_only_when_enabled(backend: Backend) -> None:
    enabled = doc_for(backend, abort={"header_abort": {}, "percentage": ALL},
                      delay={"header_delay": {}, "percentage": ALL})
    async with running_proxy(enabled) as proxy, client(port_of(proxy)) as c:
        assert (await c.request(headers={"x-envoy-fault-abort-request": "429"})).status == 429
        assert (await c.request(headers={"x-envoy-fault-abort-request": "429",
                                         "x-envoy-fault-abort-request-percentage": "0"})).status == 200
        t0 = time.monotonic()
        assert (await c.request(headers={"x-envoy-fault-delay-request": "150"})).status == 200
        assert time.monotonic() - t0 >= 0.15
        assert (await c.request()).status == 200
    disabled = doc_for(backend, abort={"http_status": 503, "percentage": {"numerator": 0}})
    async with running_proxy(disabled) as proxy, client(port_of(proxy)) as c:
        t0 = time.monotonic()
        r = await c.request(headers={"x-envoy-fault-abort-request": "429", "x-envoy-fault-delay-request": "300"})
        assert r.status == 200 and time.monotonic() - t0 < 0.25


async def test_grpc_abort_is_trailers_only(backend: Backend) -> None:
    doc = doc_for(backend, abort={"grpc_status": 14, "percentage": ALL})
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        r = await c.request(method="POST", headers={"content-type": "application/grpc"}, body=b"\0\0\0\0\0")
        assert r.status == 200
        assert r.headers["grpc-status"] == "14"
        assert r.headers["content-type"] == "application/grpc"
        assert r.headers["grpc-message"] == "fault filter abort"
        assert r.body == b""
    http = doc_for(backend, abort={"http_status": 503, "percentage": ALL})
    async with running_proxy(http) as proxy, client(port_of(proxy)) as c:
        # An HTTP abort of a gRPC request is mapped to a gRPC status (503 → UNAVAILABLE).
        r = await c.request(method="POST", headers={"content-type": "application/grpc"}, body=b"")
        assert (r.status, r.headers["grpc-status"]) == (200, "14")


async def test_max_active_faults(backend: Backend) -> None:
    doc = doc_for(backend, delay={"fixed_delay": "0.4s", "percentage": ALL}, max_active_faults=1)
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as a, client(port_of(proxy)) as b:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        first = asyncio.create_task(a.request(path="/a"))
        await asyncio.sleep(0.05)
        s = await stats(proxy)
        assert "http.ingress.fault.active_faults: 1" in s
        r = await b.request(path="/b")  # over the limit: no fault
        assert r.status == 200 and loop.time() - t0 < 0.3
        assert (await first).status == 200 and loop.time() - t0 >= 0.4
        s = await stats(proxy)
        assert "http.ingress.fault.faults_overflow: 1" in s
        assert "http.ingress.fault.active_faults: 0" in s


async def test_client_gone_during_delay_releases_the_fault(backend: Backend) -> None:
    doc = doc_for(backend, delay={"fixed_delay": "0.2s", "percentage": ALL}, max_active_faults=1)
    async with running_proxy(doc) as proxy:
        async with client(port_of(proxy)) as c:
            c.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        assert "http.ingress.fault.active_faults: 0" in await stats(proxy)
        assert backend.seen == []


def test_unsupported_fault_fields_are_errors(backend: Backend) -> None:
    from pilotfish.proxy.compile.bootstrap_file import parse_bootstrap
    from pilotfish.proxy.compile import compile_bootstrap

    doc = doc_for(backend, response_rate_limit={"fixed_limit": {"limit_kbps": 1}})
    with pytest.raises(ProxyConfigError) as err:
        loaded = parse_bootstrap(doc)
        compile_bootstrap(loaded.message, random.Random(1), loaded.warnings)
    assert "response_rate_limit" in err.value.field_path


def test_per_filter_config_of_another_type_is_an_error(backend: Backend) -> None:
    from pilotfish.proxy.compile.bootstrap_file import parse_bootstrap

    routes = [{"match": {"prefix": "/"}, "route": {"cluster": "c"}, "typed_per_filter_config": {
        "lua": {"@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute"}}}]
    with pytest.raises(ProxyConfigError) as err:
        parse_bootstrap(doc_for(backend, routes))
    assert "routes[0].typed_per_filter_config" in err.value.field_path
