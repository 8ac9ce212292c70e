"""The server's per-stream ACK/NACK state, without gRPC: requests in, verdicts and responses out."""

from __future__ import annotations

import itertools

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_pb2
from envoy.service.discovery.v3 import discovery_pb2

from pilotfish.xds.connection import Connection, Verdict, encode
from pilotfish.xds.type_urls import CLUSTER, ROUTE

Request = discovery_pb2.DiscoveryRequest


def conn() -> Connection:
    return Connection("n-1", base_pb2.Node(id="n"), "ipv4:127.0.0.1:1", 0.0)


def nonces() -> itertools.count[int]:
    return itertools.count(1)


def test_rds_names_dropped_to_none_are_not_a_wildcard_but_a_first_empty_request_is() -> None:
    c = conn()
    assert c.on_request(Request(type_url=ROUTE)) is Verdict.SUBSCRIBE
    assert c.watches[ROUTE].wildcard  # the legacy wildcard: first request, no names
    counter = nonces()
    resp = c.respond(ROUTE, {"80": b""}, "v1", lambda: str(next(counter)), force=True)
    assert resp is not None
    assert c.on_request(Request(type_url=ROUTE, resource_names=["80"], response_nonce=resp.nonce,
                                version_info="v1")) is Verdict.RENAME
    c.on_request(Request(type_url=ROUTE, resource_names=[], response_nonce=resp.nonce, version_info="v1"))
    assert not c.watches[ROUTE].wildcard and not c.watches[ROUTE].active
    c.on_request(Request(type_url=CLUSTER))
    c.on_request(Request(type_url=CLUSTER, resource_names=["*", "extra"]))
    assert c.watches[CLUSTER].wildcard and c.watches[CLUSTER].query() == frozenset()


def test_named_routes_the_generator_lacks_are_answered_empty_and_extras_are_left_out() -> None:
    c = conn()
    c.on_request(Request(type_url=ROUTE, resource_names=["80", "9080"]))
    out = encode(ROUTE, {"80": route_pb2.RouteConfiguration(name="80", ignore_port_in_host_matching=True),
                         "other": route_pb2.RouteConfiguration(name="other")}, c.watches[ROUTE])
    assert sorted(out) == ["80", "9080"]
    assert route_pb2.RouteConfiguration.FromString(out["9080"]) == route_pb2.RouteConfiguration(name="9080")


def test_convergence_waits_for_the_ack_of_every_type_the_push_changed() -> None:
    c = conn()
    counter = nonces()
    c.on_request(Request(type_url=CLUSTER))
    c.on_request(Request(type_url=ROUTE, resource_names=["80"]))
    cds = c.respond(CLUSTER, {"a": b"1"}, "v2", lambda: str(next(counter)), force=False, push_started=10.0)
    rds = c.respond(ROUTE, {"80": b"2"}, "v2", lambda: str(next(counter)), force=False, push_started=10.0)
    assert cds is not None and rds is not None
    assert c.respond(CLUSTER, {"a": b"1"}, "v3", lambda: "x", force=False) is None  # unchanged
    assert c.on_request(Request(type_url=CLUSTER, response_nonce=cds.nonce, version_info="v2")) is Verdict.ACK
    assert c.converged(CLUSTER, cds.nonce, 10.5) is None  # routes still unacknowledged
    c.on_request(Request(type_url=ROUTE, resource_names=["80"], response_nonce=rds.nonce, version_info="v2"))
    assert c.converged(ROUTE, rds.nonce, 10.75) == 0.75


def test_a_nack_records_the_rejected_version_and_ends_the_pushs_convergence() -> None:
    c = conn()
    c.on_request(Request(type_url=CLUSTER))
    sent = c.respond(CLUSTER, {"a": b"1"}, "v2", lambda: "n1", force=True, push_started=1.0)
    assert sent is not None
    nack = Request(type_url=CLUSTER, response_nonce="n1", version_info="")
    nack.error_detail.message = "bad cluster"
    assert c.on_request(nack) is Verdict.NACK
    status = c.status().types[CLUSTER]
    assert (status.nack_version, status.nack_error, status.acked_version, status.sync) == (
        "v2", "bad cluster", "", "NACKED")
    assert c.converging_since is None
    assert c.on_request(Request(type_url=CLUSTER, response_nonce="n0")) is Verdict.STALE
    assert c.on_request(Request(type_url=ROUTE, response_nonce="n1")) is Verdict.UNKNOWN
