"""ACK/NACK bookkeeping for one type URL on an ADS stream: pure, no gRPC, no clock.

State of the world: every request carries the full list of names wanted, the last *accepted*
``version_info`` and the nonce of the latest response seen. An ACK answers a response with its
version; a NACK answers it with the previous accepted version and ``error_detail``. A NACKed
version is never re-sent in a loop: the next request goes out only when something changes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """The fields of one DiscoveryRequest, before it becomes a protobuf."""

    type_url: str
    names: tuple[str, ...]
    version: str
    nonce: str
    error: str | None = None
    with_node: bool = False


class TypeState:
    """Subscribed names, last accepted version, last nonce and node bookkeeping for one type."""

    __slots__ = ("type_url", "wildcard", "names", "version", "nonce", "started", "node_sent",
                 "rejected", "responses")

    def __init__(self, type_url: str, wildcard: bool = False) -> None:
        self.type_url = type_url
        self.wildcard = wildcard  # LDS and CDS ask for everything (an empty name list)
        self.names: frozenset[str] = frozenset()
        self.version = ""  # the last accepted version_info ('' until one is accepted)
        self.nonce = ""  # the nonce of the latest response received on this stream
        self.started = False  # a request for this type went out on the current stream
        self.node_sent = False
        self.rejected: tuple[str, str] | None = None  # (version, error) of the last NACK
        self.responses = 0  # responses received for this type over the client's life

    # ---- what to send -------------------------------------------------------------------
    def _spec(self, nonce: str, version: str, error: str | None = None) -> RequestSpec:
        with_node = not self.node_sent
        self.node_sent = True
        self.started = True
        names = () if self.wildcard else tuple(sorted(self.names))
        return RequestSpec(self.type_url, names, version, nonce, error, with_node)

    def subscribe(self) -> RequestSpec:
        """The first request on a (re)connected stream: names, last accepted version, no nonce."""
        return self._spec("", self.version)

    def set_names(self, names: frozenset[str] | set[str]) -> RequestSpec | None:
        """Change the subscription; a request only when the set changed and the type is started."""
        names = frozenset(names)
        if names == self.names:
            return None
        self.names = names
        if not self.started:
            return None
        return self._spec(self.nonce, self.version)

    def wants(self, name: str) -> bool:
        return self.wildcard or name in self.names

    # ---- what arrived -------------------------------------------------------------------
    def on_response(self, version: str, nonce: str) -> None:
        """Record a response's nonce; every request from now on answers it."""
        del version
        self.nonce = nonce
        self.responses += 1

    def ack(self, version: str) -> RequestSpec:
        self.version = version
        self.rejected = None
        return self._spec(self.nonce, version)

    def nack(self, version: str, error: str) -> RequestSpec:
        """Reject the latest response; the previously accepted version stays in the request."""
        self.rejected = (version, error)
        return self._spec(self.nonce, self.version, error)

    # ---- the stream ---------------------------------------------------------------------
    def reset_stream(self) -> None:
        """A new stream: nonces of the old one mean nothing; names and version are kept."""
        self.nonce = ""
        self.started = False
        self.node_sent = False
