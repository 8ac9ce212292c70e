"""HCM path normalization: Envoy's PathUtil tables, the escaped-slashes actions, and what a client
and the origin see through the proxy."""

from __future__ import annotations

import pytest

from pilotfish.proxy.http.path_normalization import (
    CONTINUE,
    KEEP_UNCHANGED,
    REDIRECT,
    REJECT,
    REJECT_REQUEST,
    UNESCAPE_AND_FORWARD,
    UNESCAPE_AND_REDIRECT,
    PathNormalizer,
    canonical_path,
    merge_slashes,
    unescape_slashes,
)

from ..conftest import admin_get, bootstrap, client, cluster, port_of, running_proxy


# Envoy's test/common/http/path_utility_test.cc, NormalizeValidPaths and friends.
@pytest.mark.parametrize(("path", "expected"), [
    (b"/xyz", b"/xyz"),
    (b"/x/y/z", b"/x/y/z"),
    (b"/a/b/../c", b"/a/c"),
    (b"/a/b/./c", b"/a/b/c"),
    (b"a/b/../c", b"/a/c"),
    (b"/a/b/../../../../c", b"/c"),
    (b"/a/..\\c", b"/c"),
    (b"/%c0%af", b"/%c0%af"),
    (b"/%5c%25", b"/%5c%25"),
    (b"/a/b/%2E%2E/c", b"/a/c"),
    (b"/a/b/%2E./c", b"/a/c"),
    (b"/a/b/%2E/c", b"/a/b/c"),
    (b"..", b"/"),
    (b"/../a/b", b"/a/b"),
    (b"/./a/b", b"/a/b"),
    (b"/xyz/..;foo=bar/abc", b"/abc"),
    (b"/..;foo=bar/abc", b"/abc"),
    (b"/xyz/..;foo=bar", b"/"),
    (b"/xyz/.;foo=bar/abc", b"/xyz/abc"),
    # unreserved characters are decoded, everything else keeps its escape exactly (case too)
    (b"/%41%62%7e%2D%5f", b"/Ab~-_"),
    (b"/a%2fb%2Fc", b"/a%2fb%2Fc"),
    (b"/%3f%3F", b"/%3f%3F"),
    # characters a URL may not hold are escaped; a stray % is kept
    (b"/a\"b", b"/a%22b"),
    (b"/a{b}|", b"/a%7Bb%7D%7C"),
    (b"/100%", b"/100%"),
    (b"/%zz", b"/%zz"),
    # a nested escape must not turn into a valid one
    (b"/%%30%30", b"/%2500"),
    (b"", b"/"),
    (b"/a//b/", b"/a//b/"),
])
def test_canonical_path(path: bytes, expected: bytes) -> None:
    assert canonical_path(path) == expected


@pytest.mark.parametrize("path", [b"/xyz/.%00../abc", b"/xyz/%00.%00./abc", b"/xyz/AAAAA%%0000/abc"])
def test_canonical_path_refuses_nul(path: bytes) -> None:
    assert canonical_path(path) is None


@pytest.mark.parametrize(("path", "expected"), [
    (b"", b""),
    (b"/a/b/c", b"/a/b/c"),
    (b"//a//b//c//", b"/a/b/c/"),
    (b"a//b", b"a/b"),
    (b"/a/b/", b"/a/b/"),
    (b"//", b"//"),  # Envoy's: a prefix and a suffix slash around nothing
])
def test_merge_slashes(path: bytes, expected: bytes) -> None:
    assert merge_slashes(path) == expected


@pytest.mark.parametrize(("path", "expected"), [
    (b"%2f%2F", b"//"),
    (b"/a%2Fb%2fc/", b"/a/b/c/"),
    (b"%2b", b"%2b"),
    (b"/a%5Cb%5c", b"/a\\b\\"),
])
def test_unescape_slashes(path: bytes, expected: bytes) -> None:
    assert unescape_slashes(path) == expected


