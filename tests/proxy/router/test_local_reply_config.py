"""HCM local_reply_config: mappers (filters, status rewrite, body, headers, format override) and
the top-level body_format, on every reply the proxy makes itself."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any

import pytest

from pilotfish.proxy.common.response_flags import NR, UH
from pilotfish.proxy.common.errors import ProxyConfigError
from pilotfish.proxy.router.local_reply_config import (
    EQ,
    GE,
    LE,
    all_of,
    any_of,
    duration_filter,
    header_filter,
    not_health_check,
    response_flag_filter,
    status_filter,
)
from pilotfish.proxy.router.route_table import HeaderMatcher

from ..conftest import bootstrap, client, cluster, port_of, running_proxy


def _e(status: int = 200, flags: int = 0, duration: int = 5, headers: list | None = None,
       health_check: bool = False) -> tuple:
    head = SimpleNamespace(path=b"/p", method=b"GET", headers=headers or [])
    stream = SimpleNamespace(head=head, health_check=health_check)
    return (0.0, b"GET", b"/p", "1.1", status, flags, 0, 0, duration, None, None, None, None, b"h", None,
            stream, None, None)


def _has(name: bytes) -> HeaderMatcher:
    return HeaderMatcher(name, None, True, False, False)


@pytest.mark.parametrize(("pred", "entry", "expected"), [
    (status_filter(EQ, 404), _e(404), True),
    (status_filter(EQ, 404), _e(403), False),
    (status_filter(GE, 500), _e(503), True),
    (status_filter(GE, 500), _e(499), False),
    (status_filter(LE, 299), _e(200), True),
    (status_filter(LE, 299), _e(300), False),
    (duration_filter(GE, 100), _e(duration=100), True),
    (duration_filter(GE, 100), _e(duration=99), False),
    (response_flag_filter(()), _e(flags=UH), True),
    (response_flag_filter(()), _e(), False),
    (response_flag_filter(("NR", "UF")), _e(flags=NR), True),
    (response_flag_filter(("UF",)), _e(flags=NR | UH), False),
    (header_filter(_has(b"x-a")), _e(headers=[(b"x-a", b"1")]), True),
    (header_filter(_has(b"x-a")), _e(), False),
    (not_health_check, _e(health_check=True), False),
    (not_health_check, _e(), True),
    (all_of((status_filter(EQ, 404), response_flag_filter(("NR",)))), _e(404, NR), True),
    (all_of((status_filter(EQ, 404), response_flag_filter(("NR",)))), _e(404), False),
    (any_of((status_filter(EQ, 404), status_filter(EQ, 503))), _e(503), True),
    (any_of((status_filter(EQ, 404), status_filter(EQ, 503))), _e(502), False),
])
def test_filters(pred: Any, entry: tuple, expected: bool) -> None:
    assert pred(entry) is expected


def _status(op: str, value: int) -> dict:
    return {"status_code_filter": {"comparison": {"op": op, "value": {"default_value": value, "runtime_key": "k"}}}}


def _doc(backend_port: int, local_reply_config: dict) -> dict:
    routes = [
        {"match": {"prefix": "/direct"}, "direct_response": {"status": 401, "body": {"inline_string": "who?"}}},
        {"match": {"prefix": "/down"}, "route": {"cluster": "down"}},
        {"match": {"prefix": "/b"}, "route": {"cluster": "b"}},
    ]
    return bootstrap(routes, [cluster("b", backend_port), cluster("down")],
                     local_reply_config=local_reply_config)


async def test_mappers_and_body_format(backend) -> None:
    lrc = {
        "mappers": [
            {"filter": {"and_filter": {"filters": [_status("EQ", 404),
                                                   {"response_flag_filter": {"flags": ["NR"]}}]}},
             "status_code": 410, "body": {"inline_string": "gone"},
             "headers_to_add": [{"header": {"key": "x-mapped", "value": "yes"}}]},
            {"filter": {"header_filter": {"header": {"name": "accept", "string_match": {"exact": "text/plain"}}}},
             "body_format_override": {"text_format": "%LOCAL_REPLY_BODY% (%RESPONSE_CODE%)",
                                      "content_type": "text/plain; charset=utf-8"}},
        ],
        "body_format": {"json_format": {"status": "%RESPONSE_CODE%", "message": "%LOCAL_REPLY_BODY%",
                                        "path": "%REQ(:PATH)%", "flags": "%RESPONSE_FLAGS%"}},
    }
    async with running_proxy(_doc(backend.port, lrc)) as proxy, client(port_of(proxy)) as c:
        r = await c.request(path="/nowhere")
        assert (r.status, r.headers["x-mapped"], r.headers["content-type"]) == (410, "yes", "application/json")
        assert json.loads(r.body) == {"status": 410, "message": "gone", "path": "/nowhere", "flags": "NR"}
        assert r.headers["content-length"] == str(len(r.body))

        r = await c.request(path="/down")  # 503 UH: no mapper matches, the body_format applies
        assert r.status == 503 and "x-mapped" not in r.headers
        assert json.loads(r.body) == {"status": 503, "message": "no healthy upstream", "path": "/down",
                                      "flags": "UH"}

        r = await c.request(path="/direct", headers={"accept": "text/plain"})
        assert (r.status, r.body, r.headers["content-type"]) == (401, b"who? (401)", "text/plain; charset=utf-8")

        r = await c.request(path="/b")  # an upstream answer is not a local reply
        assert (r.status, r.body) == (200, b"a /b")


async def test_status_rewrite_without_body_format_keeps_text(backend) -> None:
    lrc = {"mappers": [{"filter": _status("GE", 500), "status_code": 502}]}
    async with running_proxy(_doc(backend.port, lrc)) as proxy, client(port_of(proxy)) as c:
        r = await c.request(path="/down")
        assert (r.status, r.body, r.headers["content-type"]) == (502, b"no healthy upstream", "text/plain")
        r = await c.request(path="/nowhere")
        assert (r.status, r.body) == (404, b"")


@pytest.mark.parametrize(("lrc", "field"), [
    ({"mappers": [{"status_code": 500}]}, "mappers[0].filter"),
    ({"mappers": [{"filter": _status("EQ", 404), "status_code": 99}]}, "mappers[0].status_code"),
    ({"body_format": {"text_format": "%NOPE%"}}, "body_format.text_format"),
    ({"mappers": [{"filter": {"response_flag_filter": {"flags": ["XX"]}}}]},
     "mappers[0].filter.response_flag_filter.flags[0]"),
    ({"mappers": [{"filter": {"grpc_status_filter": {}}}]}, "mappers[0].filter.grpc_status_filter"),
])
async def test_config_errors_name_the_field(backend, lrc: dict, field: str) -> None:
    with pytest.raises(ProxyConfigError, match=re.escape(f"local_reply_config.{field}")):
        async with running_proxy(_doc(backend.port, lrc)):
            pass
