"""Messages shared by several Istio kinds (istio.io/api type and common packages)."""

from __future__ import annotations

from ..base import IstioModel


class PortSelector(IstioModel):
    """istio.networking.v1.PortSelector: a port by number."""

    number: int | None = None


class WorkloadSelector(IstioModel):
    """istio.type.v1beta1.WorkloadSelector (and networking's WorkloadSelector)."""

    match_labels: dict[str, str] | None = None


class PolicyTargetReference(IstioModel):
    """istio.type.v1beta1.PolicyTargetReference: a Gateway API style reference."""

    group: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
