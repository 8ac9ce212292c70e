"""The accepted xDS resources: an immutable snapshot per update, and what they reference.

State of the world: a Listener or Cluster response is the whole set (a name left out is removed);
RouteConfiguration and ClusterLoadAssignment responses update the names they carry and the rest
stay until nothing references them any more. A rejected resource keeps its previous entry
(``with_partial``), as Envoy keeps a listener or cluster whose update it rejected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from google.protobuf import any_pb2

from .errors import ResourceRejected
from .type_urls import (
    CLUSTER,
    ENDPOINT,
    FULL_STATE,
    KIND,
    LISTENER,
    ROUTE,
    message_class,
    resource_name,
)

#: Checks one decoded resource against what the client supports: its warnings, or
#: ResourceRejected naming the field (the proxy passes its supported-subset checker).
Checker = Callable[[Any, str], Sequence[str]]

_FIELD = {LISTENER: "listeners", ROUTE: "routes", CLUSTER: "clusters", ENDPOINT: "endpoints"}


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Entry:
    """One accepted resource, the version it came with and when (wall clock, for /config_dump)."""

    message: Any
    version: str
    last_updated: float


@dataclass(frozen=True, slots=True)
class Failure:
    """A resource's last rejected update (Envoy's UpdateFailureState in /config_dump)."""

    message: Any  # the rejected resource; None when it could not be kept (a duplicate)
    version: str
    details: str
    at: float


@dataclass(frozen=True, slots=True)
class Resources:
    listeners: Mapping[str, Entry] = field(default_factory=_empty)
    routes: Mapping[str, Entry] = field(default_factory=_empty)
    clusters: Mapping[str, Entry] = field(default_factory=_empty)
    endpoints: Mapping[str, Entry] = field(default_factory=_empty)
    versions: Mapping[str, str] = field(default_factory=_empty)  # last accepted, by type URL
    errors: Mapping[str, Mapping[str, Failure]] = field(default_factory=_empty)  # by type URL, name

    def of(self, type_url: str) -> Mapping[str, Entry]:
        return getattr(self, _FIELD[type_url])  # type: ignore[no-any-return]

    def messages(self, type_url: str) -> dict[str, Any]:
        return {name: e.message for name, e in self.of(type_url).items()}

    def with_response(self, type_url: str, version: str, messages: Mapping[str, Any],
                      now: float) -> Resources:
        """A new snapshot with one response applied; unchanged resources keep their entries."""
        old = self.of(type_url)
        new: dict[str, Entry] = {} if type_url in FULL_STATE else dict(old)
        for name, msg in messages.items():
            prev = old.get(name)
            if prev is not None and prev.message == msg:
                new[name] = prev
            else:
                new[name] = Entry(msg, version, now)
        versions = dict(self.versions)
        versions[type_url] = version
        return replace(self, **{_FIELD[type_url]: MappingProxyType(new)},
                       versions=MappingProxyType(versions))

    def with_partial(self, type_url: str, version: str, messages: Mapping[str, Any], keep: Iterable[str],
                     now: float, keep_absent: bool = False) -> Resources:
        """``with_response`` for a response with rejected resources: the previous entries of the
        names in ``keep`` stay; with ``keep_absent`` (a resource whose name is unknown was
        rejected) a full-state response removes nothing."""
        old = self.of(type_url)
        merged = self.with_response(type_url, version, messages, now)
        new = dict(merged.of(type_url))
        for name in (old if keep_absent else keep):
            if name in old and name not in messages:
                new[name] = old[name]
        return replace(merged, **{_FIELD[type_url]: MappingProxyType(new)})

    def with_failures(self, type_url: str, failures: Mapping[str, Failure], seen: Iterable[str]) -> Resources:
        """Record a response's rejected resources. A failure stays until the resource is next
        sent (accepted or rejected again); a full-state response replaces them all."""
        old = self.errors.get(type_url, {})
        if type_url in FULL_STATE:
            new = dict(failures)
        else:
            gone = set(seen)
            new = {n: f for n, f in old.items() if n not in gone}
            new.update(failures)
        if not new and not old:
            return self
        errors = dict(self.errors)
        errors[type_url] = MappingProxyType(new)
        return replace(self, errors=MappingProxyType(errors))

    def keep_only(self, route_names: Iterable[str], eds_names: Iterable[str]) -> Resources:
        """Drop routes and endpoints nothing references any more."""
        rn, en = set(route_names), set(eds_names)
        routes = {k: v for k, v in self.routes.items() if k in rn}
        endpoints = {k: v for k, v in self.endpoints.items() if k in en}
        if len(routes) == len(self.routes) and len(endpoints) == len(self.endpoints):
            return self
        return replace(self, routes=MappingProxyType(routes), endpoints=MappingProxyType(endpoints))


# ---- decoding a response --------------------------------------------------------------------
def decode(type_url: str, resources: Iterable[any_pb2.Any], wanted: Any, check: Checker,
           warnings: list[str]) -> dict[str, Any]:
    """Unpack and check a response's resources; ResourceRejected names the resource and field.

    ``wanted(name)`` says whether the client asked for a name; RDS and EDS resources it did not
    ask for are ignored, as Envoy does.
    """
    cls = message_class(type_url)
    kind = KIND[type_url]
    out: dict[str, Any] = {}
    for i, item in enumerate(resources):
        if item.type_url != type_url:
            raise ResourceRejected(f"resources[{i}]: resource of type {item.type_url!r} in a {kind} response")
        msg = cls()
        try:
            item.Unpack(msg)
        except Exception as exc:  # a DecodeError from the protobuf runtime
            raise ResourceRejected(f"resources[{i}]: cannot decode: {exc}") from None
        name = resource_name(type_url, msg)
        if not name:
            raise ResourceRejected(f"resources[{i}]: a {kind} needs a name")
        if name in out:
            raise ResourceRejected(f"{kind}[{name}]: duplicate {kind} {name!r}")
        if type_url not in FULL_STATE and not wanted(name):
            continue
        warnings.extend(check(msg, f"{kind}[{name}]"))
        out[name] = msg
    return out


@dataclass(slots=True)
class Decoded:
    """A response's resources one by one: the good ones, and the rejected ones with why.

    ``rejected`` is keyed by resource name; a resource that cannot even be named (a wrong
    type_url, bytes that do not decode, no name) is keyed by its ``resources[i]`` path and sets
    ``unnamed``: since any name could be behind it, a full-state response then removes nothing.
    """

    messages: dict[str, Any] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    unnamed: bool = False
    names: set[str] = field(default_factory=set)  # every (wanted) name the response carried


def decode_each(type_url: str, resources: Iterable[any_pb2.Any], wanted: Any, check: Checker,
                warnings: list[str]) -> Decoded:
    """``decode`` that rejects resources one by one instead of the whole response.

    A name that appears twice is rejected, both copies: which one the server meant is unknown,
    so the previous version stays (Envoy's LDS and CDS apply the first copy and reject the
    next). A resource that cannot be named is rejected without taking the response down with
    it (Envoy rejects such a response whole); see ``Decoded.unnamed``. RDS and EDS resources the
    client did not ask for are ignored, as Envoy does.
    """
    cls = message_class(type_url)
    kind = KIND[type_url]
    out = Decoded()
    dup: set[str] = set()
    for i, item in enumerate(resources):
        where = f"resources[{i}]"
        if item.type_url != type_url:
            out.rejected[where] = f"{where}: resource of type {item.type_url!r} in a {kind} response"
            out.unnamed = True
            continue
        msg = cls()
        try:
            item.Unpack(msg)
        except Exception as exc:  # a DecodeError from the protobuf runtime
            out.rejected[where] = f"{where}: cannot decode: {exc}"
            out.unnamed = True
            continue
        name = resource_name(type_url, msg)
        if not name:
            out.rejected[where] = f"{where}: a {kind} needs a name"
            out.unnamed = True
            continue
        if type_url not in FULL_STATE and not wanted(name):
            continue
        out.names.add(name)
        if name in out.messages or name in dup:
            dup.add(name)
            out.messages.pop(name, None)
            out.rejected[name] = f"{kind}[{name}]: duplicate {kind} {name!r} in one response"
            continue
        try:
            found = check(msg, f"{kind}[{name}]")
        except ResourceRejected as exc:
            out.rejected[name] = str(exc)
            continue
        warnings.extend(found)
        out.messages[name] = msg
    return out


class ResponseResources(dict[str, Any]):
    """A response's decoded resources by name, plus those rejected before they were applied.

    A plain mapping to whoever only iterates it (the proxy's worker relay passes it through
    unchanged); ``rejected`` maps a name (or ``resources[i]`` for a resource that has none) to
    the error, and ``unnamed`` says a full-state response must not remove anything (a rejected
    resource could have carried any name).
    """

    def __init__(self, messages: Mapping[str, Any], rejected: Mapping[str, str] | None = None,
                 unnamed: bool = False) -> None:
        super().__init__(messages)
        self.rejected = dict(rejected or {})
        self.unnamed = unnamed
