"""Routing over real sockets: virtual hosts, matchers, actions, local replies."""

from __future__ import annotations

from collections import Counter

from ..conftest import Backend, bootstrap, client, cluster, port_of, running_proxy


def vhosts(*vh: tuple[str, list[str], str]) -> dict:
    return {"virtual_hosts": [
        {"name": n, "domains": d, "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": body}}}]}
        for n, d, body in vh]}


async def test_virtual_host_precedence() -> None:
    routes = vhosts(("exact", ["api.example.com", "api.example.com:8080"], "exact"),
                    ("suffix-long", ["*.b.example.com"], "suffix-long"),
                    ("suffix", ["*.example.com"], "suffix"),
                    ("prefix", ["api.*"], "prefix"),
                    ("default", ["*"], "default"))
    cases = {"api.example.com": "exact", "API.example.com": "exact", "api.example.com:8080": "exact",
             "x.b.example.com": "suffix-long", "x.example.com": "suffix", "api.other": "prefix",
             "other": "default", "example.com": "default", "api.example.com:9090": "prefix", "x.example.com:80": "default"}
    async with running_proxy(bootstrap(routes, [])) as proxy, client(port_of(proxy)) as c:
        for host, expected in cases.items():
            r = await c.request(host=host)
            assert r.body.decode() == expected, host


async def test_ignore_port_in_host_matching() -> None:
    routes = vhosts(("exact", ["api"], "exact"), ("default", ["*"], "default"))
    routes["ignore_port_in_host_matching"] = True
    async with running_proxy(bootstrap(routes, [])) as proxy, client(port_of(proxy)) as c:
        assert (await c.request(host="api:9080")).body == b"exact"


def direct(match: dict, body: str) -> dict:
    return {"match": match, "direct_response": {"status": 200, "body": {"inline_string": body}}}


async def test_route_matchers() -> None:
    routes = [
        direct({"path": "/exact"}, "path"),
        direct({"prefix": "/CASE", "case_sensitive": False}, "nocase"),
        direct({"safe_regex": {"regex": "/re/[0-9]+"}}, "regex"),
        direct({"path_separated_prefix": "/sep"}, "sep"),
        direct({"prefix": "/h", "headers": [{"name": "x-v", "exact_match": "1"}]}, "hdr-exact"),
        direct({"prefix": "/h", "headers": [{"name": "x-v", "string_match": {"prefix": "ab"}}]}, "hdr-prefix"),
        direct({"prefix": "/h", "headers": [{"name": "x-v", "safe_regex_match": {"regex": "c+"}}]}, "hdr-regex"),
        direct({"prefix": "/h", "headers": [{"name": "x-p", "present_match": True}]}, "hdr-present"),
        direct({"prefix": "/h", "headers": [{"name": "x-v", "contains_match": "zz", "invert_match": True}]}, "hdr-invert"),
        direct({"prefix": "/q", "query_parameters": [{"name": "debug", "string_match": {"exact": "1"}}]}, "query"),
        direct({"prefix": "/q", "query_parameters": [{"name": "flag", "present_match": True}]}, "query-present"),
        direct({"prefix": "/"}, "fallback"),
    ]
    cases = [("/exact", {}, "path"), ("/exact?a=1", {}, "path"), ("/exactly", {}, "fallback"),
             ("/case/x", {}, "nocase"), ("/re/123", {}, "regex"), ("/re/12a", {}, "fallback"),
             ("/sep", {}, "sep"), ("/sep/x", {}, "sep"), ("/separate", {}, "fallback"),
             ("/h", {"x-v": "1"}, "hdr-exact"), ("/h", {"x-v": "abc"}, "hdr-prefix"),
             ("/h", {"x-v": "ccc"}, "hdr-regex"), ("/h", {"x-p": ""}, "hdr-present"),
             ("/h", {"x-v": "y"}, "hdr-invert"), ("/h", {"x-v": "zz"}, "fallback"),
             ("/q?debug=1", {}, "query"), ("/q?debug=2&flag", {}, "query-present"), ("/q", {}, "fallback")]
    async with running_proxy(bootstrap(routes, [])) as proxy, client(port_of(proxy)) as c:
        for path, headers, expected in cases:
            r = await c.request(path=path, headers=headers)
            assert r.body.decode() == expected, (path, headers)


async def test_no_route_is_404_with_flag_nr(tmp_path) -> None:
    log = tmp_path / "access.log"
    doc = bootstrap([direct({"prefix": "/only"}, "x")], [], access_log=[{
        "name": "envoy.access_loggers.file",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                         "path": str(log)}}])
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        r = await c.request(path="/nothing", headers={"user-agent": "ua/1"})
        assert r.status == 404 and r.body == b""
        assert proxy.stats.http("ingress").no_route == 1
    line = log.read_text()
    assert '"GET /nothing HTTP/1.1" 404 NR 0 0 ' in line
    assert '"ua/1"' in line and '"example.com"' in line


