"""DeprecationAnalyzer: deprecated fields in use.

Ported from istio/istio pkg/config/analysis/analyzers/deprecation (the field checks; Istio's
removed CRD kinds never load here, so they cannot be in use).
"""

from __future__ import annotations

from collections.abc import Iterator

from .context import CUSTOM_RESOURCE_DEFINITION, SIDECAR, VIRTUAL_SERVICE, Snapshot
from .framework import Message, analyzer, new_message


def replaced(deprecated: str, replacement: str) -> str:
    return f"{deprecated} is deprecated; use {replacement}"


def ignored(field: str) -> str:
    return f"{field} ignored"


@analyzer("deprecation.DeprecationAnalyzer", "Checks for deprecated Istio types and fields", 
           inputs=(VIRTUAL_SERVICE, SIDECAR, CUSTOM_RESOURCE_DEFINITION), aliases=("deprecation.FieldAnalyzer",))
def deprecated_fields(snap: Snapshot) -> Iterator[Message]:
    for entry in snap.each(VIRTUAL_SERVICE):
        for i, http in enumerate(entry.spec.http or []):
            delay = http.fault.delay if http.fault is not None else None
            if delay is not None and (delay.percent or 0) > 0:
                yield new_message("Deprecated", entry, replaced("HTTPRoute.fault.delay.percent", "HTTPRoute.fault.delay.percentage"),
                                  path=("spec", "http", i, "fault", "delay", "percent"))
    for entry in snap.each(SIDECAR):
        policy = getattr(entry.spec, "outbound_traffic_policy", None)
        if policy is not None and getattr(policy, "egress_proxy", None) is not None:
            yield new_message("Deprecated", entry, ignored("OutboundTrafficPolicy.EgressProxy"),
                              path=("spec", "outboundTrafficPolicy", "egressProxy"))


ANALYZERS = [deprecated_fields]
