"""One ADS stream as the server sees it: what the proxy watches, what was sent, what it accepted.

Pure protocol state (no gRPC, no clock): requests in, verdicts out, and the responses to send
built from encoded resources. State of the world, as XDS.md describes it:

* a request with an empty nonce is a (re)subscription: answer it with the current state;
* a request whose nonce is the last one sent is an ACK (``error_detail`` unset) or a NACK;
  an ACK that changes the names asks for the new set and is answered;
* a request with any other nonce answers a superseded response: stale, ignored;
* a NACKed state is not sent again: a response goes out only when the resources change
  (``respond`` compares the encoded bytes with what was sent last).

For RDS and EDS every name asked for is answered (``encode`` adds an empty RouteConfiguration
or ClusterLoadAssignment for a name the generator does not know), because a client that never
hears of a name waits for it (grpcio's does-not-exist timer is 15 s).
"""

from __future__ import annotations

import sys

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.route.v3 import route_pb2
from envoy.service.discovery.v3 import discovery_pb2

from .type_urls import ENDPOINT, FULL_STATE, ROUTE

Encoded = Mapping[str, bytes]  # resource name -> serialized resource


class Verdict(Enum):
    """What a request is, and so whether it is answered."""

    SUBSCRIBE = "subscribe"  # empty nonce: first request of a type, or a re-subscription
    RENAME = "rename"  # an ACK naming a different set of resources
    ACK = "ack"
    NACK = "nack"
    STALE = "stale"  # answers a response that a newer one superseded
    UNKNOWN = "unknown"  # a nonce for a type never subscribed on this stream

    @property
    def respond(self) -> bool:
        return self in (Verdict.SUBSCRIBE, Verdict.RENAME)


class Watch:
    """One subscribed type on one stream."""

    __slots__ = ("type_url", "names", "wildcard", "sent", "sent_version", "sent_nonce",
                 "acked_version", "acked_nonce", "nack_version", "nack_error", "nack_nonce")

    def __init__(self, type_url: str) -> None:
        self.type_url = type_url
        self.names: frozenset[str] = frozenset()
        self.wildcard = False
        self.sent: Encoded | None = None  # the resources of the last response (None: none yet)
        self.sent_version = ""
        self.sent_nonce = ""
        self.acked_version = ""
        self.acked_nonce = ""
        self.nack_version = ""
        self.nack_error = ""
        self.nack_nonce = ""

    @property
    def active(self) -> bool:
        """Something to answer: a wildcard, or at least one name."""
        return self.wildcard or bool(self.names)

    def subscribe(self, names: Sequence[str]) -> bool:
        """Apply a request's names; True when the subscription changed.

        An empty list is a wildcard for LDS/CDS, and for RDS/EDS only on the first request
        (the legacy wildcard); once RDS/EDS named resources, an empty list means none. ``*``
        is an explicit wildcard.
        """
        # (interned: a hundred proxies subscribe to the same thousands of names)
        explicit = frozenset(sys.intern(n) for n in names if n != "*")
        if "*" in names:
            wildcard = True
        elif not names:
            wildcard = self.type_url in FULL_STATE or (self.sent is None and not self.names)
        else:
            wildcard = False
        changed = wildcard != self.wildcard or explicit != self.names
        self.wildcard, self.names = wildcard, explicit
        return changed

    def query(self) -> frozenset[str]:
        """The names to ask the generator for (empty: every one)."""
        return frozenset() if self.wildcard else self.names


@dataclass(frozen=True, slots=True)
class TypeStatus:
    """Where one type stands on one stream (Istio's SyncStatus, per type)."""

    type_url: str
    names: tuple[str, ...]
    wildcard: bool
    resources: tuple[str, ...]  # the names in the last response sent
    sent_version: str
    sent_nonce: str
    acked_version: str
    acked_nonce: str
    nack_version: str
    nack_error: str

    @property
    def sync(self) -> str:
        """``SYNCED``, ``NOT SENT``, ``NACKED`` or ``STALE`` (sent, not yet acknowledged)."""
        if not self.sent_nonce:
            return "NOT SENT"
        if self.acked_nonce == self.sent_nonce:
            return "SYNCED"
        return "NACKED" if self.nack_error and self.nack_version == self.sent_version else "STALE"


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    """A connected proxy, for proxy-status and /debug/syncz."""

    id: str
    node_id: str
    node: base_pb2.Node
    peer: str
    connected_at: float  # wall-clock seconds
    types: Mapping[str, TypeStatus]


