"""Route tables and router functions without sockets."""

from __future__ import annotations

import random
from collections import Counter

from pilotfish.proxy.router.routing import pick_weighted, select_route

from ..conftest import cluster
from .helpers import head, table


def test_first_matching_route_wins() -> None:
    t = table([{"name": "one", "match": {"prefix": "/a"}, "direct_response": {"status": 200}},
               {"name": "two", "match": {"prefix": "/"}, "direct_response": {"status": 200}}])
    assert select_route(t, head(b"/abc"), b"x").name == "one"
    assert select_route(t, head(b"/b"), b"x").name == "two"


def test_prefix_matches_query_but_path_does_not() -> None:
    t = table([{"name": "p", "match": {"path": "/x"}, "direct_response": {"status": 200}}])
    assert select_route(t, head(b"/x?y"), b"h").name == "p"
    assert select_route(t, head(b"/x/"), b"h") is None


def test_header_range_and_missing_as_empty() -> None:
    t = table([{"name": "r", "match": {"prefix": "/", "headers": [{"name": "x-n", "range_match": {"start": 1, "end": 10}}]},
                "direct_response": {"status": 200}},
               {"name": "e", "match": {"prefix": "/", "headers": [{"name": "x-e", "string_match": {"exact": ""},
                                                                    "treat_missing_header_as_empty": True}]},
                "direct_response": {"status": 200}}])
    assert select_route(t, head(b"/", [(b"x-n", b"5")]), b"h").name == "r"
    assert select_route(t, head(b"/", [(b"x-n", b"10")]), b"h").name == "e"


def test_header_matchers_see_the_pseudo_headers_as_envoys_do() -> None:
    """Istio turns a VirtualService ``method`` match into a ``:method`` header matcher."""
    t = table([{"name": "post", "match": {"prefix": "/", "headers": [{"name": ":method", "string_match": {"exact": "POST"}}]},
                "direct_response": {"status": 200}},
               {"name": "api", "match": {"prefix": "/", "headers": [{"name": ":path", "string_match": {"prefix": "/api"}},
                                                                      {"name": ":scheme", "string_match": {"exact": "http"}}]},
                "direct_response": {"status": 200}},
               {"name": "rest", "match": {"prefix": "/"}, "direct_response": {"status": 200}}])
    post = head(b"/x")
    post.method = b"POST"
    get = head(b"/x")
    get.method = b"GET"
    assert select_route(t, post, b"h").name == "post"
    assert select_route(t, get, b"h").name == "rest"
    api = head(b"/api/v1")
    api.method = b"GET"
    assert select_route(t, api, b"h").name == "api"


def test_weighted_pick_matches_weights() -> None:
    t = table([{"match": {"prefix": "/"}, "route": {"weighted_clusters": {"clusters": [
        {"name": "a", "weight": 1}, {"name": "b", "weight": 3}]}}}], [cluster("a", 1), cluster("b", 2)])
    action = select_route(t, head(b"/"), b"h").action
    rng = random.Random(0)
    counts = Counter(pick_weighted(action, rng).cluster for _ in range(4000))
    assert 2800 < counts["b"] < 3200
