"""ServiceEntry analyzers: TCP ports without addresses, one host:port with two protocols.

Ported from istio/istio pkg/config/analysis/analyzers/serviceentry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from .context import EXPORT_ALL, EXPORT_LOCAL, MESH_CONFIG, SERVICE_ENTRY, Entry, Snapshot, is_export_to_all
from .framework import Message, analyzer, new_message

AUTO_ALLOCATE_METADATA = ("ISTIO_META_DNS_AUTO_ALLOCATE", "PILOT_ENABLE_IP_AUTOALLOCATE")


def _auto_allocated_by_proxy(snap: Snapshot) -> bool:
    """DNS capture plus address auto-allocation configured mesh-wide in proxyMetadata."""
    meta = snap.mesh_config.default_config.proxy_metadata or {}
    if meta.get("ISTIO_META_DNS_CAPTURE") != "true":
        return False
    return any(meta.get(key) == "true" for key in AUTO_ALLOCATE_METADATA)


def _allocated_in_status(entry: Entry) -> bool:
    status = entry.status
    return isinstance(status, dict) and bool(status.get("addresses"))


@analyzer(
    "serviceentry.Analyzer",
    "Checks the validity of ServiceEntry",
    inputs=(SERVICE_ENTRY, MESH_CONFIG),
    aliases=("serviceentry.ProtocolAddressesAnalyzer",),
)
def protocol_addresses(snap: Snapshot) -> Iterator[Message]:
    auto = _auto_allocated_by_proxy(snap)
    for entry in snap.each(SERVICE_ENTRY):
        se = entry.spec
        if se.addresses or auto or _allocated_in_status(entry):
            continue
        for i, port in enumerate(se.ports or []):
            protocol = str(port.protocol) if port.protocol is not None else ""
            if protocol == "" or protocol.upper() == "TCP":
                yield new_message("ServiceEntryAddressesRequired", entry, path=("spec", "ports", i, "name"))


def _scopes(entry: Entry) -> set[str]:
    export_to = entry.spec.export_to
    if is_export_to_all(export_to):
        return {EXPORT_ALL}
    return {entry.namespace if e == EXPORT_LOCAL else e for e in export_to or []}


@analyzer(
    "serviceentry.ConflictingServiceEntryProtocolAnalyzer",
    "Checks if multiple ServiceEntries define the same host and port with different protocols",
    inputs=(SERVICE_ENTRY,),
)
def conflicting_protocols(snap: Snapshot) -> Iterator[Message]:
    index: dict[tuple[str, str, int], list[tuple[str, Entry]]] = defaultdict(list)
    for entry in snap.each(SERVICE_ENTRY):
        se = entry.spec
        for scope in sorted(_scopes(entry)):
            for host in se.hosts or []:
                for port in se.ports or []:
                    protocol = str(port.protocol) if port.protocol is not None else ""
                    index[(scope, host, port.number)].append((protocol, entry))
    reported: set[str] = set()
    for (scope, host, number), entries in index.items():
        if scope != EXPORT_ALL:
            entries = entries + index.get((EXPORT_ALL, host, number), [])
        protocols = sorted({p.upper() for p, _ in entries})
        if len(protocols) < 2:
            continue
        names = ", ".join(sorted({e.full_name for _, e in entries}))
        for _, e in entries:
            if e.full_name in reported:
                continue
            reported.add(e.full_name)
            yield new_message("ConflictingServiceEntryProtocol", e, names, host, number, ", ".join(protocols))


ANALYZERS = [protocol_addresses, conflicting_protocols]
