"""Access-log ``log_format`` (Envoy's command operators, text and JSON) and ``filter``."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from pilotfish.proxy.common.response_flags import NR, UF, UH
from pilotfish.proxy.common.substitution_format import FormatError, json_format, text_format
from pilotfish.proxy.common.errors import ProxyConfigError

from ..conftest import Reply, bootstrap, client, cluster, port_of, running_proxy, until

FILE_LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"

# Istio's default access-log format (EnvoyTextLogFormat in Istio's mesh config).
ISTIO_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% '
    '%RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% '
    '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
    '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% '
    '%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% '
    '%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n')


def _entry(status: int = 200, flags: int = 0, **stream: object) -> tuple:
    head = SimpleNamespace(path=b"/p?q=1", method=b"GET",
                           headers=[(b"host", b"example.com"), (b"x-custom", b"abc"), (b"user-agent", b"curl")])
    s = SimpleNamespace(head=head, original_path=None, route=SimpleNamespace(name="r1"),
                        cluster=SimpleNamespace(name="c1"), details=None, status=status,
                        reply_headers=[(b"content-type", b"text/html")], response_extras=(), health_check=False)
    vars(s).update(stream)
    return (1733400000.25, b"GET", b"/p?q=1", "1.1", status, flags, 10, 2048, 7, 3, b"1.2.3.4", b"curl",
            b"rid-1", b"example.com", "10.0.0.1:80", s, ("127.0.0.1", 40000), ("127.0.0.2", 8080))


@pytest.mark.parametrize(("fmt", "expected"), [
    ("%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION%", "200 - 10 2048 7"),
    ("%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL% %REQ(:AUTHORITY)%", "GET /p?q=1 HTTP/1.1 example.com"),
    ("%REQ(X-CUSTOM)% %REQ(x-missing)% %REQ(X-MISSING?X-CUSTOM)%", "abc - abc"),
    ("%REQ(X-CUSTOM):2% %REQ(USER-AGENT):1%", "ab c"),
    ("%RESP(CONTENT-TYPE)% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%", "text/html 3"),
    ("%UPSTREAM_HOST% %UPSTREAM_CLUSTER% %ROUTE_NAME%", "10.0.0.1:80 c1 r1"),
    ("%DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_LOCAL_ADDRESS%",
     "127.0.0.1:40000 127.0.0.1 127.0.0.2:8080"),
    ("%RESPONSE_CODE_DETAILS% %REQUESTED_SERVER_NAME%", "via_upstream -"),
    ("100%% %START_TIME%", "100% 2024-12-05T12:00:00.250Z"),
    ("%START_TIME(%Y/%m/%d %H:%M:%S.%3f %s)%", "2024/12/05 12:00:00.250 1733400000"),
    ("%START_TIME(%Y-%m-%dT%H:%M:%E3SZ)%", "2024-12-05T12:00:00.250Z"),
    ("literal only", "literal only"),
])
def test_text_operators(fmt: str, expected: str) -> None:
    assert text_format(fmt).format(_entry()) == expected


def test_text_flags_details_and_omit_empty() -> None:
    e = _entry(503, UH | UF, details="no_healthy_upstream")
    assert text_format("%RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%").format(e) == "UH,UF no_healthy_upstream"
    assert text_format("[%REQ(X-NONE)%]", omit_empty=True).format(e) == "[]"


def test_json_keeps_types_sorts_keys_and_omits() -> None:
    fmt = json_format({"status": "%RESPONSE_CODE%", "bytes": "%BYTES_SENT%", "path": "%REQ(:PATH)%",
                       "line": "%REQ(:METHOD)% %REQ(X-NONE)%", "none": "%REQ(X-NONE)%", "const": 5.0,
                       "nested": {"cluster": "%UPSTREAM_CLUSTER%", "flags": "%RESPONSE_FLAGS%"}})
    line = fmt.format(_entry(404, NR))
    assert line.endswith("\n") and " " not in line.replace("GET -", "")
    assert list(json.loads(line)) == ["bytes", "const", "line", "nested", "none", "path", "status"]
    assert json.loads(line) == {"bytes": 2048, "const": 5, "line": "GET -", "none": None, "path": "/p?q=1",
                                "status": 404, "nested": {"cluster": "c1", "flags": "NR"}}
    omitted = json.loads(json_format({"a": "%REQ(X-NONE)%", "b": "%RESPONSE_CODE%"}, omit_empty=True).format(_entry()))
    assert omitted == {"b": 200}


@pytest.mark.parametrize("fmt", ["%NOT_AN_OPERATOR%", "%REQ%", "%REQ()%", "50% off", "%RESPONSE_CODE(x)%"])
def test_bad_formats_are_refused(fmt: str) -> None:
    with pytest.raises(FormatError):
        text_format(fmt)


# ---- through the proxy ------------------------------------------------------------------------
def _log(path: Path, log_format: dict | None = None, filter: dict | None = None) -> dict:
    cfg: dict = {"@type": FILE_LOG, "path": str(path)}
    if log_format is not None:
        cfg["log_format"] = log_format
    log: dict = {"name": "envoy.access_loggers.file", "typed_config": cfg}
    if filter is not None:
        log["filter"] = filter
    return log


def _doc(backend_port: int, *logs: dict) -> dict:
    routes = [{"name": "to-b", "match": {"prefix": "/b"}, "route": {"cluster": "b"}}]
    return bootstrap(routes, [cluster("b", backend_port)], access_log=list(logs))


async def test_istio_default_format(backend, tmp_path: Path) -> None:
    out = tmp_path / "access.log"
    doc = _doc(backend.port, _log(out, {"text_format_source": {"inline_string": ISTIO_FORMAT}}))
    backend.handler = lambda s: Reply(body=b"twelve bytes")
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        port = port_of(proxy)
        await c.request(path="/b/x", headers={"user-agent": "ua/1", "x-request-id": "abc"})
        await c.request(path="/nowhere")
        await until(lambda: out.exists() and len(out.read_text().splitlines()) == 2)
    ok, nr = out.read_text().splitlines()
    words = ok.split(" ")
    assert words[2:11] == ["/b/x", 'HTTP/1.1"', "200", "-", "via_upstream", "-", '"-"', "0", "12"]
    assert f'"ua/1" "abc" "example.com" "127.0.0.1:{backend.port}" b - 127.0.0.1:{port} 127.0.0.1:' in ok
    assert ok.endswith(" - to-b")
    assert " 404 NR route_not_found - " in nr and nr.endswith(" - -")


async def test_json_format_with_headers_both_ways(backend, tmp_path: Path) -> None:
    out = tmp_path / "access.json"
    fmt = {"json_format": {"code": "%RESPONSE_CODE%", "ctype": "%RESP(CONTENT-TYPE)%", "who": "%REQ(X-WHO)%",
                           "details": "%RESPONSE_CODE_DETAILS%", "cluster": "%UPSTREAM_CLUSTER%"}}
    backend.handler = lambda s: Reply(headers=[("content-type", "text/x-test")], body=b"hi")
    async with running_proxy(_doc(backend.port, _log(out, fmt))) as proxy, client(port_of(proxy)) as c:
        await c.request(path="/b", headers={"x-who": "me"})
        await c.request(path="/none")
        await until(lambda: out.exists() and len(out.read_text().splitlines()) == 2)
    first, second = map(json.loads, out.read_text().splitlines())
    assert first == {"cluster": "b", "code": 200, "ctype": "text/x-test", "details": "via_upstream", "who": "me"}
    assert second == {"cluster": None, "code": 404, "ctype": None, "details": "route_not_found", "who": None}


async def test_filters_choose_what_is_logged(backend, tmp_path: Path) -> None:
    errors, other = tmp_path / "errors.log", tmp_path / "other.log"
    status_ge_400 = {"status_code_filter": {"comparison": {"op": "GE", "value": {"default_value": 400,
                                                                                   "runtime_key": "k"}}}}
    not_b = {"and_filter": {"filters": [
        {"header_filter": {"header": {"name": "x-skip", "present_match": True, "invert_match": True}}},
        {"response_flag_filter": {"flags": ["NR"]}}]}}
    doc = _doc(backend.port, _log(errors, {"text_format": "%RESPONSE_CODE% %REQ(:PATH)%\n"}, status_ge_400),
               _log(other, None, not_b))
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        for path, headers in (("/b", {}), ("/x", {}), ("/y", {"x-skip": "1"})):
            await c.request(path=path, headers=headers)
        await until(lambda: errors.exists() and other.exists())
        await until(lambda: len(errors.read_text().splitlines()) == 2)
    assert errors.read_text() == "404 /x\n404 /y\n"
    assert len(other.read_text().splitlines()) == 1 and '"GET /x HTTP/1.1" 404 NR' in other.read_text()


async def test_unknown_operator_names_the_field(backend, tmp_path: Path) -> None:
    doc = _doc(backend.port, _log(tmp_path / "x.log", {"text_format": "%BOGUS%"}))
    with pytest.raises(ProxyConfigError, match=r"access_log\[0\]\.typed_config\.log_format\.text_format.*BOGUS"):
        async with running_proxy(doc):
            pass
