"""/clusters and /listeners as Envoy prints them (text and ``?format=json``).

The JSON is built as Envoy's admin protos (``envoy.admin.v3.Clusters``, ``Listeners``) and
printed with protobuf's JSON mapping and the proto field names, as Envoy's
``MessageUtil::getJsonStringFromMessage`` does: zero values are left out and 64-bit counters
are strings, so a tool's protojson parser reads it unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from google.protobuf import json_format

from ..common.histogram import fmt_value
from ..upstream.host_health import (
    ACTIVE_HC_TIMEOUT, DEGRADED_ACTIVE_HC, EXCLUDED_VIA_IMMEDIATE_HC_FAIL, FAILED_ACTIVE_HC, FAILED_OUTLIER_CHECK,
    PENDING_ACTIVE_HC, PENDING_DYNAMIC_REMOVAL,
)
from ..upstream.host_set import DEGRADED, DRAINING, HEALTHY, TIMEOUT, UNHEALTHY, Host

if TYPE_CHECKING:
    from .server import ProxyServer

#: Envoy's per-host counters and gauges (HostStats), by name.
COUNTERS = ("cx_connect_fail", "cx_total", "rq_error", "rq_success", "rq_timeout", "rq_total")
GAUGES = ("cx_active", "rq_active")


def host_stats(h: Host) -> dict[str, int]:
    return {"cx_active": h.pool.cx_active if h.pool is not None else 0, "cx_connect_fail": h.cx_connect_fail,
            "cx_total": h.cx_total, "rq_active": h.active_rq, "rq_error": h.rq_error,
            "rq_success": h.rq_success, "rq_timeout": h.rq_timeout, "rq_total": h.rq_total}


def _hosts(cluster: Any) -> list[Host]:
    """Hosts by priority, as Envoy walks hostSetsPerPriority()."""
    return [h for level in cluster.levels for h in level.hosts]


def _success_rates(cluster: Any, h: Host) -> tuple[float, float]:
    """The host's external and local-origin success rate of the last outlier interval, or -1
    (Envoy's value when the host had too few requests or there is no outlier detection)."""
    od = cluster.outlier
    m = od.monitors.get(h) if od is not None else None
    if m is None:
        return -1.0, -1.0
    out = []
    for bucket in (m.external, m.local):
        rv = bucket.rate_and_volume()
        out.append(rv[0] if rv is not None and rv[1] >= od.settings.success_rate_request_volume else -1.0)
    return out[0], out[1]


def _dynamic_names(proxy: ProxyServer) -> set[str]:
    dyn = proxy.config.dynamic
    return set(dyn.resources.clusters) if dyn is not None else set()


def clusters_text(proxy: ProxyServer) -> str:
    dynamic = _dynamic_names(proxy)
    lines = []
    for name, cluster in proxy.config.clusters.items():
        lines.append(f"{name}::observability_name::{name}")
        lines += cluster.admin_summary()  # outlier averages and circuit-breaker limits
        lines.append(f"{name}::added_via_api::{'true' if name in dynamic else 'false'}")
        if cluster.settings.eds_service_name:
            lines.append(f"{name}::eds_service_name::{cluster.settings.eds_service_name}")
        for h in _hosts(cluster):
            p = f"{name}::{h.label}"
            lines += [f"{p}::{k}::{v}" for k, v in sorted(host_stats(h).items())]
            region, zone, sub_zone = h.locality
            sr, local_sr = _success_rates(cluster, h)
            lines += [f"{p}::hostname::{h.hostname.decode()}", f"{p}::health_flags::{cluster.health_flags(h)}",
                      f"{p}::weight::{h.weight}", f"{p}::region::{region}", f"{p}::zone::{zone}",
                      f"{p}::sub_zone::{sub_zone}", f"{p}::canary::false", f"{p}::priority::{h.priority}",
                      f"{p}::success_rate::{fmt_value(sr)}", f"{p}::local_origin_success_rate::{fmt_value(local_sr)}"]
    return "\n".join(lines) + "\n"


def _address(msg: Any, address: str, port: int) -> None:
    msg.socket_address.address = address
    msg.socket_address.port_value = port


_EDS = {UNHEALTHY: UNHEALTHY, TIMEOUT: UNHEALTHY, DEGRADED: DEGRADED, DRAINING: DRAINING}


def clusters_json(proxy: ProxyServer) -> str:
    from envoy.admin.v3 import clusters_pb2, metrics_pb2
    from envoy.config.core.v3 import base_pb2

    dynamic = _dynamic_names(proxy)
    out = clusters_pb2.Clusters()
    for name, cluster in proxy.config.clusters.items():
        cs = out.cluster_statuses.add()
        cs.name = cs.observability_name = name
        if cluster.settings.eds_service_name:
            cs.eds_service_name = cluster.settings.eds_service_name
        for priority, rm in zip((base_pb2.DEFAULT, base_pb2.HIGH), cluster.resources.managers):
            t = cs.circuit_breakers.thresholds.add()
            t.priority = priority
            t.max_connections.value = rm.connections.max
            t.max_pending_requests.value = rm.pending_requests.max
            t.max_requests.value = rm.requests.max
            t.max_retries.value = rm.retries.max
        od = cluster.outlier
        if od is not None:
            from ..upstream.outlier import SUCCESS_RATE, SUCCESS_RATE_LOCAL_ORIGIN

            if od.sr_threshold[SUCCESS_RATE] > 0:
                cs.success_rate_ejection_threshold.value = od.sr_threshold[SUCCESS_RATE]
            if od.sr_threshold[SUCCESS_RATE_LOCAL_ORIGIN] > 0:
                cs.local_origin_success_rate_ejection_threshold.value = od.sr_threshold[SUCCESS_RATE_LOCAL_ORIGIN]
        cs.added_via_api = name in dynamic
        for h in _hosts(cluster):
            hs = cs.host_statuses.add()
            _address(hs.address, h.address, h.port)
            hs.hostname = h.hostname.decode()
            hs.locality.region, hs.locality.zone, hs.locality.sub_zone = h.locality
            values = host_stats(h)
            for kind, names in ((metrics_pb2.SimpleMetric.COUNTER, COUNTERS), (metrics_pb2.SimpleMetric.GAUGE, GAUGES)):
                for stat in names:
                    hs.stats.add(type=kind, value=values[stat], name=stat)
            flags = cluster.host_health.flags.get(h, 0)
            health = hs.health_status
            health.failed_active_health_check = bool(flags & FAILED_ACTIVE_HC)
            health.failed_outlier_check = bool(flags & FAILED_OUTLIER_CHECK)
            health.failed_active_degraded_check = bool(flags & DEGRADED_ACTIVE_HC)
            health.pending_dynamic_removal = bool(flags & PENDING_DYNAMIC_REMOVAL)
            health.pending_active_hc = bool(flags & PENDING_ACTIVE_HC)
            health.excluded_via_immediate_hc_fail = bool(flags & EXCLUDED_VIA_IMMEDIATE_HC_FAIL)
            health.active_hc_timeout = bool(flags & ACTIVE_HC_TIMEOUT)
            health.eds_health_status = _EDS.get(h.eds_health, HEALTHY)  # type: ignore[assignment]
            sr, local_sr = _success_rates(cluster, h)
            if sr >= 0:
                hs.success_rate.value = sr
            hs.weight = h.weight
            hs.priority = h.priority
            if local_sr >= 0:
                hs.local_origin_success_rate.value = local_sr
    return json_format.MessageToJson(out, preserving_proto_field_name=True, indent=2)


def listeners_text(proxy: ProxyServer) -> str:
    lines = [f"{lc.name}::{lc.address}:{proxy.listener_ports.get(lc.name, lc.port)}"
             for lc in proxy.config.listeners]
    return "\n".join(lines) + "\n"


def listeners_json(proxy: ProxyServer) -> str:
    """envoy.admin.v3.Listeners: each listener's name, bound address and additional addresses."""
    from envoy.admin.v3 import listeners_pb2

    out = listeners_pb2.Listeners()
    for lc in proxy.config.listeners:
        st = out.listener_statuses.add()
        st.name = lc.name
        _address(st.local_address, lc.address, proxy.listener_ports.get(lc.name, lc.port))
        for extra in getattr(lc.source, "additional_addresses", ()):
            st.additional_local_addresses.add().CopyFrom(extra.address)
    return json_format.MessageToJson(out, preserving_proto_field_name=True, indent=2)