async def test_direct_response_and_route_response_headers() -> None:
    routes = {"response_headers_to_add": [{"header": {"key": "x-global", "value": "g"}}],
              "virtual_hosts": [{"name": "v", "domains": ["*"],
                                 "response_headers_to_add": [{"header": {"key": "x-vhost", "value": "v"}}],
                                 "routes": [{"match": {"prefix": "/"},
                                             "direct_response": {"status": 418, "body": {"inline_string": "teapot"}},
                                             "response_headers_to_add": [{"header": {"key": "x-route", "value": "r"}}]}]}]}
    async with running_proxy(bootstrap(routes, [])) as proxy, client(port_of(proxy)) as c:
        r = await c.request()
    assert r.status == 418 and r.body == b"teapot" and r.headers["content-type"] == "text/plain"
    assert (r.headers["x-route"], r.headers["x-vhost"], r.headers["x-global"]) == ("r", "v", "g")


async def test_redirects() -> None:
    routes = [
        {"match": {"prefix": "/https"}, "redirect": {"https_redirect": True}},
        {"match": {"prefix": "/host"}, "redirect": {"host_redirect": "new.example.com", "port_redirect": 8443,
                                                   "response_code": "TEMPORARY_REDIRECT"}},
        {"match": {"prefix": "/old/"}, "redirect": {"prefix_rewrite": "/new/", "response_code": "FOUND"}},
        {"match": {"prefix": "/path"}, "redirect": {"path_redirect": "/elsewhere", "strip_query": True}},
    ]
    async with running_proxy(bootstrap(routes, [])) as proxy, client(port_of(proxy)) as c:
        r = await c.request(path="/https/x?q=1", host="example.com:80")
        assert (r.status, r.headers["location"]) == (301, "https://example.com/https/x?q=1")
        r = await c.request(path="/host/a")
        assert (r.status, r.headers["location"]) == (307, "http://new.example.com:8443/host/a")
        r = await c.request(path="/old/a/b?c=d")
        assert (r.status, r.headers["location"]) == (302, "http://example.com/new/a/b?c=d")
        r = await c.request(path="/path?x=1")
        assert r.headers["location"] == "http://example.com/elsewhere"


async def test_rewrites_and_request_headers(backend: Backend) -> None:
    routes = {"request_headers_to_add": [{"header": {"key": "x-who", "value": "global"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}],
              "request_headers_to_remove": ["x-secret"],
              "virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
                  {"match": {"prefix": "/api/"}, "route": {"cluster": "a", "prefix_rewrite": "/v2/", "host_rewrite_literal": "internal"},
                   "request_headers_to_add": [{"header": {"key": "x-who", "value": "route"}},
                                              {"header": {"key": "x-added", "value": "1"}}]},
                  {"match": {"safe_regex": {"regex": "/svc/([^/]+)/(.*)"}},
                   "route": {"cluster": "a", "regex_rewrite": {"pattern": {"regex": "^/svc/([^/]+)/(.*)$"}, "substitution": "/\\2/by/\\1"}}},
              ]}]}
    async with running_proxy(bootstrap(routes, [cluster("a", backend.port)])) as proxy, client(port_of(proxy)) as c:
        await c.request(path="/api/users?id=3", headers={"x-secret": "s"})
        await c.request(path="/svc/ratings/health")
    first, second = backend.seen
    assert first.path == "/v2/users?id=3" and first.headers["host"] == "internal"
    assert first.headers["x-envoy-original-path"] == "/api/users?id=3"
    assert first.headers["x-who"] == "global" and first.headers["x-added"] == "1"
    assert "x-secret" not in first.headers
    assert second.path == "/health/by/ratings"


async def test_cluster_header_and_missing_cluster(backend: Backend) -> None:
    routes = [{"match": {"prefix": "/"}, "route": {"cluster_header": "x-cluster"}}]
    async with running_proxy(bootstrap(routes, [cluster("a", backend.port)])) as proxy, client(port_of(proxy)) as c:
        assert (await c.request(headers={"x-cluster": "a"})).status == 200
        r = await c.request(headers={"x-cluster": "nope"})
        assert r.status == 503
        assert proxy.stats.http("ingress").no_cluster == 1


async def test_weighted_clusters_distribution(backend: Backend, backend_b: Backend) -> None:
    routes = [{"match": {"prefix": "/"}, "route": {"weighted_clusters": {"clusters": [
        {"name": "a", "weight": 80}, {"name": "b", "weight": 20,
                                      "request_headers_to_add": [{"header": {"key": "x-canary", "value": "yes"}}],
                                      "response_headers_to_add": [{"header": {"key": "x-served-by", "value": "b"}}]}]}}}]
    doc = bootstrap(routes, [cluster("a", backend.port), cluster("b", backend_b.port)])
    counts: Counter[str] = Counter()
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        for _ in range(500):
            r = await c.request()
            counts[r.body.split()[0].decode()] += 1
            assert (r.headers.get("x-served-by") == "b") == r.body.startswith(b"b")
    assert 340 <= counts["a"] <= 460, counts
    assert all(s.headers.get("x-canary") == "yes" for s in backend_b.seen)
    assert not any("x-canary" in s.headers for s in backend.seen)


async def test_load_balancing_round_robin_spreads_evenly(backend: Backend, backend_b: Backend) -> None:
    routes = [{"match": {"prefix": "/"}, "route": {"cluster": "ab"}}]
    doc = bootstrap(routes, [cluster("ab", backend.port, backend_b.port)])
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        for _ in range(10):
            await c.request()
    assert len(backend.seen) == len(backend_b.seen) == 5
