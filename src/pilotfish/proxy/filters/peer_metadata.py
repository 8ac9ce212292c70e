"""Istio's HTTP metadata exchange: who is on the other side of a request.

Two Istio proxies tell each other their workload through two headers: ``x-envoy-peer-metadata-id``
(the node id) and ``x-envoy-peer-metadata`` (base64 of a serialized ``google.protobuf.Struct``
holding NAME, NAMESPACE, WORKLOAD_NAME, CLUSTER_ID, LABELS, OWNER). As in istio/proxy's
``peer_metadata`` filter: a client sidecar adds its own headers to requests it sends upstream and
reads (and removes) the server's from the response; a server sidecar reads (and removes) the
client's from the request and answers with its own only when the client sent them.

Decoding happens once per distinct peer (a bounded cache keyed by the header value); the request
path only filters a header list and does a dict lookup.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from google.protobuf import struct_pb2

from ..common.peer_info import PeerInfo

ID_HEADER = b"x-envoy-peer-metadata-id"
METADATA_HEADER = b"x-envoy-peer-metadata"
_MX_HEADERS = frozenset({ID_HEADER, METADATA_HEADER})
_CACHE_LIMIT = 1024

def decode_peer(value: bytes) -> PeerInfo | None:
    """Parse an ``x-envoy-peer-metadata`` value; None when it is not a base64 Struct."""
    try:
        raw = base64.b64decode(value + b"=" * (-len(value) % 4), validate=False)
        st = struct_pb2.Struct.FromString(raw)
    except (binascii.Error, ValueError, Exception):  # noqa: BLE001 - any garbage means "unknown peer"
        return None
    from google.protobuf import json_format

    return PeerInfo.from_metadata(json_format.MessageToDict(st))


class PeerCache:
    """Header value → PeerInfo, so a peer is decoded once and its object reused (cheap hashing)."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: dict[bytes, PeerInfo | None] = {}

    def get(self, value: bytes) -> PeerInfo | None:
        try:
            return self.entries[value]
        except KeyError:
            pass
        if len(self.entries) >= _CACHE_LIMIT:
            self.entries.clear()
        peer = self.entries[value] = decode_peer(value)
        return peer


class PeerExchange:
    """The compiled ``istio.metadata_exchange`` filter of one HTTP connection manager."""

    __slots__ = ("downstream_discovery", "upstream_discovery", "downstream_propagation",
                 "upstream_propagation", "own_headers", "cache", "skip_passthrough")

    def __init__(self, own: PeerInfo, node_id: str, *, downstream_discovery: bool = False,
                 upstream_discovery: bool = False, downstream_propagation: bool = False,
                 upstream_propagation: bool = False, skip_passthrough: bool = False) -> None:
        self.downstream_discovery = downstream_discovery
        self.upstream_discovery = upstream_discovery
        self.downstream_propagation = downstream_propagation
        self.upstream_propagation = upstream_propagation
        self.skip_passthrough = skip_passthrough
        self.own_headers = ((ID_HEADER, node_id.encode()), (METADATA_HEADER, own.header_value()))
        self.cache = PeerCache()

    def request_headers(self, stream: Any, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """Headers going upstream: read and drop the client's, add ours when propagating."""
        if self.downstream_discovery:
            kept = [h for h in headers if h[0] not in _MX_HEADERS]
            if len(kept) != len(headers):
                for name, value in headers:
                    if name == METADATA_HEADER:
                        stream.peer = self.cache.get(value)
                        break
                headers = kept
        if self.upstream_propagation and not (self.skip_passthrough and stream.cluster is not None
                                              and stream.cluster.name == "PassthroughCluster"):
            if not self.downstream_discovery:
                headers = [h for h in headers if h[0] not in _MX_HEADERS]
            headers.extend(self.own_headers)
        return headers

    def response_headers(self, stream: Any, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """Headers going downstream: read and drop the server's, answer with ours when asked."""
        if self.upstream_discovery:
            kept = [h for h in headers if h[0] not in _MX_HEADERS]
            if len(kept) != len(headers):
                for name, value in headers:
                    if name == METADATA_HEADER:
                        stream.peer = self.cache.get(value)
                        break
                headers = kept
        if self.downstream_propagation and self.downstream_discovery and stream.peer is not None:
            headers.extend(self.own_headers)
        return headers
