"""ConditionAnalyzer: status conditions that say a resource is not working.

Ported from istio/istio pkg/config/analysis/analyzers/conditions. Only the condition types
Istio and the Gateway API set, with the status that means trouble, are reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .context import AUTHORIZATION_POLICY, GRPC_ROUTE, GVK, HTTP_ROUTE, K8S_GATEWAY, SERVICE, SERVICE_ENTRY, WORKLOAD_ENTRY, Entry, Snapshot
from .framework import Message, analyzer, new_message

_GATEWAY_API = {"Accepted": "False", "Programmed": "False", "ResolvedRefs": "False"}

NEGATIVE_CONDITIONS: dict[GVK, dict[str, str]] = {
    SERVICE: {"istio.io/WaypointBound": "False"},
    SERVICE_ENTRY: {"istio.io/WaypointBound": "False"},
    AUTHORIZATION_POLICY: {"ZtunnelAccepted": "False", "WaypointAccepted": "False"},
    K8S_GATEWAY: _GATEWAY_API,
    HTTP_ROUTE: _GATEWAY_API,
    GRPC_ROUTE: _GATEWAY_API,
}


def conditions_of(entry: Entry) -> list[dict[str, Any]]:
    """The status conditions of a resource; for routes, those of every parent."""
    status = entry.status
    if not isinstance(status, dict):
        return []
    if entry.gvk in (HTTP_ROUTE, GRPC_ROUTE):
        return [c for parent in status.get("parents") or [] if isinstance(parent, dict)
                for c in parent.get("conditions") or [] if isinstance(c, dict)]
    return [c for c in status.get("conditions") or [] if isinstance(c, dict)]


def _negative(gvk: GVK, condition: dict[str, Any]) -> bool:
    wanted = NEGATIVE_CONDITIONS[gvk].get(str(condition.get("type", "")))
    if wanted is not None and str(condition.get("status", "")) == wanted:
        return True
    # A waypoint accepts a policy it can only partly apply with status True.
    return gvk == AUTHORIZATION_POLICY and condition.get("type") == "WaypointAccepted" and condition.get("reason") == "PartiallyInvalid"


@analyzer(
    "conditions.ConditionAnalyzer",
    "Checks for negative status conditions on resources",
    inputs=(SERVICE, SERVICE_ENTRY, WORKLOAD_ENTRY, AUTHORIZATION_POLICY, K8S_GATEWAY, HTTP_ROUTE, GRPC_ROUTE),
)
def negative_conditions(snap: Snapshot) -> Iterator[Message]:
    for gvk in NEGATIVE_CONDITIONS:
        for entry in snap.each(gvk):
            for c in conditions_of(entry):
                if _negative(gvk, c):
                    yield new_message("NegativeConditionStatus", entry, c.get("type", ""), c.get("reason", ""), c.get("message", ""))


ANALYZERS = [negative_conditions]
