"""The request path's shortcuts give what the general code gives: the route table's catch-all
first route, and the round-robin pick the stream makes without a Python frame."""

from __future__ import annotations

import random
from dataclasses import dataclass

from pilotfish.proxy.upstream.lb import RoundRobin
from pilotfish.proxy.router.routing import select_route

from .helpers import head, table


def _direct(name: str, match: dict) -> dict:
    return {"name": name, "match": match, "direct_response": {"status": 200}}


def test_first_route_is_the_catch_all_prefix_of_a_lone_star_host() -> None:
    t = table([_direct("one", {"prefix": "/a"}), _direct("two", {"prefix": "/"})])
    assert t.first_route.name == "one" and t.first_prefix == b"/a"
    # What the stream does: the first route when its prefix matches, else select_route.
    for path, name in ((b"/abc", "one"), (b"/b", "two")):
        route = t.first_route if path.startswith(t.first_prefix) else select_route(t, head(path), b"h")
        assert route.name == name == select_route(t, head(path), b"h").name


def test_no_first_route_when_the_first_route_needs_more_than_a_prefix() -> None:
    assert table([_direct("h", {"prefix": "/", "headers": [{"name": "x", "present_match": True}]})]).first_route is None
    assert table([_direct("p", {"path": "/x"})]).first_route is None
    assert table([_direct("c", {"prefix": "/A", "case_sensitive": False})]).first_route is None
    assert table([]).first_route is None
    hosts = {"virtual_hosts": [{"name": "a", "domains": ["a"], "routes": [_direct("a", {"prefix": "/"})]},
                               {"name": "all", "domains": ["*"], "routes": [_direct("s", {"prefix": "/"})]}]}
    assert table(hosts).first_route is None  # the host must be chosen first


@dataclass
class H:
    name: str
    weight: int = 1


def test_round_robin_next_host_is_choose_host() -> None:
    hosts = [H("a"), H("b"), H("c")]
    one, two = RoundRobin(hosts, random.Random(3)), RoundRobin(hosts, random.Random(3))
    picks = [one.next_host().name for _ in range(7)]
    assert picks == [two.choose_host(None).name for _ in range(7)]
    assert sorted(picks[:3]) == ["a", "b", "c"] and picks[3:6] == picks[:3]
    assert RoundRobin([], random.Random(0)).next_host() is None
