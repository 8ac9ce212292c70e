"""httpbin (samples/httpbin/src), run from httpbin.yaml: go-httpbin's JSON shapes, which Istio's
httpbin.yaml deploys and its task outputs show."""

from __future__ import annotations

import http.client
import json
import re
import threading
import time

from tests.samples.harness import AppRunner

HTTPBIN = "httpbin/httpbin.yaml"


def test_get_echoes_args_headers_origin_and_url_as_go_httpbin(apps: AppRunner) -> None:
    httpbin = apps.start(HTTPBIN, "httpbin")
    resp = httpbin.get("/get?a=1&a=2&b=", {"Host": "httpbin:8000", "x-b3-traceid": "abc", "User-Agent": "curl/8.16.0"})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert resp.body.endswith(b"}\n") and b'\n  "args": {' in resp.body  # pretty-printed as Go's encoder
    body = resp.json()
    assert list(body) == ["args", "headers", "method", "origin", "url"]
    assert body["args"] == {"a": ["1", "2"], "b": [""]}
    assert body["headers"]["Host"] == ["httpbin:8000"]
    assert body["headers"]["X-B3-Traceid"] == ["abc"]  # Go's canonical header names
    assert body["headers"]["User-Agent"] == ["curl/8.16.0"]
    assert body["method"] == "GET"
    assert re.fullmatch(r"127\.0\.0\.1:\d+", body["origin"])
    assert body["url"] == "http://httpbin:8000/get?a=1&a=2&b="
    forwarded = httpbin.get("/get", {"X-Forwarded-For": "10.1.2.3, 127.0.0.6", "X-Forwarded-Proto": "https",
                                     "Host": "httpbin.example.com"}).json()
    assert forwarded["origin"] == "10.1.2.3" and forwarded["url"] == "https://httpbin.example.com/get"
    assert httpbin.request("POST", "/get", body=b"x").status == 405


def test_headers_ip_user_agent_and_uuid(apps: AppRunner) -> None:
    httpbin = apps.start(HTTPBIN, "httpbin")
    headers = httpbin.get("/headers", {"Host": "httpbin:8000", "end-user": "jason"}).json()
    assert list(headers) == ["headers"]
    assert headers["headers"]["End-User"] == ["jason"] and headers["headers"]["Host"] == ["httpbin:8000"]
    assert list(httpbin.get("/ip").json()) == ["origin"]
    assert httpbin.get("/user-agent", {"User-Agent": "curl/8.16.0"}).json() == {"user-agent": "curl/8.16.0"}
    assert re.fullmatch(r"[0-9a-f-]{36}", httpbin.get("/uuid").json()["uuid"])
    assert httpbin.get("/nowhere").text == "404 page not found\n"
    preflight = httpbin.request("OPTIONS", "/get", {"Origin": "http://a.example", "Access-Control-Request-Headers": "x-a"})
    assert preflight.status == 200 and preflight.headers["Access-Control-Allow-Origin"] == "http://a.example"
    assert preflight.headers["Access-Control-Allow-Headers"] == "x-a"


def test_post_and_anything_echo_the_body(apps: AppRunner) -> None:
    httpbin = apps.start(HTTPBIN, "httpbin")
    posted = httpbin.request("POST", "/post", {"Content-Type": "application/json", "Host": "httpbin:8000"},
                             b'{"hello": "mesh"}').json()
    assert list(posted) == ["args", "headers", "method", "origin", "url", "data", "files", "form", "json"]
    assert posted["json"] == {"hello": "mesh"} and posted["data"] == '{"hello": "mesh"}'
    assert posted["method"] == "POST" and posted["url"] == "http://httpbin:8000/post"
    form = httpbin.request("POST", "/post", {"Content-Type": "application/x-www-form-urlencoded"},
                           b"name=jason&name=x").json()
    assert form["form"] == {"name": ["jason", "x"]} and form["json"] is None
    anything = httpbin.request("PUT", "/anything/a/b?q=1", {"Content-Type": "application/octet-stream"},
                               b"\x00\x01").json()
    assert anything["method"] == "PUT" and anything["args"] == {"q": ["1"]}
    assert anything["url"].endswith("/anything/a/b?q=1")
    assert anything["data"] == "data:application/octet-stream;base64,AAE="
    assert httpbin.get("/anything").json()["data"] == ""
    assert httpbin.request("GET", "/post").status == 405
    bad = httpbin.request("POST", "/post", {"Content-Type": "application/json"}, b"{nope")
    assert bad.status == 400 and bad.json()["status_code"] == 400