class Connection:
    """The server's state for one ADS stream."""

    __slots__ = ("id", "node", "peer", "connected_at", "watches", "converging_since", "outstanding")

    def __init__(self, conn_id: str, node: base_pb2.Node, peer: str, connected_at: float) -> None:
        self.id = conn_id
        self.node = node
        self.peer = peer
        self.connected_at = connected_at
        self.watches: dict[str, Watch] = {}
        # Convergence of the oldest push not yet acknowledged: when it started, and the nonce
        # sent for each type it changed (cleared as the ACKs come in).
        self.converging_since: float | None = None
        self.outstanding: dict[str, str] = {}

    # ---- requests ---------------------------------------------------------------------------
    def on_request(self, req: discovery_pb2.DiscoveryRequest) -> Verdict:
        """Classify a request and record what it says (names, ACK, NACK)."""
        watch = self.watches.get(req.type_url)
        if not req.response_nonce:
            if watch is None:
                watch = self.watches[req.type_url] = Watch(req.type_url)
            watch.subscribe(req.resource_names)
            return Verdict.SUBSCRIBE
        if watch is None:
            return Verdict.UNKNOWN
        if req.response_nonce != watch.sent_nonce:
            return Verdict.STALE
        if req.HasField("error_detail"):
            watch.nack_version = watch.sent_version
            watch.nack_error = req.error_detail.message or f"code {req.error_detail.code}"
            watch.nack_nonce = req.response_nonce
            self.converging_since = None  # this push never converges
            self.outstanding.clear()
            return Verdict.NACK
        watch.acked_version = req.version_info
        watch.acked_nonce = req.response_nonce
        watch.nack_version = watch.nack_error = watch.nack_nonce = ""
        return Verdict.RENAME if watch.subscribe(req.resource_names) else Verdict.ACK

    def converged(self, type_url: str, nonce: str, now: float) -> float | None:
        """After an ACK: the seconds from the push to this ACK when it was the push's last."""
        if self.outstanding.get(type_url) != nonce:
            return None
        del self.outstanding[type_url]
        if self.outstanding or self.converging_since is None:
            return None
        since, self.converging_since = self.converging_since, None
        return max(0.0, now - since)

    # ---- responses --------------------------------------------------------------------------
    def respond(self, type_url: str, resources: Encoded, version: str, nonce: Callable[[], str],
                *, force: bool, push_started: float | None = None) -> Outgoing | None:
        """The response carrying ``resources``, or None when unforced and nothing changed.

        With ``push_started`` the response belongs to a push and is awaited for convergence.
        """
        watch = self.watches[type_url]
        if not force and watch.sent is not None and watch.sent == resources:
            return None
        watch.sent = resources  # (never changed once made: encode() hands out shared mappings)
        watch.sent_version = version
        watch.sent_nonce = nonce()
        resp = Outgoing(type_url, version, watch.sent_nonce, watch.sent)
        if push_started is not None:
            if self.converging_since is None or push_started < self.converging_since:
                self.converging_since = push_started
            self.outstanding[type_url] = watch.sent_nonce
        elif type_url in self.outstanding:
            self.outstanding[type_url] = watch.sent_nonce  # the same push, re-sent
        return resp

    def status(self) -> ConnectionStatus:
        types = {t: TypeStatus(t, tuple(sorted(w.names)), w.wildcard, tuple(sorted(w.sent or ())),
                               w.sent_version, w.sent_nonce, w.acked_version, w.acked_nonce,
                               w.nack_version, w.nack_error)
                 for t, w in self.watches.items()}
        return ConnectionStatus(self.id, self.node.id, self.node, self.peer, self.connected_at, types)


#: Serialized resources of one config version by message identity (the message kept alongside,
#: so an id is never taken for a newer object's): a generator hands the same message to every
#: proxy that would get the same resource, and serializing it once instead of once per
#: connection is most of a push at a thousand services (and one bytes object for all of them).
EncodeCache = dict[object, tuple[Any, Any]]
ENCODE_CACHE_LIMIT = 200_000


class Outgoing:
    """A response decided on, made into a DiscoveryResponse only when its stream writes it: a
    push to a hundred proxies would otherwise hold a hundred copies of every resource at once."""

    __slots__ = ("type_url", "version", "nonce", "resources", "control_plane")

    def __init__(self, type_url: str, version: str, nonce: str, resources: Encoded) -> None:
        self.type_url = type_url
        self.version = version
        self.nonce = nonce
        self.resources = resources  # name -> serialized resource (shared bytes)
        self.control_plane = ""

    def build(self) -> discovery_pb2.DiscoveryResponse:
        resp = discovery_pb2.DiscoveryResponse(version_info=self.version, type_url=self.type_url,
                                               nonce=self.nonce)
        for name in sorted(self.resources):
            resp.resources.add(type_url=self.type_url, value=self.resources[name])
        if self.control_plane:
            resp.control_plane.identifier = self.control_plane
        return resp


def encode(type_url: str, generated: Mapping[str, Any], watch: Watch,
           cache: EncodeCache | None = None) -> dict[str, bytes]:
    """What a watch receives of ``generated``, serialized (deterministic bytes compare).

    A named subscription gets only the names it asked for; for RDS and EDS a name the generator
    did not return is answered with an empty resource of that name.
    """
    if cache is not None:  # the same mapping for many proxies (EDS answers): encoded once
        key = ("mapping", id(generated), None if watch.wildcard else frozenset(watch.names))
        hit = cache.get(key)
        if hit is not None and hit[0] is generated:
            return hit[1]  # type: ignore[no-any-return]  # shared: callers never change it
    if watch.wildcard:
        out = {name: encoded(msg, cache) for name, msg in generated.items()}
    else:
        out = {name: encoded(generated[name], cache) for name in watch.names if name in generated}
        if type_url in (ROUTE, ENDPOINT):
            for name in watch.names - out.keys():
                out[name] = encoded(_empty(type_url, name), None)
    if cache is not None:
        cache[key] = (generated, out)
    return out


def _empty(type_url: str, name: str) -> Any:
    if type_url == ROUTE:
        return route_pb2.RouteConfiguration(name=name)
    return endpoint_pb2.ClusterLoadAssignment(cluster_name=name)


def encoded(msg: Any, cache: EncodeCache | None) -> bytes:
    """``msg`` serialized deterministically, once per ``cache`` (a config version)."""
    if cache is None:
        return msg.SerializeToString(deterministic=True)  # type: ignore[no-any-return]
    hit = cache.get(id(msg))
    if hit is not None and hit[0] is msg:
        return hit[1]
    data: bytes = msg.SerializeToString(deterministic=True)
    if len(cache) >= ENCODE_CACHE_LIMIT:  # messages made per request between pushes: start again
        cache.clear()
    cache[id(msg)] = (msg, data)
    return data
