"""The IST message catalog: code, name, level and text of every analysis message.

Codes, names, levels and templates are Istio's (pkg/config/analysis/msg/messages.yaml) so a
user can search for them and read istio.io's page for each code. Templates keep Go's verbs
(%s %v %q %d %t); ``go_format`` renders them the way Go's fmt does for the argument types
the analyzers pass (strings, ints, bools, lists of those).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class Level(enum.Enum):
    """Severity, ordered as istioctl sorts: errors first."""

    ERROR = "Error"
    WARNING = "Warning"
    INFO = "Info"

    def __str__(self) -> str:
        return self.value

    @property
    def sort_order(self) -> int:
        return {"Error": 0, "Warning": 1, "Info": 2}[self.value]


@dataclass(frozen=True)
class MessageType:
    code: str
    name: str
    level: Level
    template: str

    @property
    def documentation_url(self) -> str:
        return f"https://istio.io/latest/docs/reference/config/analysis/{self.code.lower()}/"

    def render(self, *args: Any) -> str:
        return go_format(self.template, args)


_E, _W, _I = Level.ERROR, Level.WARNING, Level.INFO

_CATALOG = [
    ("IST0001", "InternalError", _E, "Internal error: %v"),
    ("IST0002", "Deprecated", _W, "Deprecated: %s"),
    ("IST0101", "ReferencedResourceNotFound", _E, "Referenced %s not found: %q"),
    ("IST0102", "NamespaceNotInjected", _I,
     "The namespace is not enabled for Istio injection. Run 'kubectl label namespace %s istio-injection=enabled' to enable it, "
     "or 'kubectl label namespace %s istio-injection=disabled' to explicitly mark it as not needing injection."),
    ("IST0103", "PodMissingProxy", _W,
     "The pod %s is missing the Istio proxy. This can often be resolved by restarting or redeploying the workload."),
    ("IST0106", "SchemaValidationError", _E, "Schema validation error: %v"),
    ("IST0107", "MisplacedAnnotation", _W, "Misplaced annotation: %s can only be applied to %s"),
    ("IST0108", "UnknownAnnotation", _W, "Unknown annotation: %s"),
    ("IST0109", "ConflictingMeshGatewayVirtualServiceHosts", _E,
     "The VirtualServices %s associated with mesh gateway define the same host %s which can lead to undefined behavior. "
     "This can be fixed by merging the conflicting VirtualServices into a single resource."),
    ("IST0110", "ConflictingSidecarWorkloadSelectors", _E,
     "The Sidecars %v in namespace %q select the same workload pod %q, which can lead to undefined behavior."),
    ("IST0111", "MultipleSidecarsWithoutWorkloadSelectors", _E,
     "The Sidecars %v in namespace %q have no workload selector, which can lead to undefined behavior."),
    ("IST0112", "VirtualServiceDestinationPortSelectorRequired", _E,
     "This VirtualService routes to a service %q that exposes multiple ports %v. "
     "Specifying a port in the destination is required to disambiguate."),
    ("IST0116", "DeploymentAssociatedToMultipleServices", _W,
     "This deployment %s is associated with multiple services using port %d but different protocols: %v"),
    ("IST0118", "PortNameIsNotUnderNamingConvention", _I,
     "Port name %s (port: %d, targetPort: %s) doesn't follow the naming convention of Istio port."),
    ("IST0123", "NamespaceMultipleInjectionLabels", _W,
     "The namespace has more than one type of injection labels %v, which may lead to undefined behavior. "
     "Make sure only one injection label exists."),
    ("IST0125", "InvalidAnnotation", _W, "Invalid annotation %s: %s"),
    ("IST0126", "UnknownMeshNetworksServiceRegistry", _E, "Unknown service registry %s in network %s"),
    ("IST0127", "NoMatchingWorkloadsFound", _W, "No matching workloads for this resource with the following labels: %s"),
    ("IST0128", "NoServerCertificateVerificationDestinationLevel", _W,
     "DestinationRule %s in namespace %s has TLS mode set to %s but no caCertificates are set to validate server identity for host: %s"),
    ("IST0129", "NoServerCertificateVerificationPortLevel", _W,
     "DestinationRule %s in namespace %s has TLS mode set to %s but no caCertificates are set to validate server identity for host: %s at port %s"),
    ("IST0130", "VirtualServiceUnreachableRule", _W, "VirtualService rule %v not used (%s)."),
    ("IST0131", "VirtualServiceIneffectiveMatch", _I,
     "VirtualService rule %v match %v is not used (duplicate/overlapping match in rule %v)."),
    ("IST0132", "VirtualServiceHostNotFoundInGateway", _W,
     "one or more host %v defined in VirtualService %s not found in Gateway %s."),
    ("IST0133", "SchemaWarning", _W, "Schema validation warning: %v"),
    ("IST0134", "ServiceEntryAddressesRequired", _W, "ServiceEntry addresses are required for this protocol."),
    ("IST0135", "DeprecatedAnnotation", _I, "Annotation %q has been deprecated%s and may not work in future Istio versions."),
    ("IST0136", "AlphaAnnotation", _I, "Annotation %q is part of an alpha-phase feature and may be incompletely supported."),
    ("IST0137", "DeploymentConflictingPorts", _W,
     "This deployment %s is associated with multiple services %v using targetPort %q but different ports: %v."),
    ("IST0138", "GatewayDuplicateCertificate", _W,
     "Duplicate certificate in multiple gateways %v may cause 404s if clients re-use HTTP2 connections."),
    ("IST0139", "InvalidWebhook", _E, "%v"),
    ("IST0140", "IngressRouteRulesNotAffected", _W,
     "Subset in virtual service %s has no effect on ingress gateway %s requests"),
    ("IST0141", "InsufficientPermissions", _E, "Missing required permission to create resource %v (%v)"),
    ("IST0142", "UnsupportedKubernetesVersion", _E, "The Kubernetes Version %q is lower than the minimum version: %v"),
    ("IST0143", "LocalhostListener", _E,
     "Port %v is exposed in a Service but listens on localhost. It will not be exposed to other pods."),
    ("IST0144", "InvalidApplicationUID", _W, "User ID (UID) 1337 is reserved for the sidecar proxy."),
    ("IST0145", "ConflictingGateways", _E, "Conflict with gateways %s (workload selector %s, port %s, hosts %v)."),
    ("IST0146", "ImageAutoWithoutInjectionWarning", _W,
     "%s %s contains `image: auto` but does not match any Istio injection webhook selectors."),
    ("IST0147", "ImageAutoWithoutInjectionError", _E,
     "%s %s contains `image: auto` but does not match any Istio injection webhook selectors."),
    ("IST0148", "NamespaceInjectionEnabledByDefault", _I,
     "is enabled for Istio injection, as Istio is installed with enableNamespacesByDefault as true."),
    ("IST0149", "JwtClaimBasedRoutingWithoutRequestAuthN", _E,
     "The virtual service uses the JWT claim based routing (key: %s) but found no request authentication for the gateway (%s) "
     "pod (%s). The request authentication must first be applied for the gateway pods to validate the JWT token and make the "
     "claims available for routing."),
    ("IST0150", "ExternalNameServiceTypeInvalidPortName", _W,
     "Port name for ExternalName service is invalid. Proxy may prevent tcp named ports and unmatched traffic for ports serving "
     "TCP protocol from being forwarded correctly"),
    ("IST0151", "EnvoyFilterUsesRelativeOperation", _W,
     "This EnvoyFilter does not have a priority and has a relative patch operation set which can cause the EnvoyFilter not to "
     "be applied. Using the INSERT_FIRST of ADD option or setting the priority may help in ensuring the EnvoyFilter is applied "
     "correctly."),
    ("IST0152", "EnvoyFilterUsesReplaceOperationIncorrectly", _E,
     "The REPLACE operation is only valid for HTTP_FILTER and NETWORK_FILTER."),
    ("IST0153", "EnvoyFilterUsesAddOperationIncorrectly", _E,
     "The ADD operation will be ignored when applyTo is set to ROUTE_CONFIGURATION, or HTTP_ROUTE."),
    ("IST0154", "EnvoyFilterUsesRemoveOperationIncorrectly", _E,
     "The REMOVE operation will be ignored when applyTo is set to ROUTE_CONFIGURATION, or HTTP_ROUTE."),
    ("IST0155", "EnvoyFilterUsesRelativeOperationWithProxyVersion", _W,
     "This EnvoyFilter does not have a priority and has a relative patch operation (NSTERT_BEFORE/AFTER, REPLACE, MERGE, "
     "DELETE) and proxyVersion set which can cause the EnvoyFilter not to be applied during an upgrade. Using the "
     "INSERT_FIRST or ADD option or setting the priority may help in ensuring the EnvoyFilter is applied correctly."),
    ("IST0156", "UnsupportedGatewayAPIVersion", _E, "The Gateway API CRD version %v is lower than the minimum version: %v"),
    ("IST0157", "InvalidTelemetryProvider", _W, "The Telemetry %v in namespace %q with empty providers will be ignored."),
    ("IST0158", "PodsIstioProxyImageMismatchInNamespace", _W,
     "The Istio proxy images of the pods running in the namespace do not match the image defined in the injection "
     "configuration (pod names: %v). This often happens after upgrading the Istio control-plane and can be fixed by "
     "redeploying the pods."),
    ("IST0159", "ConflictingTelemetryWorkloadSelectors", _E,
     "The Telemetries %v in namespace %q select the same workload pod %q, which can lead to undefined behavior."),
    ("IST0160", "MultipleTelemetriesWithoutWorkloadSelectors", _E,
     "The Telemetries %v in namespace %q have no workload selector, which can lead to undefined behavior."),
    ("IST0161", "InvalidGatewayCredential", _E,
     "The credential referenced by the Gateway %s in namespace %s is invalid, which can cause the traffic not to work as expected."),
    ("IST0162", "GatewayPortNotDefinedOnService", _W,
     "The gateway is listening on a target port (port %d) that is not defined in the Service associated with its workload "
     "instances (Pod selector %s). If you need to access the gateway port through the gateway Service, it will not be available."),
    ("IST0163", "InvalidExternalControlPlaneConfig", _W,
     "The hostname (%s) that was provided for the webhook (%s) to reach the ingress gateway on the external control plane "
     "cluster %s. Traffic may not flow properly."),
    ("IST0164", "ExternalControlPlaneAddressIsNotAHostname", _I,
     "The address (%s) that was provided for the webhook (%s) to reach the ingress gateway on the external control plane "
     "cluster is an IP address. This is not recommended for a production environment."),
    ("IST0165", "ReferencedInternalGateway", _W,
     "Gateway reference in VirtualService %s is to an implementation-generated internal Gateway: %s."),
    ("IST0166", "IneffectiveSelector", _W, "Ineffective selector on Kubernetes Gateway %s. Use the TargetRef field instead."),
    ("IST0167", "IneffectivePolicy", _W, "The policy has no impact: %s."),
    ("IST0168", "UnknownUpgradeCompatibility", _W,
     "The configuration %q changed in release %s, but compatibility cannot be automatically detected: %s. Or, install with "
     "`--set compatibilityVersion=%s` to retain the old default."),
    ("IST0169", "UpdateIncompatibility", _W,
     "The configuration %q changed in release %s: %s. Or, install with `--set compatibilityVersion=%s` to retain the old default."),
    ("IST0170", "MultiClusterInconsistentService", _W,
     "The service %v in namespace %q is inconsistent across clusters %q, which can lead to undefined behaviors. The "
     "inconsistent behaviors are: %v."),
    ("IST0171", "NegativeConditionStatus", _W, "A condition with a negative status is present: type=%s, reason=%s, message=%s."),
    ("IST0173", "DestinationRuleSubsetNotSelectPods", _E,
     "The Subset %s defined in the DestinationRule does not select any pods. Which may lead to 503 UH (NoHealthyUpstream)."),
    ("IST0174", "UnknownDestinationRuleHost", _W,
     "The host %s defined in the DestinationRule does not match any services in the mesh."),
    ("IST0175", "JwksUriFetchUnrestricted", _W,
     "BLOCKED_CIDRS_IN_JWKS_URIS is not configured but %d RequestAuthentication resource(s) exist (%s). Consider configuring "
     "it to restrict JWKS URI fetches to trusted networks."),
    ("IST0177", "ConflictingServiceEntryProtocol", _W,
     "Multiple ServiceEntries (%s) define the same host %q and port %d with conflicting protocols (%s)."),
]

CATALOG: dict[str, MessageType] = {name: MessageType(code, name, level, tpl) for code, name, level, tpl in _CATALOG}
BY_CODE: dict[str, MessageType] = {t.code: t for t in CATALOG.values()}



def message_type(name: str) -> MessageType:
    """The catalog entry for an Istio message name (``ReferencedResourceNotFound``); KeyError if unknown."""
    return CATALOG[name]


# ---------------------------------------------------------------- Go fmt, for the verbs the templates use

_VERB = re.compile(r"%([%vsqdt])")


def _go_value(value: Any) -> str:
    """%v / %s of a value as Go prints it: lists as ``[a b]``, bools as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_go_value(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    return str(value)


def go_quote(value: Any) -> str:
    """%q: a double-quoted Go string literal (lists quote each element)."""
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_quote(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def go_format(template: str, args: Sequence[Any]) -> str:
    """Render a Go fmt template; extra or missing arguments are shown as Go shows them."""
    it = iter(args)
    missing = object()

    def repl(m: re.Match[str]) -> str:
        verb = m.group(1)
        if verb == "%":
            return "%"
        value = next(it, missing)
        if value is missing:
            return f"%!{verb}(MISSING)"
        if verb == "q":
            return go_quote(value)
        if verb == "d":
            return str(int(value)) if not isinstance(value, (list, tuple)) else _go_value(value)
        return _go_value(value)

    out = _VERB.sub(repl, template)
    rest = list(it)
    if rest:
        out += "%!(EXTRA " + ", ".join(f"{type(v).__name__}={_go_value(v)}" for v in rest) + ")"
    return out
