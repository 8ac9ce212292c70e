"""The HTTP filter chain, composed from the listener's http_filters in their order."""

from __future__ import annotations

import random
from typing import Any

import pytest

from pilotfish.proxy.common.errors import ProxyConfigError
from pilotfish.proxy.compile import compile_bootstrap
from pilotfish.proxy.compile.bootstrap_file import parse_bootstrap

from ..conftest import bootstrap

FAULT = {"name": "envoy.filters.http.fault", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
    "abort": {"http_status": 503, "percentage": {"numerator": 100}}}}
BUFFER = {"name": "envoy.filters.http.buffer", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer", "max_request_bytes": 1024}}
LUA = {"name": "envoy.filters.http.lua", "is_optional": True, "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"}}


def hcm_of(http_filters: list[dict[str, Any]]) -> Any:
    doc = bootstrap([{"match": {"prefix": "/"}, "direct_response": {"status": 200}}], [], http_filters=http_filters)
    loaded = parse_bootstrap(doc)
    return compile_bootstrap(loaded.message, random.Random(1), loaded.warnings).runtime.listeners[0].hcm


def test_filters_compile_in_the_listeners_order_router_last() -> None:
    hcm = hcm_of([BUFFER, FAULT])
    assert [n.rsplit(".", 1)[-1] for n in hcm.filters] == ["Buffer", "HTTPFault", "Router"]
    assert hcm.max_request_bytes == 1024 and hcm.fault is not None


def test_an_optional_filter_runs_when_known_and_is_skipped_when_not() -> None:
    hcm = hcm_of([LUA, {**FAULT, "is_optional": True}])
    assert hcm.fault is not None  # optional means "skip when unsupported", not "skip"
    assert not any(n.endswith("Lua") for n in hcm.filters)


def test_a_filter_after_the_router_is_refused() -> None:
    doc = bootstrap([{"match": {"prefix": "/"}, "direct_response": {"status": 200}}], [])
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["http_filters"] = hcm["http_filters"] + [FAULT]
    with pytest.raises(ProxyConfigError) as err:
        compile_bootstrap(parse_bootstrap(doc).message, random.Random(1))
    assert "router filter must be present, once, and last" in str(err.value)
