"""Where a proxy's configuration comes from: a running proxy (istiod's view of it, or its own
admin), or Istio YAML before anything runs (Pilot's translation for a proxy described by its
node id and labels, exactly as istiod would serve it)."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

from ..config.base import Resource
from ..config.models.kube import MeshConfig
from ..pilot.generate import generate
from ..pilot.proxy import Proxy, ProxyIdError, proxy_from_node
from ..pilot.push_context import PushContext
from ..registry.build import build_registry
from ..registry.model import Workload
from ..xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE
from .errors import ExplainError
from .listener_match import route_config_names
from .snapshot import ProxySnapshot, parse_config_dump, snapshot_of_dump

TIMEOUT = 10.0


def _get(url: str, what: str, token: str | None = None) -> bytes:
    request = urllib.request.Request(url)
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace").strip()
        raise ExplainError(f"{what} answered {exc.code}: {body}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ExplainError(f"cannot reach {what}: {getattr(exc, 'reason', exc)}") from exc


def from_istiod(base_url: str, proxy_id: str, token: str | None = None) -> ProxySnapshot:
    """What istiod sends a connected proxy now (its /debug/config_dump?proxyID=)."""
    what = f"istiod at {base_url}"
    body = _get(f"{base_url.rstrip('/')}/debug/config_dump?proxyID={urllib.parse.quote(proxy_id)}", what, token)
    node_id = proxy_id if proxy_id.count("~") == 3 else ""
    return snapshot_of_dump(parse_config_dump(body, what), what, node_id)


def from_admin(base_url: str) -> ProxySnapshot:
    """What a proxy holds now, from its admin's /config_dump (endpoints included)."""
    what = f"the proxy admin at {base_url}"
    body = _get(f"{base_url.rstrip('/')}/config_dump?include_eds", what)
    return snapshot_of_dump(parse_config_dump(body, what), what)


def proxy_of(node_id: str, labels: Mapping[str, str], interception: str | None = None) -> Proxy:
    """The Proxy istiod would make of a node announcing ``node_id`` and ``labels``."""
    metadata: dict[str, Any] = {"LABELS": dict(labels)}
    if interception:
        metadata["INTERCEPTION_MODE"] = interception
    try:
        return proxy_from_node(node_id, metadata)
    except ProxyIdError as exc:
        raise ExplainError(str(exc)) from exc


def from_config(resources: Iterable[Resource], mesh: MeshConfig, proxy: Proxy, source: str) -> ProxySnapshot:
    """Translate ``resources`` for ``proxy`` as istiod would once it connected: a sidecar's own
    workload joins the registry when no object describes its address (istiod's proxy_for)."""
    resources = tuple(resources)
    registry = build_registry(resources)
    if not proxy.is_gateway and proxy.ip and not any(w.address == proxy.ip for w in registry.workloads):
        joined = Workload(name=proxy.workload_name, namespace=proxy.namespace, address=proxy.ip,
                          labels=dict(proxy.labels), service_account=proxy.service_account,
                          locality=proxy.locality)
        registry = build_registry(resources, connected=[joined])
    push = PushContext(resources=resources, registry=registry, mesh=mesh)
    return snapshot_of_push(push, proxy, source)


def snapshot_of_push(push: PushContext, proxy: Proxy, source: str) -> ProxySnapshot:
    """Every resource Pilot generates for ``proxy``: CDS and LDS whole, the RDS and EDS names
    they refer to (what a proxy subscribes to)."""
    clusters = dict(generate(push, proxy, CLUSTER))
    listeners = dict(generate(push, proxy, LISTENER))
    routes = dict(generate(push, proxy, ROUTE, route_config_names(listeners.values())))
    eds = {c.eds_cluster_config.service_name or c.name for c in clusters.values()
           if c.HasField("eds_cluster_config") or c.type == c.EDS}
    endpoints = dict(generate(push, proxy, ENDPOINT, eds))
    addresses: dict[str, tuple[str, ...]] = {}
    for service in push.services_for(proxy):
        ips = tuple(service.addresses) or tuple(e.address for e in push.registry.endpoints_of(service))
        if ips:
            addresses.setdefault(service.hostname, ips)
    return ProxySnapshot(listeners=listeners, routes=routes, clusters=clusters, endpoints=endpoints,
                         node_id=proxy.node_id, node_metadata=dict(proxy.metadata), source=source,
                         service_addresses=addresses)
