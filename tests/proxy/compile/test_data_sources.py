"""DataSource files are read when the config is loaded (bootstrap and xDS), never by compile."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import any_pb2

from pilotfish.proxy.common.errors import ProxyConfigError
from pilotfish.proxy.compile import compile_bootstrap
from pilotfish.proxy.compile.bootstrap_file import parse_bootstrap
from pilotfish.proxy.compile.data_sources import resolve_data_sources
from pilotfish.proxy.compile.routes import compile_route_config
from pilotfish.proxy.process.assemble import build_proxy
from pilotfish.proxy.process.config_source import check_resource
from pilotfish.xds.resources import decode_each
from pilotfish.xds.type_urls import ROUTE

from ..conftest import bootstrap, client, port_of


def parse(type_url: str, doc: dict[str, Any]) -> Any:
    from envoy.config.route.v3 import route_pb2
    from google.protobuf import json_format

    assert type_url == ROUTE
    return json_format.ParseDict(doc, route_pb2.RouteConfiguration())

HCM_ROUTES = ("static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config"
              ".virtual_hosts[0].routes[0].direct_response.body")


def _doc(body: dict[str, Any], **hcm: Any) -> dict[str, Any]:
    return bootstrap([{"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": body}}], [], **hcm)


async def test_bootstrap_files_are_inlined_when_loaded(tmp_path: Path) -> None:
    page = tmp_path / "page.txt"
    page.write_bytes(b"from a file\n")
    fmt = tmp_path / "fmt.txt"
    fmt.write_text("[%RESPONSE_CODE%] %LOCAL_REPLY_BODY%")
    doc = _doc({"filename": str(page)},
               local_reply_config={"body_format": {"text_format_source": {"filename": str(fmt)}}})
    loaded = parse_bootstrap(doc)
    hcm_any = loaded.message.static_resources.listeners[0].filter_chains[0].filters[0].typed_config
    assert str(page).encode() not in hcm_any.value and b"from a file" in hcm_any.value
    page.unlink()
    fmt.unlink()  # compiling and serving read nothing
    server = build_proxy(compile_bootstrap(loaded.message, random.Random(1)), rng=random.Random(1), drain_time=1.0)
    await server.start()
    try:
        async with client(port_of(server)) as c:
            r = await c.request()
            assert (r.status, r.body) == (200, b"[200] from a file\n")
    finally:
        await server.stop(drain_time=0.2)


def test_unreadable_file_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ProxyConfigError) as info:
        parse_bootstrap(_doc({"filename": str(tmp_path / "missing.txt")}))
    assert any(e.field_path == f"{HCM_ROUTES}.filename" and "missing.txt" in e.message
               for e in info.value.errors), info.value.errors


def test_xds_route_file_is_inlined_or_the_resource_rejected(tmp_path: Path) -> None:
    body = tmp_path / "b.txt"
    body.write_bytes(b"xds body")
    ok = parse(ROUTE, {"name": "ok", "virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
        {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"filename": str(body)}}}]}]})
    bad = parse(ROUTE, {"name": "bad", "virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
        {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"filename": str(tmp_path / "no")}}}]}]})
    items = []
    for m in (ok, bad):
        a = any_pb2.Any()
        a.Pack(m)
        items.append(a)
    decoded = decode_each(ROUTE, items, lambda name: True, check_resource, [])
    assert decoded.messages["ok"].virtual_hosts[0].routes[0].direct_response.body.inline_bytes == b"xds body"
    assert "RouteConfiguration[bad].virtual_hosts[0].routes[0].direct_response.body.filename" in decoded.rejected["bad"]


def test_compile_does_no_io() -> None:
    rc = parse(ROUTE, {"name": "rc", "virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
        {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"filename": "/etc/hostname"}}}]}]})
    with pytest.raises(ProxyConfigError, match="not read when the config was loaded"):
        compile_route_config(rc, "rc", set())
    assert resolve_data_sources(rc, "rc") == []
    assert rc.virtual_hosts[0].routes[0].direct_response.body.WhichOneof("specifier") == "inline_bytes"
