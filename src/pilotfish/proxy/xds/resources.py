"""The accepted xDS resources: an immutable snapshot per update, and what they reference.

State of the world: a Listener or Cluster response is the whole set (a name left out is removed);
RouteConfiguration and ClusterLoadAssignment responses update the names they carry and the rest
stay until nothing references them any more. A rejected resource keeps its previous entry
(``with_partial``), as Envoy keeps a listener or cluster whose update it rejected.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from google.protobuf import any_pb2

from ..common.errors import ProxyConfigError
from ..compile.data_sources import resolve_data_sources
from ..compile.subset import CheckResult, check_message, connection_managers
from .type_state import CLUSTER, ENDPOINT, FULL_STATE, LISTENER, ROUTE

#: Short names used in error paths and logs, Envoy's resource kinds.
KIND = {LISTENER: "Listener", ROUTE: "RouteConfiguration", CLUSTER: "Cluster",
        ENDPOINT: "ClusterLoadAssignment"}
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
def resource_name(type_url: str, msg: Any) -> str:
    return msg.cluster_name if type_url == ENDPOINT else msg.name  # type: ignore[no-any-return]


def decode(type_url: str, resources: Iterable[any_pb2.Any], wanted: Any,
           warnings: list[str]) -> dict[str, Any]:
    """Unpack and check a response's resources; ProxyConfigError names the resource and field.

    ``wanted(name)`` says whether the client asked for a name; RDS and EDS resources it did not
    ask for are ignored, as Envoy does.
    """
    from google.protobuf import symbol_database

    cls = symbol_database.Default().GetSymbol(type_url.rsplit("/", 1)[-1])
    kind = KIND[type_url]
    out: dict[str, Any] = {}
    for i, item in enumerate(resources):
        if item.type_url != type_url:
            raise ProxyConfigError(f"resource of type {item.type_url!r} in a {kind} response",
                                   f"resources[{i}]")
        msg = cls()
        try:
            item.Unpack(msg)
        except Exception as exc:  # a DecodeError from the protobuf runtime
            raise ProxyConfigError(f"cannot decode: {exc}", f"resources[{i}]") from None
        name = resource_name(type_url, msg)
        if not name:
            raise ProxyConfigError(f"a {kind} needs a name", f"resources[{i}]")
        if name in out:
            raise ProxyConfigError(f"duplicate {kind} {name!r}", f"{kind}[{name}]")
        if type_url not in FULL_STATE and not wanted(name):
            continue
        result = CheckResult()
        check_message(msg, f"{kind}[{name}]", result)
        unreadable = resolve_data_sources(msg, f"{kind}[{name}]")
        if unreadable:
            raise ProxyConfigError.collected(unreadable)
        warnings.extend(result.warnings)
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


def decode_each(type_url: str, resources: Iterable[any_pb2.Any], wanted: Any,
                warnings: list[str]) -> Decoded:
    """``decode`` that rejects resources one by one instead of the whole response.

    A name that appears twice is rejected, both copies: which one the server meant is unknown,
    so the previous version stays (Envoy's LDS and CDS apply the first copy and reject the
    next). A resource that cannot be named is rejected without taking the response down with
    it (Envoy rejects such a response whole); see ``Decoded.unnamed``. RDS and EDS resources the
    client did not ask for are ignored, as Envoy does.
    """
    from google.protobuf import symbol_database

    cls = symbol_database.Default().GetSymbol(type_url.rsplit("/", 1)[-1])
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
        result = CheckResult()
        try:
            check_message(msg, f"{kind}[{name}]", result)
            unreadable = resolve_data_sources(msg, f"{kind}[{name}]")
            if unreadable:
                raise ProxyConfigError.collected(unreadable)
        except ProxyConfigError as exc:
            out.rejected[name] = str(exc)
            continue
        warnings.extend(result.warnings)
        out.messages[name] = msg
    return out


# ---- references ----------------------------------------------------------------------------
def _rds_refs(listeners: Iterable[Any]) -> Iterator[tuple[str, str]]:
    """(RDS name, stat_prefix) of each HttpConnectionManager of the listeners that uses RDS."""
    for _, hcm in connection_managers(listeners):
        if hcm.HasField("rds") and hcm.rds.route_config_name:
            yield hcm.rds.route_config_name, hcm.stat_prefix


def route_names(listeners: Iterable[Any]) -> set[str]:
    """RDS names the listeners' HttpConnectionManagers ask for."""
    return {name for name, _ in _rds_refs(listeners)}


def eds_name(cluster: Any) -> str | None:
    """The ClusterLoadAssignment name an EDS cluster asks for (service_name, else its name)."""
    if cluster.WhichOneof("cluster_discovery_type") != "type" or cluster.type != 3:  # EDS
        return None
    return cluster.eds_cluster_config.service_name or cluster.name  # type: ignore[no-any-return]


def route_stat_prefixes(listeners: Iterable[Any]) -> dict[str, set[str]]:
    """RDS name → the stat_prefixes of the HttpConnectionManagers asking for it (its stats live
    under ``http.<stat_prefix>.rds.<name>``)."""
    out: dict[str, set[str]] = {}
    for name, prefix in _rds_refs(listeners):
        out.setdefault(name, set()).add(prefix)
    return out


def eds_stat_names(clusters: Iterable[Any]) -> dict[str, set[str]]:
    """ClusterLoadAssignment name → the stat names of the EDS clusters asking for it."""
    out: dict[str, set[str]] = {}
    for c in clusters:
        service = eds_name(c)
        if service is not None:
            out.setdefault(service, set()).add(c.alt_stat_name or c.name)
    return out


def eds_names(clusters: Iterable[Any]) -> set[str]:
    return {n for n in map(eds_name, clusters) if n is not None}