@pytest.mark.parametrize(("normalize", "merge", "escaped", "target", "expected"), [
    # the query is never touched
    (True, True, KEEP_UNCHANGED, b"/a/./b//c?x=/../y//z", (CONTINUE, b"/a/b/c?x=/../y//z")),
    (True, False, KEEP_UNCHANGED, b"/a//../b", (CONTINUE, b"/a/b")),
    (False, True, KEEP_UNCHANGED, b"/a//../b", (CONTINUE, b"/a/../b")),
    (True, False, KEEP_UNCHANGED, b"/a%2F..%2Fb", (CONTINUE, b"/a%2F..%2Fb")),
    (True, False, REJECT_REQUEST, b"/a%2F..%2Fb", (REJECT, b"/a%2F..%2Fb")),
    (True, False, REJECT_REQUEST, b"/a/b?q=%2F", (CONTINUE, b"/a/b?q=%2F")),
    (True, False, UNESCAPE_AND_REDIRECT, b"/a%2F..%2Fb?q", (REDIRECT, b"/b?q")),
    (True, True, UNESCAPE_AND_FORWARD, b"/a%2F%2fb%5cc", (CONTINUE, b"/a/b/c")),
    (False, False, UNESCAPE_AND_FORWARD, b"/a%2F%2fb", (CONTINUE, b"/a//b")),
    (True, False, KEEP_UNCHANGED, b"/a/%00", (REJECT, b"/a/%00")),
])
def test_normalizer(normalize: bool, merge: bool, escaped: int, target: bytes,
                    expected: tuple[int, bytes]) -> None:
    assert PathNormalizer(normalize, merge, escaped).apply(target) == expected


# ---- through the proxy ------------------------------------------------------------------------
def _doc(backend_port: int, **hcm: object) -> dict:
    routes = [
        {"match": {"prefix": "/admin"}, "direct_response": {"status": 403, "body": {"inline_string": "denied"}}},
        {"match": {"prefix": "/"}, "route": {"cluster": "b"}},
    ]
    return bootstrap(routes, [cluster("b", backend_port)], **hcm)


async def test_normalized_path_is_what_routes_and_origin_see(backend) -> None:
    doc = _doc(backend.port, normalize_path=True, merge_slashes=True)
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        for sneaky in ("/public/../admin/secret", "/%61dmin/secret", "/.//admin", "/x/..\\admin"):
            r = await c.request(path=sneaky)
            assert (r.status, r.body) == (403, b"denied"), sneaky
        r = await c.request(path="/a/./b//c/%7euser?next=/../admin")
        assert r.status == 200
        assert backend.seen[-1].path == "/a/b/c/~user?next=/../admin"
        r = await c.request(path="/a/%00b")
        assert (r.status, r.body) == (400, b"")
        stats = await admin_get(proxy, "/stats")
    assert "http.ingress.downstream_rq_failed_path_normalization: 1" in stats


async def test_without_normalization_paths_pass_unchanged(backend) -> None:
    async with running_proxy(_doc(backend.port)) as proxy, client(port_of(proxy)) as c:
        r = await c.request(path="/x/../admin//%61?q")
        assert r.status == 200
        assert backend.seen[-1].path == "/x/../admin//%61?q"


async def test_escaped_slashes_redirect_reject_forward(backend) -> None:
    doc = _doc(backend.port, normalize_path=True, path_with_escaped_slashes_action="UNESCAPE_AND_REDIRECT")
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        r = await c.request(path="/a%2Fb%2F..%2Fc?x=%2F")
        assert (r.status, r.headers["location"]) == (307, "/a/c?x=%2F")
        assert backend.seen == []
        r = await c.request(path="/a%2Fb", headers={"content-type": "application/grpc"})
        assert r.status == 400  # gRPC clients cannot follow a redirect
        stats = await admin_get(proxy, "/stats")
    assert "http.ingress.downstream_rq_redirected_with_normalized_path: 1" in stats
    assert "http.ingress.downstream_rq_failed_path_normalization: 1" in stats

    doc = _doc(backend.port, path_with_escaped_slashes_action="REJECT_REQUEST")
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        assert (await c.request(path="/a%2fb")).status == 400
        assert (await c.request(path="/a%2bb")).status == 200

    doc = _doc(backend.port, path_with_escaped_slashes_action="UNESCAPE_AND_FORWARD")
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        assert (await c.request(path="/x%2F..%2Fadmin")).status == 200  # unescaped, not normalized
        assert backend.seen[-1].path == "/x/../admin"
        assert (await c.request(path="/admin%2Fx")).status == 403
