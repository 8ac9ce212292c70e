"""Compile Istio's ``istio.metadata_exchange`` and ``istio.stats`` HTTP filters (http_filters.py
composes the chain).

The reporter follows istio/proxy: ``SERVER_GATEWAY`` in the plugin config makes a waypoint;
otherwise an INBOUND listener (``traffic_direction``) reports as ``destination`` and every other
listener as ``source``. Workload labels of this proxy come from the bootstrap's node metadata.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from ..common.istio_metrics import DESTINATION, METRICS, SOURCE, WAYPOINT, IstioMetrics, IstioStatsRecorder, own_workload
from ..filters.peer_metadata import PeerExchange

_INBOUND = 1  # envoy.config.core.v3.TrafficDirection


def node_metadata(node: Any) -> dict[str, Any]:
    if node is None or not node.HasField("metadata"):
        return {}
    return json_format.MessageToDict(node.metadata)


def compile_metadata_exchange(mx: Any, stats: Any) -> PeerExchange:
    """``istio.metadata_exchange`` (io.istio.http.peer_metadata.Config) → PeerExchange."""
    own = own_workload(node_metadata(getattr(stats, "node", None)))
    node_id = stats.node.id if getattr(stats, "node", None) is not None else ""

    def has_headers(methods: Any) -> bool:
        return any(m.WhichOneof("method_specifier") == "istio_headers" for m in methods)

    skip = any(m.istio_headers.skip_external_clusters for m in mx.upstream_propagation
               if m.WhichOneof("method_specifier") == "istio_headers")
    return PeerExchange(own, node_id, downstream_discovery=has_headers(mx.downstream_discovery),
                        upstream_discovery=has_headers(mx.upstream_discovery),
                        downstream_propagation=has_headers(mx.downstream_propagation),
                        upstream_propagation=has_headers(mx.upstream_propagation),
                        skip_passthrough=skip)


def compile_istio_stats(plugin: Any, listener_msg: Any, path: str, stats: Any) -> IstioStatsRecorder:
    """``istio.stats`` (stats.PluginConfig) → this listener's recorder into the process's
    IstioMetrics (made with the first one)."""
    metadata = node_metadata(getattr(stats, "node", None))
    own = own_workload(metadata)
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
    return registry.recorder(key, own, reporter, plugin.disable_host_header_fallback)
