"""Compile Istio's ``istio.metadata_exchange`` and ``istio.stats`` HTTP filters of a listener.

The reporter follows istio/proxy: ``SERVER_GATEWAY`` in the plugin config makes a waypoint;
otherwise an INBOUND listener (``traffic_direction``) reports as ``destination`` and every other
listener as ``source``. Workload labels of this proxy come from the bootstrap's node metadata.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from .istio_config import PEER_METADATA_TYPE, STATS_TYPE, TYPED_STRUCT_TYPES, unpack_typed_struct
from ..common.istio_metrics import DESTINATION, METRICS, SOURCE, WAYPOINT, IstioMetrics, IstioStatsRecorder, own_workload
from ..filters.peer_metadata import PeerExchange

_INBOUND = 1  # envoy.config.core.v3.TrafficDirection


def node_metadata(node: Any) -> dict[str, Any]:
    if node is None or not node.HasField("metadata"):
        return {}
    return json_format.MessageToDict(node.metadata)


def istio_configs(hcm_msg: Any, path: str) -> dict[str, Any]:
    """The Istio filter configs of an HttpConnectionManager, by type name."""
    found: dict[str, Any] = {}
    for i, f in enumerate(hcm_msg.http_filters):
        tc = f.typed_config
        type_name = tc.type_url.rsplit("/", 1)[-1]
        if type_name in TYPED_STRUCT_TYPES:
            type_name, msg = unpack_typed_struct(tc, f"{path}.http_filters[{i}].typed_config")
        elif type_name in (STATS_TYPE, PEER_METADATA_TYPE):
            from .istio_config import message_class

            msg = message_class(type_name)()
            tc.Unpack(msg)
        else:
            continue
        if type_name in (STATS_TYPE, PEER_METADATA_TYPE):
            found[type_name] = msg
    return found


def compile_istio_filters(hcm_msg: Any, listener_msg: Any, path: str, stats: Any) -> tuple[PeerExchange | None,
                                                                                          IstioStatsRecorder | None]:
    configs = istio_configs(hcm_msg, path)
    if not configs:
        return None, None
    metadata = node_metadata(getattr(stats, "node", None))
    own = own_workload(metadata)
    node_id = stats.node.id if getattr(stats, "node", None) is not None else ""
    exchange = None
    mx = configs.get(PEER_METADATA_TYPE)
    if mx is not None:
        def has_headers(methods: Any) -> bool:
            return any(m.WhichOneof("method_specifier") == "istio_headers" for m in methods)

        skip = any(m.istio_headers.skip_external_clusters for m in mx.upstream_propagation
                   if m.WhichOneof("method_specifier") == "istio_headers")
        exchange = PeerExchange(own, node_id, downstream_discovery=has_headers(mx.downstream_discovery),
                                upstream_discovery=has_headers(mx.upstream_discovery),
                                downstream_propagation=has_headers(mx.downstream_propagation),
                                upstream_propagation=has_headers(mx.upstream_propagation),
                                skip_passthrough=skip)
    recorder = None
    plugin = configs.get(STATS_TYPE)
    if plugin is not None:
        if plugin.reporter == 1:
            reporter = WAYPOINT
        elif listener_msg is not None and listener_msg.traffic_direction == _INBOUND:
            reporter = DESTINATION
        else:
            reporter = SOURCE
        if getattr(stats, "istio", None) is None:
            version = metadata.get("ISTIO_VERSION")
            stats.istio = IstioMetrics(version if isinstance(version, str) else "")
        registry: IstioMetrics = stats.istio
        for mc in plugin.metrics:
            names = [mc.name] if mc.name else list(METRICS)
            if mc.drop:
                registry.dropped.update(n for n in names if n in METRICS)
                continue
            for n in names:
                registry.removed_labels.setdefault(n if mc.name else "", set()).update(mc.tags_to_remove)
        key = (listener_msg.name if listener_msg is not None else "", path)
        recorder = registry.recorder(key, own, reporter, plugin.disable_host_header_fallback)
    return exchange, recorder
