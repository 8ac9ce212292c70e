"""EnvoyFilter analyzer: patch operations that are ignored, or fragile without a priority.

Ported from istio/istio pkg/config/analysis/analyzers/envoyfilter.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import FieldPath
from .context import ENVOY_FILTER, Entry, Snapshot
from .framework import Message, analyzer, new_message

ROUTE_LEVEL = ("ROUTE_CONFIGURATION", "HTTP_ROUTE")
REPLACEABLE = ("HTTP_FILTER", "NETWORK_FILTER", "VIRTUAL_HOST")
RELATIVE_INSERTS = ("INSERT_BEFORE", "INSERT_AFTER")


def _enum(value: Any) -> str:
    return "" if value is None else str(value)


def _instance_name(patch: Any) -> str:
    """The name a patch's value gives its filter, else the filter its listener match names."""
    value = getattr(patch.patch, "value", None)
    if not isinstance(value, dict) or not value:
        return ""
    if value.get("name") is not None:
        return str(value["name"])
    listener = getattr(getattr(patch, "match", None), "listener", None)
    chain = getattr(listener, "filter_chain", None) if listener is not None else None
    flt = getattr(chain, "filter", None) if chain is not None else None
    return (getattr(flt, "name", None) or "") if flt is not None else ""


def _proxy_version(patch: Any) -> str:
    proxy = getattr(getattr(patch, "match", None), "proxy", None)
    return (getattr(proxy, "proxy_version", None) or "") if proxy is not None else ""


def _relative(entry: Entry, priority: int, versioned: list[str], name: str, at: FieldPath) -> Iterator[Message]:
    if priority:
        return
    if name in versioned:
        yield new_message("EnvoyFilterUsesRelativeOperationWithProxyVersion", entry, path=at)
    else:
        yield new_message("EnvoyFilterUsesRelativeOperation", entry, path=at)


def _analyze(entry: Entry, versioned: list[str]) -> Iterator[Message]:
    ef = entry.spec
    priority = getattr(ef, "priority", None) or 0
    for i, patch in enumerate(getattr(ef, "config_patches", None) or []):
        if getattr(patch, "patch", None) is None:
            break
        at = ("spec", "configPatches", i, "patch", "value")  # Istio's util.EnvoyFilterConfigPath
        name = _instance_name(patch)
        operation, apply_to = _enum(patch.patch.operation), _enum(patch.apply_to)
        if operation == "ADD":
            if apply_to in ROUTE_LEVEL:
                yield new_message("EnvoyFilterUsesAddOperationIncorrectly", entry, path=at)
        elif operation == "REMOVE":
            if apply_to in ROUTE_LEVEL:
                yield new_message("EnvoyFilterUsesRemoveOperationIncorrectly", entry, path=at)
            else:
                yield from _relative(entry, priority, versioned, name, at)
        elif operation == "REPLACE":
            if apply_to not in REPLACEABLE:
                yield new_message("EnvoyFilterUsesReplaceOperationIncorrectly", entry, path=at)
            else:
                yield from _relative(entry, priority, versioned, name, at)
        elif operation in RELATIVE_INSERTS:
            yield from _relative(entry, priority, versioned, name, at)
        if _proxy_version(patch):
            versioned.append(name)


@analyzer("envoyfilter.EnvoyPatchAnalyzer", "Checks an envoyFilters ", inputs=(ENVOY_FILTER,))
def envoy_patches(snap: Snapshot) -> Iterator[Message]:
    # Filter names patched with a proxyVersion match, carried from one EnvoyFilter to the next.
    versioned: list[str] = []
    for entry in snap.each(ENVOY_FILTER):
        yield from _analyze(entry, versioned)


ANALYZERS = [envoy_patches]
