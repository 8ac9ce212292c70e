"""The dynamic half of /config_dump, in Envoy's ConfigDump shape (versions and last_updated).

A resource whose last update was rejected carries Envoy's ``error_state`` (the rejected
configuration, its version, when and why) beside the version still in force; a listener that
was rejected before it ever existed appears with the error_state alone, as in Envoy.
"""

from __future__ import annotations

from typing import Any

from ...xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE


def add_dynamic(runtime: Any, dump: Any) -> None:
    """Add the accepted xDS resources to a ConfigDump holding the static ones."""
    if runtime.dynamic is None:
        return
    from envoy.admin.v3 import config_dump_shared_pb2 as shared

    parts = {shared.ClustersConfigDump: shared.ClustersConfigDump(),
             shared.ListenersConfigDump: shared.ListenersConfigDump(),
             shared.RoutesConfigDump: shared.RoutesConfigDump()}
    found = {}
    for item in dump.configs:
        for cls, msg in parts.items():
            if item.Is(cls.DESCRIPTOR):
                item.Unpack(msg)
                found[cls] = item
    endpoints = _fill(runtime, *parts.values())
    for cls, msg in parts.items():
        if cls in found:
            found[cls].Pack(msg)
        else:
            dump.configs.add().Pack(msg)
    dump.configs.add().Pack(endpoints)


def _fill(runtime: Any, clusters: Any, listeners: Any, routes: Any) -> Any:
    """Fill the dynamic fields of the three dumps; return the EndpointsConfigDump."""
    from envoy.admin.v3 import config_dump_shared_pb2

    dyn = runtime.dynamic

    res = dyn.resources
    errors = res.errors
    failed = errors.get(CLUSTER, {})
    clusters.version_info = res.versions.get(CLUSTER, "")
    for name, e in sorted(res.clusters.items()):
        warming = name in dyn.warming_clusters
        dc = (clusters.dynamic_warming_clusters if warming else clusters.dynamic_active_clusters).add()
        dc.version_info = e.version
        dc.cluster.Pack(e.message)
        dc.last_updated.FromNanoseconds(int(e.last_updated * 1e9))
        _error_state(dc, failed.get(name))
    failed = errors.get(LISTENER, {})
    listeners.version_info = res.versions.get(LISTENER, "")
    for name in sorted({*res.listeners, *failed}):
        dl = listeners.dynamic_listeners.add()
        dl.name = name
        _error_state(dl, failed.get(name))
        e = res.listeners.get(name)
        if e is None:
            continue
        state = dl.warming_state if name in dyn.warming_listeners else dl.active_state
        state.version_info = e.version
        state.listener.Pack(e.message)
        state.last_updated.FromNanoseconds(int(e.last_updated * 1e9))
    failed = errors.get(ROUTE, {})
    for name, e in sorted(res.routes.items()):
        dr = routes.dynamic_route_configs.add()
        dr.version_info = e.version
        dr.route_config.Pack(e.message)
        dr.last_updated.FromNanoseconds(int(e.last_updated * 1e9))
        _error_state(dr, failed.get(name))
    failed = errors.get(ENDPOINT, {})
    endpoints = config_dump_shared_pb2.EndpointsConfigDump()
    for name, e in sorted(res.endpoints.items()):
        de = endpoints.dynamic_endpoint_configs.add()
        de.version_info = e.version
        de.endpoint_config.Pack(e.message)
        de.last_updated.FromNanoseconds(int(e.last_updated * 1e9))
        _error_state(de, failed.get(name))
    return endpoints


def _error_state(dump: Any, failure: Any) -> None:
    """Envoy's UpdateFailureState of a resource whose last update was rejected."""
    if failure is None:
        return
    es = dump.error_state
    if failure.message is not None:
        es.failed_configuration.Pack(failure.message)
    es.last_update_attempt.FromNanoseconds(int(failure.at * 1e9))
    es.details = failure.details
    es.version_info = failure.version
