"""Istio's webhook validation as one table: kind → validator, and ``validate`` that looks it up.

The table imports each kind's module explicitly and nothing imports this module back except
the package's public face (``pilotfish.config.validation.validate``), so the per-kind modules
stay below it. Each validator appends Istio's error and warning texts to a Verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .. import kinds
from ..base import Resource
from ..errors import Verdict
from .destinationrule import validate_destination_rule
from .envoyfilter import validate_envoy_filter
from .extensions import validate_traffic_extension, validate_wasm_plugin
from .gateway import validate_gateway
from .proxyconfig import validate_proxy_config
from .security import validate_authorization_policy, validate_peer_authentication, validate_request_authentication
from .serviceentry import validate_service_entry
from .sidecar import validate_sidecar
from .telemetry import validate_telemetry
from .virtualservice import validate_virtual_service
from .workload import validate_workload_entry_resource, validate_workload_group

Validator = Callable[[Resource], Verdict]

VALIDATORS: Mapping[str, Validator] = {
    "VirtualService": validate_virtual_service,
    "DestinationRule": validate_destination_rule,
    "Gateway": validate_gateway,
    "ServiceEntry": validate_service_entry,
    "Sidecar": validate_sidecar,
    "WorkloadEntry": validate_workload_entry_resource,
    "WorkloadGroup": validate_workload_group,
    "ProxyConfig": validate_proxy_config,
    "EnvoyFilter": validate_envoy_filter,
    "AuthorizationPolicy": validate_authorization_policy,
    "PeerAuthentication": validate_peer_authentication,
    "RequestAuthentication": validate_request_authentication,
    "Telemetry": validate_telemetry,
    "WasmPlugin": validate_wasm_plugin,
    "TrafficExtension": validate_traffic_extension,
}


def validate(resource: Resource) -> Verdict:
    """Istio's verdict on one resource; Kubernetes built-ins are valid once they parse."""
    info = kinds.lookup(resource.api_version, resource.kind)
    if info is None or not info.istio:
        return Verdict()
    fn = VALIDATORS.get(resource.kind)
    if fn is None:
        return Verdict()
    return fn(resource)