def test_status_codes_as_go_httpbin(apps: AppRunner) -> None:
    httpbin = apps.start(HTTPBIN, "httpbin")
    assert httpbin.get("/status/200").status == 200
    unavailable = httpbin.get("/status/503")
    assert (unavailable.status, unavailable.body) == (503, b"")
    teapot = httpbin.get("/status/418")
    assert (teapot.status, teapot.text) == (418, "I'm a teapot!")
    assert httpbin.get("/status/302").headers["Location"] == "/redirect/1"
    assert httpbin.get("/status/204").status == 204
    assert {httpbin.get("/status/200:1,500:1").status for _ in range(30)} == {200, 500}
    assert httpbin.get("/status/abc").status == 400
    assert httpbin.get("/status/999").status == 400


def test_delay_waits_then_echoes(apps: AppRunner) -> None:
    httpbin = apps.start(HTTPBIN, "httpbin")
    for path in ("/delay/0.2", "/delay/200ms"):
        started = time.monotonic()
        resp = httpbin.get(path)
        assert 0.19 <= time.monotonic() - started < 1.5
        assert resp.status == 200 and resp.json()["url"].endswith(path)
        assert resp.headers["Server-Timing"].startswith("initial_delay;dur=200.00")
    assert httpbin.get("/delay/abc").status == 400


def test_access_log_names_the_host_so_mirrored_copies_show(apps: AppRunner) -> None:
    httpbin = apps.start(HTTPBIN, "httpbin")
    httpbin.get("/headers", {"Host": "httpbin:8000"})
    httpbin.get("/headers", {"Host": "httpbin-shadow:8000"})
    log = httpbin.wait_for_log('"GET /headers HTTP/1.1" 200 host=httpbin-shadow:8000')
    assert '"GET /headers HTTP/1.1" 200 host=httpbin:8000' in log


def test_keep_alive_with_bodies_and_chunked_uploads(apps: AppRunner) -> None:
    httpbin = apps.start(HTTPBIN, "httpbin")
    conn = http.client.HTTPConnection("127.0.0.1", httpbin.port, timeout=5)
    try:
        conn.request("POST", "/anything", body=b"one", headers={"Content-Type": "text/plain"})
        assert json.loads(conn.getresponse().read())["data"] == "one"
        conn.request("POST", "/anything", body=iter([b"tw", b"o"]), headers={"Content-Type": "text/plain"},
                     encode_chunked=True)
        assert json.loads(conn.getresponse().read())["data"] == "two"
        conn.request("GET", "/status/418")
        resp = conn.getresponse()
        assert resp.status == 418 and resp.read() == b"I'm a teapot!" and not resp.will_close
    finally:
        conn.close()


def test_sigterm_during_a_delay_exits_promptly_without_answering_early(apps: AppRunner) -> None:
    httpbin = apps.start(HTTPBIN, "httpbin")
    outcome: list[object] = []

    def wait_for_delay() -> None:
        try:
            outcome.append(httpbin.get("/delay/8", timeout=10).status)
        except (OSError, http.client.HTTPException) as exc:
            outcome.append(exc)

    waiting = threading.Thread(target=wait_for_delay, daemon=True)
    waiting.start()
    time.sleep(0.3)  # the request is in, waiting
    started = time.monotonic()
    assert httpbin.stop(timeout=3) == 0
    assert time.monotonic() - started < 1.5
    waiting.join(5)
    assert len(outcome) == 1 and isinstance(outcome[0], OSError), outcome  # closed, no 200
