"""One proxy's configuration as Envoy messages (listeners, route configurations, clusters,
endpoints by name), whatever it came from: an Envoy admin ConfigDump (istiod's
/debug/config_dump, a proxy's /config_dump) or Pilot's translation run here."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format

from ..proxy.common.errors import ProxyConfigError
from ..proxy.compile.bootstrap_file import import_type
from .errors import ExplainError

_BASE_MODULES = (
    "envoy.admin.v3.config_dump_pb2",
    "envoy.admin.v3.config_dump_shared_pb2",
    "envoy.config.listener.v3.listener_pb2",
    "envoy.config.route.v3.route_pb2",
    "envoy.config.cluster.v3.cluster_pb2",
    "envoy.config.endpoint.v3.endpoint_pb2",
    "envoy.config.bootstrap.v3.bootstrap_pb2",
    "envoy.extensions.filters.network.http_connection_manager.v3.http_connection_manager_pb2",
    "envoy.extensions.filters.network.tcp_proxy.v3.tcp_proxy_pb2",
)


@dataclass
class ProxySnapshot:
    """``node_id`` and ``node_metadata`` when the source knows them (they say whether the proxy
    is a gateway and how a sidecar intercepts); ``source`` names where the config came from."""

    listeners: dict[str, Any] = field(default_factory=dict)
    routes: dict[str, Any] = field(default_factory=dict)
    clusters: dict[str, Any] = field(default_factory=dict)
    endpoints: dict[str, Any] = field(default_factory=dict)  # ClusterLoadAssignment by cluster_name
    node_id: str = ""
    node_metadata: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    # Service addresses the source knows (host → VIPs or endpoint IPs), for a default --address.
    service_addresses: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def is_gateway(self) -> bool:
        return self.node_id.startswith("router~")

    def load_assignment(self, cluster: Any) -> Any | None:
        """The cluster's endpoints: its EDS set, else its inline load_assignment."""
        if cluster.HasField("eds_cluster_config") or cluster.type == cluster.EDS:
            return self.endpoints.get(cluster.eds_cluster_config.service_name or cluster.name)
        if cluster.HasField("load_assignment"):
            return cluster.load_assignment
        return None


def _type_names(doc: Any) -> Iterator[str]:
    if isinstance(doc, dict):
        t = doc.get("@type")
        if isinstance(t, str):
            yield t.rsplit("/", 1)[-1]
        for v in doc.values():
            yield from _type_names(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _type_names(v)


def parse_config_dump(doc: Any, source: str) -> Any:
    """A JSON ConfigDump (as text or already decoded) → the ConfigDump message."""
    for mod in _BASE_MODULES:
        importlib.import_module(mod)
    if isinstance(doc, (str, bytes)):
        try:
            doc = json.loads(doc)
        except ValueError as exc:
            raise ExplainError(f"{source}: not JSON: {exc}") from exc
    for name in set(_type_names(doc)):
        try:
            import_type(name)  # (an @type in the dump)
        except ProxyConfigError:
            pass  # json_format names the unknown type
    from envoy.admin.v3 import config_dump_pb2

    dump = config_dump_pb2.ConfigDump()
    try:
        json_format.ParseDict(doc, dump, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise ExplainError(f"{source}: not an Envoy config dump: {exc}") from exc
    return dump


def snapshot_of_dump(dump: Any, source: str, node_id: str = "") -> ProxySnapshot:
    """The resources in force in a ConfigDump: static and dynamic active ones (warming ones are
    not serving yet), and the bootstrap's node."""
    from envoy.admin.v3 import config_dump_pb2, config_dump_shared_pb2 as shared

    snap = ProxySnapshot(node_id=node_id, source=source)
    for item in dump.configs:
        if item.Is(config_dump_pb2.BootstrapConfigDump.DESCRIPTOR):
            b = config_dump_pb2.BootstrapConfigDump()
            item.Unpack(b)
            node = b.bootstrap.node
            snap.node_id = snap.node_id or node.id
            if node.HasField("metadata"):
                snap.node_metadata = json_format.MessageToDict(node.metadata)
            for lst in b.bootstrap.static_resources.listeners:
                snap.listeners.setdefault(lst.name or _address_name(lst), lst)
            for c in b.bootstrap.static_resources.clusters:
                snap.clusters.setdefault(c.name, c)
        else:
            for dump_type, (field, kind, entries) in _SECTIONS.items():
                if item.Is(getattr(shared, dump_type).DESCRIPTOR):
                    section = getattr(shared, dump_type)()
                    item.Unpack(section)
                    for repeated, path in entries:
                        for entry in getattr(section, repeated):
                            _add(getattr(snap, field), _at(entry, path), kind)
    if not snap.listeners:
        raise ExplainError(f"{source}: the config dump holds no listeners")
    return snap


# A config dump section → (the snapshot's field, the resource kind, (repeated field, path to the
# packed resource in each entry)). Static and dynamic active resources; warming ones are not
# serving yet (a dynamic listener without an active state packs nothing and is skipped).
_SECTIONS = {
    "ListenersConfigDump": ("listeners", "Listener",
                            (("static_listeners", "listener"), ("dynamic_listeners", "active_state.listener"))),
    "RoutesConfigDump": ("routes", "RouteConfiguration",
                         (("static_route_configs", "route_config"), ("dynamic_route_configs", "route_config"))),
    "ClustersConfigDump": ("clusters", "Cluster",
                           (("static_clusters", "cluster"), ("dynamic_active_clusters", "cluster"))),
    "EndpointsConfigDump": ("endpoints", "ClusterLoadAssignment",
                            (("static_endpoint_configs", "endpoint_config"),
                             ("dynamic_endpoint_configs", "endpoint_config"))),
}


def _at(message: Any, path: str) -> Any:
    for part in path.split("."):
        message = getattr(message, part)
    return message


def _add(into: dict[str, Any], packed: Any, kind: str) -> None:
    from envoy.config.cluster.v3 import cluster_pb2
    from envoy.config.endpoint.v3 import endpoint_pb2
    from envoy.config.listener.v3 import listener_pb2
    from envoy.config.route.v3 import route_pb2

    cls = {"Listener": listener_pb2.Listener, "RouteConfiguration": route_pb2.RouteConfiguration,
           "Cluster": cluster_pb2.Cluster, "ClusterLoadAssignment": endpoint_pb2.ClusterLoadAssignment}[kind]
    msg = cls()
    if packed.Unpack(msg):
        name = msg.cluster_name if kind == "ClusterLoadAssignment" else msg.name
        if not name and kind == "Listener":
            name = _address_name(msg)
        into.setdefault(name, msg)


def _address_name(lst: Any) -> str:
    sa = lst.address.socket_address
    return f"{sa.address}_{sa.port_value}"
