"""Telemetry analyzers: selectors, empty access-log providers, deprecated Lightstep tracing.

Ported from istio/istio pkg/config/analysis/analyzers/telemetry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

from .context import MESH_CONFIG, POD, TELEMETRY, Entry, Snapshot, selector_string
from .framework import Message, analyzer, new_message


def match_labels(spec: Any) -> Mapping[str, str]:
    sel = getattr(spec, "selector", None)
    return (getattr(sel, "match_labels", None) or {}) if sel is not None else {}


def _has_type_selector(spec: Any) -> bool:
    """Whether the policy targets workloads at all (a selector or a targetRef)."""
    return any(getattr(spec, f, None) for f in ("selector", "target_ref", "target_refs"))


def _sorted_names(entries: list[Entry]) -> list[str]:
    return sorted(e.name for e in entries)


@analyzer(
    "telemetry.SelectorAnalyzer",
    "Validates that telemetries that define a selector match at least one pod, and that there aren't multiple "
    "telemetry resources that select overlapping pods",
    inputs=(TELEMETRY, POD),
)
def selectors(snap: Snapshot) -> Iterator[Message]:
    pod_telemetries: dict[tuple[str, str], list[Entry]] = defaultdict(list)
    for entry in snap.each(TELEMETRY):
        labels = match_labels(entry.spec)
        if not labels:
            continue
        matched = snap.pods_matching(labels, entry.namespace)
        for pod in matched:
            pod_telemetries[(pod.namespace, pod.name)].append(entry)
        if not matched:
            yield new_message("ReferencedResourceNotFound", entry, "selector", selector_string(labels),
                              path=("spec", "selector", "matchLabels", min(labels)))
    for (ns, pod), telemetries in pod_telemetries.items():
        if len(telemetries) > 1:
            for t in telemetries:
                yield new_message("ConflictingTelemetryWorkloadSelectors", t, _sorted_names(telemetries), ns, pod)


@analyzer(
    "telemetry.DefaultSelectorAnalyzer",
    "Validates that there aren't multiple telemetry resources that have no selector",
    inputs=(TELEMETRY,),
)
def default_selectors(snap: Snapshot) -> Iterator[Message]:
    by_ns: dict[str, list[Entry]] = defaultdict(list)
    for entry in snap.each(TELEMETRY):
        if not _has_type_selector(entry.spec):
            by_ns[entry.namespace].append(entry)
    for ns, telemetries in by_ns.items():
        if len(telemetries) > 1:
            for t in telemetries:
                yield new_message("MultipleTelemetriesWithoutWorkloadSelectors", t, _sorted_names(telemetries), ns)


@analyzer(
    "telemetry.ProviderAnalyzer",
    "Validates that providers in telemery resource is valid",
    inputs=(TELEMETRY, MESH_CONFIG),
    aliases=("telemetry.ProdiverAnalyzer",),
)
def providers(snap: Snapshot) -> Iterator[Message]:
    defaults = snap.mesh_config.default_providers
    if defaults is not None and defaults.access_logging:
        return
    for entry in snap.each(TELEMETRY):
        for i, logging in enumerate(getattr(entry.spec, "access_logging", None) or []):
            if getattr(logging, "disabled", None):
                continue
            if not getattr(logging, "providers", None):
                yield new_message("InvalidTelemetryProvider", entry, entry.name, entry.namespace, path=("spec", "accessLogging", i))


@analyzer("telemetry.LightstepAnalyzer", "Validates that lightstep provider is still used", inputs=(TELEMETRY, MESH_CONFIG))
def lightstep(snap: Snapshot) -> Iterator[Message]:
    names = {p.name for p in snap.mesh_config.extension_providers if p.provider_type == "lightstep"}
    if not names:
        return
    for entry in snap.each(TELEMETRY):
        for i, tracing in enumerate(getattr(entry.spec, "tracing", None) or []):
            for j, provider in enumerate(getattr(tracing, "providers", None) or []):
                name = getattr(provider, "name", None)
                if name in names:
                    yield new_message(
                        "Deprecated", entry,
                        f"The Lightstep provider {name} is deprecated, please migrate to OpenTelemetry provider.",
                        path=("spec", "tracing", i, "providers", j, "name"),
                    )


ANALYZERS = [providers, selectors, default_selectors, lightstep]
