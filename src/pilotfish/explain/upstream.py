"""A cluster a request is sent to: what Istio's name says of it (service, port, subset), its
kind, and its endpoints as the proxy compiles them (EDS or inline), with the ones it may use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..pilot import naming
from ..proxy.common.errors import ProxyConfigError
from ..proxy.compile.clusters import compile_load_assignment
from ..proxy.upstream.cluster import EDS, STATIC
from ..proxy.upstream.host_set import EDS_STATUS_DRAINING, FAILED_EDS_HEALTH, HEALTH_NAMES, eds_flags
from .snapshot import ProxySnapshot

_ORIGINAL_DST = 4


@dataclass
class ClusterView:
    name: str
    exists: bool
    info: dict[str, Any] = field(default_factory=dict)
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    passthrough: bool = False
    blackhole: bool = False
    error: str = ""

    @property
    def usable(self) -> int:
        return sum(1 for e in self.endpoints if e["usable"])


def view_cluster(snap: ProxySnapshot, name: str) -> ClusterView:
    msg = snap.clusters.get(name)
    info: dict[str, Any] = {"name": name}
    parsed = naming.parse_cluster_name(name)
    if parsed is not None:
        direction, port, subset, host = parsed
        info.update(direction=direction, port=port, subset=subset, host=host)
    if msg is None:
        return ClusterView(name, False, info)
    kind = msg.DiscoveryType.Name(msg.type) if msg.WhichOneof("cluster_discovery_type") == "type" else "CUSTOM"
    if msg.HasField("eds_cluster_config"):
        kind = "EDS"
    info["type"] = kind
    view = ClusterView(name, True, info)
    if msg.type == _ORIGINAL_DST or name == naming.PASSTHROUGH_CLUSTER:
        view.passthrough = True
        return view
    if name == naming.BLACKHOLE_CLUSTER:
        view.blackhole = True
        return view
    cla = snap.load_assignment(msg)
    if cla is None:
        return view
    try:
        assignment = compile_load_assignment(cla, f"ClusterLoadAssignment[{name}]", EDS if kind == "EDS" else STATIC)
    except ProxyConfigError as exc:
        view.error = f"pilotfish proxy refuses the endpoints of {name}: {exc}"
        return view
    for loc in assignment.localities:
        locality = "/".join(p for p in loc.locality if p)
        for e in loc.endpoints:
            flags = eds_flags(e.health)
            view.endpoints.append({
                "address": e.address, "port": e.port, "health": HEALTH_NAMES.get(e.health, str(e.health)),
                "weight": e.weight, "locality": locality, "priority": loc.priority,
                "usable": not flags & (FAILED_EDS_HEALTH | EDS_STATUS_DRAINING)})
    return view
