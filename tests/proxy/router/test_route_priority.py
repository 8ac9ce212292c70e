"""Route ``priority`` selects the cluster's circuit-breaker thresholds of that routing priority
(DEFAULT or HIGH), as Envoy's router asks the cluster for ``resourceManager(route priority)``."""

from __future__ import annotations

import asyncio
import random

import pytest

from pilotfish.proxy.compile.bootstrap_file import parse_bootstrap
from pilotfish.proxy.upstream.circuit_breaker import CircuitBreakerSettings, ClusterResources, Thresholds
from pilotfish.proxy.compile import compile_bootstrap
from pilotfish.proxy.common.errors import ProxyConfigError
from pilotfish.proxy.router.retry_state import RETRY, RetryCounters, RetryPolicy, parse_retry_on

from ..conftest import Backend, Reply, bootstrap, client, cluster, port_of, running_proxy, until


def doc(port: int, **cluster_extra: object) -> dict:
    routes = [{"match": {"prefix": "/high"}, "route": {"cluster": "c", "priority": "HIGH"}},
              {"match": {"prefix": "/"}, "route": {"cluster": "c"}}]
    return bootstrap(routes, [cluster("c", port, **cluster_extra)])


def compiled(d: dict):  # type: ignore[no-untyped-def]
    loaded = parse_bootstrap(d)
    return compile_bootstrap(loaded.message, random.Random(1), loaded.warnings)


def test_route_priority_is_compiled_onto_the_action() -> None:
    routes = compiled(doc(1)).runtime.listeners[0].hcm.route_table.default.routes
    assert [r.action.priority for r in routes] == [1, 0]


def test_unknown_priority_names_its_path() -> None:
    d = doc(1)
    d["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["route_config"][
        "virtual_hosts"][0]["routes"][0]["route"]["priority"] = 7
    with pytest.raises(ProxyConfigError) as e:
        compiled(d)
    assert "virtual_hosts[0].routes[0].route.priority" in str(e.value)


def test_priorities_have_their_own_budgets() -> None:
    cr = ClusterResources(CircuitBreakerSettings(default=Thresholds(max_requests=1, max_retries=0)))
    default, high = cr.managers
    assert (high.connections.max, high.pending_requests.max, high.requests.max, high.retries.max) == \
        (1024, 1024, 1024, 3)  # Envoy's defaults for an unconfigured HIGH priority
    assert default.try_request() and not default.try_request()
    assert high.try_request()  # a full DEFAULT priority leaves HIGH untouched
    p = RetryPolicy(retry_on=parse_retry_on("5xx"), num_retries=2)
    low = p.begin([], default, random.Random(1), RetryCounters())
    assert low is not None and low.should_retry_headers(503, []) != RETRY  # max_retries 0: overflow
    top = p.begin([], high, random.Random(1), RetryCounters())
    assert top is not None and top.should_retry_headers(503, []) == RETRY
    assert (default.rq_retry_overflow, high.retries.count) == (1, 1)


async def test_high_priority_route_uses_the_high_thresholds(backend: Backend) -> None:
    backend.handler = lambda s: Reply(delay=0.4, body=b"slow") if s.path.endswith("/slow") else Reply(body=b"ok")
    breakers = {"thresholds": [{"priority": "DEFAULT", "max_requests": 1},
                               {"priority": "HIGH", "max_requests": 1}]}
    async with running_proxy(doc(backend.port, circuit_breakers=breakers)) as proxy:
        port = port_of(proxy)
        resources = proxy.config.clusters["c"].resources

        async def get(path: str) -> int:
            async with client(port) as c:
                return (await c.request(path=path)).status

        slow = asyncio.create_task(get("/slow"))  # holds the one DEFAULT request
        await until(lambda: resources[0].requests.count == 1)
        assert await get("/high/x") == 200  # HIGH has its own max_requests
        slow_high = asyncio.create_task(get("/high/slow"))
        await until(lambda: resources[1].requests.count == 1)
        assert await get("/high/y") == 503  # now HIGH is full too
        assert resources[1].rq_pending_overflow == 1 and resources[0].rq_pending_overflow == 0
        assert (await slow, await slow_high) == (200, 200)
        assert (resources[0].requests.count, resources[1].requests.count) == (0, 0)
