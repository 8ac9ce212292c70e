"""EnvoyFilter validation (Istio's ValidateEnvoyFilter) plus the CRD's CEL rules: each patch
must be complete and its match must fit what it applies to, and a patch value is parsed as
the Envoy config it names. typed_config ``@type`` URLs resolve against Istio's registry
(``envoy_filter_types``, generated from Istio's filter_types.gen.go); a resolvable type whose
descriptor xds-protos ships is checked field by field, the others (contrib, Istio's own
extensions, Envoy types newer than xds-protos) by name only.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from functools import cache
from typing import Any

from ..base import Resource
from ..errors import FieldError, FieldPath, Verdict, at
from ..models.envoyfilter import ApplyTo, EnvoyConfigObjectPatch, EnvoyFilter, Operation, PatchContext
from .attachment import crd_networking_selector_errors, crd_target_ref_errors, validate_alpha_workload_selector
from .envoy_filter_descriptors import find as compiled_descriptor
from .envoy_filter_types import CONTRIB_TYPES, ENVOY_TYPES, ISTIO_TYPES
from .metadata import metadata_errors
from .regex import re2_error

ENVOY_FILTER_WARNING = (
    "EnvoyFilter exposes internal implementation details that may change at any time. "
    "Prefer other APIs if possible, and exercise extreme caution, especially around upgrades."
)
HTTP_CONNECTION_MANAGER = "envoy.filters.network.http_connection_manager"
# Istio's xds.ReverseDeprecatedFilterNames: deprecated filter name -> canonical name.
DEPRECATED_FILTER_NAMES = {
    "envoy.buffer": "envoy.filters.http.buffer",
    "envoy.cors": "envoy.filters.http.cors",
    "envoy.csrf": "envoy.filters.http.csrf",
    "envoy.http_dynamo_filter": "envoy.filters.http.dynamo",
    "envoy.ext_authz": "envoy.filters.network.ext_authz",
    "envoy.fault": "envoy.filters.http.fault",
    "envoy.grpc_http1_bridge": "envoy.filters.http.grpc_http1_bridge",
    "envoy.grpc_json_transcoder": "envoy.filters.http.grpc_json_transcoder",
    "envoy.grpc_web": "envoy.filters.http.grpc_web",
    "envoy.gzip": "envoy.filters.http.gzip",
    "envoy.health_check": "envoy.filters.http.health_check",
    "envoy.ip_tagging": "envoy.filters.http.ip_tagging",
    "envoy.lua": "envoy.filters.http.lua",
    "envoy.rate_limit": "envoy.filters.http.ratelimit",
    "envoy.router": "envoy.filters.http.router",
    "envoy.squash": "envoy.filters.http.squash",
    "envoy.listener.http_inspector": "envoy.filters.listener.http_inspector",
    "envoy.listener.original_dst": "envoy.filters.listener.original_dst",
    "envoy.listener.original_src": "envoy.filters.listener.original_src",
    "envoy.listener.proxy_protocol": "envoy.filters.listener.proxy_protocol",
    "envoy.listener.tls_inspector": "envoy.filters.listener.tls_inspector",
    "envoy.client_ssl_auth": "envoy.filters.network.client_ssl_auth",
    "envoy.http_connection_manager": HTTP_CONNECTION_MANAGER,
    "envoy.mongo_proxy": "envoy.filters.network.mongo_proxy",
    "envoy.ratelimit": "envoy.filters.network.ratelimit",
    "envoy.redis_proxy": "envoy.filters.network.redis_proxy",
    "envoy.tcp_proxy": "envoy.filters.network.tcp_proxy",
}
# Istio's maxProxyVersionLen: longer proxyVersion patterns are not compiled, only warned about.
MAX_PROXY_VERSION_LEN = 1024
LISTENER_CLASS = {ApplyTo.LISTENER, ApplyTo.FILTER_CHAIN, ApplyTo.NETWORK_FILTER, ApplyTo.HTTP_FILTER}
ROUTE_CLASS = {ApplyTo.ROUTE_CONFIGURATION, ApplyTo.VIRTUAL_HOST, ApplyTo.HTTP_ROUTE}


def crd_envoy_filter_errors(spec: EnvoyFilter) -> list[str]:
    """The CRD's CEL rules on EnvoyFilter: selector xor targetRefs, waypoint matches, ports
    (paths from the root)."""
    errs: list[str] = []
    if spec.workload_selector is not None and spec.target_refs:
        errs.append(FieldError('spec: Invalid value: "object": only one of targetRefs or workloadSelector can be set', ("spec",)))
    errs += crd_networking_selector_errors(("spec", "workloadSelector"), spec.workload_selector)
    for i, ref in enumerate(spec.target_refs or []):
        errs += crd_target_ref_errors(("spec", "targetRefs", i), ref)
    for i, patch in enumerate(spec.config_patches or []):
        match = patch.match
        if match is None:
            continue
        path, at_match = f"spec.configPatches[{i}].match", ("spec", "configPatches", i, "match")
        if (match.context == PatchContext.WAYPOINT) != (match.waypoint is not None):
            errs.append(FieldError(f'{path}: Invalid value: "object": only support waypointMatch when context is WAYPOINT', at_match))
        port = match.waypoint.port_number if match.waypoint else None
        if port is not None and not 0 < port <= 65535:
            errs.append(FieldError(f'{path}.waypoint.portNumber: Invalid value: "integer": port must be between 1-65535',
                                   (*at_match, "waypoint", "portNumber")))
    return errs


def validate_envoy_filter(resource: Resource) -> Verdict:
    """Istio's ValidateEnvoyFilter: patches must line up applyTo, match and a parseable value."""
    errs = metadata_errors(resource)
    if errs:
        return Verdict(errors=errs)
    spec: EnvoyFilter = resource.spec
    v = Verdict(warnings=[ENVOY_FILTER_WARNING])
    selector_errs, warning = validate_alpha_workload_selector(spec.workload_selector)
    if selector_errs:
        return Verdict(errors=at(("spec", "workloadSelector", "labels"), selector_errs))
    if warning:
        v.warnings.append(FieldError(f"Envoy filter: {warning}, will be applied to all services in namespace",
                                     ("spec", "workloadSelector")))
    v.errors += crd_envoy_filter_errors(spec)
    for i, patch in enumerate(spec.config_patches or []):
        v.under(("spec", "configPatches", i), lambda one, p=patch: _validate_patch(p, one))
    return v


def _validate_patch(cp: EnvoyConfigObjectPatch, v: Verdict) -> None:
    if cp.match is not None and cp.match.context == PatchContext.WAYPOINT:
        return  # Istio does not validate waypoint patches yet (only the CRD's rules apply)
    apply_to = cp.apply_to or ApplyTo.INVALID
    operation = (cp.patch.operation if cp.patch else None) or Operation.INVALID
    if apply_to == ApplyTo.INVALID:
        v.errors.append(FieldError("Envoy filter: missing applyTo", ("applyTo",)))
        return
    if cp.patch is None:
        v.errors.append(FieldError("Envoy filter: missing patch", ("patch",)))
        return
    if operation == Operation.INVALID:
        v.errors.append(FieldError("Envoy filter: missing patch operation", ("patch", "operation")))
        return
    if operation != Operation.REMOVE and cp.patch.value is None:
        v.errors.append(FieldError("Envoy filter: missing patch value for non-remove operation", ("patch", "value")))
        return
    match = cp.match
    version = match.proxy.proxy_version if match and match.proxy else None
    at_version = ("match", "proxy", "proxyVersion")
    if version and len(version) > MAX_PROXY_VERSION_LEN:
        v.warnings.append(FieldError(
            f"Envoy filter: proxyVersion match exceeds {MAX_PROXY_VERSION_LEN} characters and will be ignored", at_version))
    elif version:
        problem = re2_error(version)
        if problem:
            v.errors.append(FieldError(f"Envoy filter: invalid regex for proxy version, [{problem}]", at_version))
            return
    if not _match_lines_up(cp, apply_to, v):
        return
    if cp.patch.value is not None:
        v.under(("patch", "value"), lambda one: _check_patch_value(apply_to, cp.patch.value, one))


def _match_lines_up(cp: EnvoyConfigObjectPatch, apply_to: ApplyTo, v: Verdict) -> bool:
    """applyTo and the match's object type agree; False when Istio stops checking this patch."""
    match = cp.match
    # A waypoint match names its own objects; the listener/route/cluster pairing does not apply.
    has_object = match is not None and any(x is not None for x in (match.listener, match.route_configuration, match.cluster))
    if not has_object:
        return True
    if apply_to in LISTENER_CLASS:
        listener = match.listener
        if listener is None:
            v.errors.append(FieldError("Envoy filter: applyTo for listener class objects cannot have non listener match", ("match",)))
            return False
        flt = listener.filter_chain.filter if listener.filter_chain else None
        if flt is None:
            return True
        at_filter: FieldPath = ("match", "listener", "filterChain", "filter")
        at_sub = (*at_filter, "subFilter")
        if apply_to in (ApplyTo.LISTENER, ApplyTo.FILTER_CHAIN):
            v.warnings.append(FieldError(f"Envoy filter: filter match has no effect when used with {apply_to}", at_filter))
        if not flt.name:
            v.errors.append(FieldError("Envoy filter: filter match has no name to match on", (*at_filter, "name")))
            return False
        if flt.sub_filter is not None:
            if apply_to != ApplyTo.HTTP_FILTER:
                v.errors.append(FieldError("Envoy filter: subfilter match can be used with applyTo HTTP_FILTER only", at_sub))
                return False
            if flt.name not in (HTTP_CONNECTION_MANAGER, "envoy.http_connection_manager"):
                v.errors.append(FieldError(f"Envoy filter: subfilter match requires filter match with {HTTP_CONNECTION_MANAGER}",
                                           (*at_filter, "name")))
                return False
            if not flt.sub_filter.name:
                v.errors.append(FieldError("Envoy filter: subfilter match has no name to match on", (*at_sub, "name")))
                return False
        for name, where in ((flt.name, at_filter), (flt.sub_filter.name if flt.sub_filter else None, at_sub)):
            if name in DEPRECATED_FILTER_NAMES:
                v.warnings.append(FieldError(f'using deprecated filter name "{name}"; use "{DEPRECATED_FILTER_NAMES[name]}" instead',
                                             (*where, "name")))
    elif apply_to in ROUTE_CLASS and match.route_configuration is None:
        v.errors.append(FieldError("Envoy filter: applyTo for http route class objects cannot have non route configuration match",
                                   ("match",)))
    elif apply_to == ApplyTo.CLUSTER and match.cluster is None:
        v.errors.append(FieldError("Envoy filter: applyTo for cluster class objects cannot have non cluster match", ("match",)))
    return True


# The Envoy message each applyTo patches (Istio's xds.BuildXDSObjectFromStruct).
PATCH_TYPES = {
    ApplyTo.CLUSTER: "envoy.config.cluster.v3.Cluster",
    ApplyTo.LISTENER: "envoy.config.listener.v3.Listener",
    ApplyTo.ROUTE_CONFIGURATION: "envoy.config.route.v3.RouteConfiguration",
    ApplyTo.FILTER_CHAIN: "envoy.config.listener.v3.FilterChain",
    ApplyTo.HTTP_FILTER: "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter",
    ApplyTo.NETWORK_FILTER: "envoy.config.listener.v3.Filter",
    ApplyTo.VIRTUAL_HOST: "envoy.config.route.v3.VirtualHost",
    ApplyTo.HTTP_ROUTE: "envoy.config.route.v3.Route",
    ApplyTo.EXTENSION_CONFIG: "envoy.config.core.v3.TypedExtensionConfig",
    ApplyTo.BOOTSTRAP: "envoy.config.bootstrap.v3.Bootstrap",
    ApplyTo.LISTENER_FILTER: "envoy.config.listener.v3.ListenerFilter",
}


def _check_patch_value(apply_to: ApplyTo, value: dict[str, Any], v: Verdict) -> None:
    """Parse the value as the Envoy message (protobuf JSON): an error if it cannot be read at all,
    a warning if only strict parsing (unknown fields) fails, as Istio does. Any ``@type`` resolves
    against Istio's registry (``envoy_filter_types``), not against whatever xds-protos ships."""
    from google.protobuf import json_format

    value = _prune_unchecked(value)
    message_class = _message_class(PATCH_TYPES[apply_to])
    resolver = _IstioTypeResolver()
    try:
        obj = json_format.ParseDict(value, message_class(), ignore_unknown_fields=True, descriptor_pool=resolver)
    except (json_format.ParseError, TypeError, ValueError) as exc:
        where = _value_field(value, str(exc), message_class.DESCRIPTOR.name)
        if resolver.unresolved is None:
            v.errors.append(FieldError(f"Envoy filter: {exc}", where))
            return
        # Istio's wording: jsonpb's error, wrapped by BuildXDSObjectFromStruct, then by the validator.
        url = next((u for u in _type_urls(value) if type_name(u) == resolver.unresolved), resolver.unresolved)
        err = f"Envoy filter: could not resolve Any message type: {url}"
        hint = " (hint: try using the v3 XDS API)" if ".v2." in err else ""
        v.errors.append(FieldError(f"referenced type unknown{hint}: {err}", where))
        return
    try:
        json_format.ParseDict(value, message_class(), descriptor_pool=resolver)
    except (json_format.ParseError, TypeError, ValueError) as exc:
        v.warnings.append(FieldError(_strict_parse_warning(exc), _value_field(value, str(exc), message_class.DESCRIPTOR.name)))
    missing = _missing_typed_config(obj)
    if missing:
        v.warnings.append(f"using deprecated types by name without typed_config; {', '.join(missing)}")


_NO_FIELD = re.compile(r'has no field named "([^"]+)"')


# protobuf-python's parse errors end with where they are: "... at Cluster.health_checks[1].timeout."
# (the message type, then the fields as written); an unknown field's, at the message holding it.
_AT = re.compile(r' at "?([^" ]+?)"?\.*$')
_STEP = re.compile(r"\.([^.\[]+)|\[([^\]]*)\]")
_FAILED_FIELD = re.compile(r"Failed to parse (\S+) field: ")


def _value_field(value: dict[str, Any], error: str, root: str) -> FieldPath:
    """The field of a patch value a parse error is about, as far as the value has it (its path
    below the value; () when the error does not say). Without the error's own location, the
    fields it says it failed to parse, down to the first list."""
    line = error.splitlines()[0] if error else ""
    location, unknown = _AT.search(line), _NO_FIELD.search(line)
    if location and location.group(1).split(".")[0].split("[")[0] == root:
        steps = [m.group(1) if m.group(1) is not None else m.group(2) for m in _STEP.finditer(location.group(1))]
        steps += [unknown.group(1)] if unknown else []
    else:
        steps = _FAILED_FIELD.findall(line)
    return _follow(value, steps) or _inside_any(value, steps)


def _follow(node: Any, steps: list[str]) -> FieldPath:
    """The longest start of ``steps`` that exists in ``node``, as a path."""
    path: list[str | int] = []
    for step in steps:
        if isinstance(node, list) and step.isdigit() and int(step) < len(node):
            path.append(int(step))
        elif isinstance(node, dict) and step in node:
            path.append(step)
        else:
            break
        node = node[path[-1]]
    return tuple(path)


def _inside_any(node: Any, steps: list[str], here: FieldPath = ()) -> FieldPath:
    """The fields of an error raised inside a typed_config, which names them from the Any's own
    message: followed from the first Any (in document order) that has them."""
    if not steps or not isinstance(node, dict | list):
        return ()
    if isinstance(node, dict) and "@type" in node and (found := _follow(node, steps)):
        return here + found
    items = enumerate(node) if isinstance(node, list) else node.items()
    for key, child in items:
        if found := _inside_any(child, steps, (*here, key)):
            return found
    return ()


def _strict_parse_warning(exc: Exception) -> str:
    """Istio's warning when only strict parsing fails: protojson's ``unknown field "name"``,
    not protobuf-python's multi-line message with its list of fields."""
    unknown = _NO_FIELD.search(str(exc))
    return f'unknown field "{unknown.group(1)}"' if unknown else f"Envoy filter: {str(exc).splitlines()[0]}"


# Go packages istiod links through go-control-plane's own imports (cncf/xds, protobuf, googleapis,
# protoc-gen-validate, OpenTelemetry; see envoy_filter_types' header): their messages resolve too.
LINKED_PACKAGES = ("google.protobuf.", "google.rpc.", "google.api.", "xds.", "udpa.", "validate.", "opentelemetry.proto.")
ISTIO_REGISTRY = ENVOY_TYPES | CONTRIB_TYPES | ISTIO_TYPES


def type_name(type_url: str) -> str:
    """The message name of a type URL, as Go's protoregistry reads it (after the last '/')."""
    return type_url.rpartition("/")[2]


def resolves(type_url: str) -> bool:
    """Whether istiod can resolve this ``@type``: Istio's registry or a package it links."""
    name = type_name(type_url)
    return name in ISTIO_REGISTRY or (name.startswith(LINKED_PACKAGES) and _descriptor(name) is not None)


def checked_structurally(type_url: str) -> bool:
    """Whether a resolvable type's fields are checked (a descriptor is at hand) or only its name."""
    return resolves(type_url) and registry_descriptor(type_name(type_url)) is not None


def registry_descriptor(name: str) -> Any:
    """The descriptor a registry type's fields are checked with: xds-protos's, else the one compiled
    in for what xds-protos lacks (contrib, Istio's own, newer Envoy files); None: by name only.
    Contrib and Istio types are never read from the process-wide pool: a descriptor another part of
    pilotfish registers there (the proxy declares a ``stats.PluginConfig``) must not decide."""
    if name in CONTRIB_TYPES or name in ISTIO_TYPES:
        return compiled_descriptor(name)
    found = _descriptor(name)
    if found is None and name in ENVOY_TYPES:
        return compiled_descriptor(name)
    return found


class _IstioTypeResolver:
    """The descriptor pool json_format resolves Any type URLs with: Istio's registry decides what
    resolves; a type checked by name only parses as Empty (its fields were pruned)."""

    __slots__ = ("unresolved",)

    def __init__(self) -> None:
        self.unresolved: str | None = None

    def FindMessageTypeByName(self, name: str) -> Any:  # noqa: N802 - the descriptor pool's API
        if not resolves(name):
            self.unresolved = self.unresolved or name
            raise KeyError(name)
        return registry_descriptor(name) or _descriptor("google.protobuf.Empty")


def _prune_unchecked(value: Any) -> Any:
    """A copy of the value whose Any objects of by-name-only types keep just their ``@type``."""
    if isinstance(value, list):
        return [_prune_unchecked(x) for x in value]
    if not isinstance(value, dict):
        return value
    url = value.get("@type")
    if isinstance(url, str) and resolves(url) and not checked_structurally(url):
        return {"@type": url}
    return {k: _prune_unchecked(x) for k, x in value.items()}


def _type_urls(value: Any) -> list[str]:
    """Every ``@type`` in a JSON value, in document order."""
    if isinstance(value, list):
        return [u for x in value for u in _type_urls(x)]
    if not isinstance(value, dict):
        return []
    own = [value["@type"]] if isinstance(value.get("@type"), str) else []
    return own + [u for x in value.values() for u in _type_urls(x)]


@cache
def _descriptor(full_name: str) -> Any:
    """The xds-protos (or protobuf) descriptor of a message, or None if Python has none."""
    from google.protobuf import descriptor_pool

    if full_name.startswith(("envoy.", "xds.", "udpa.", "validate.")):
        package = full_name
        while "." in package:
            package = package.rpartition(".")[0]
            _import_proto_package(package)
    try:
        return descriptor_pool.Default().FindMessageTypeByName(full_name)
    except KeyError:
        return None


@cache
def _import_proto_package(package: str) -> None:
    """Load every generated module of a proto package so its descriptors are in the pool."""
    try:
        pkg = importlib.import_module(package)
    except ImportError:
        return
    for info in pkgutil.iter_modules(getattr(pkg, "__path__", [])):
        if info.name.endswith("_pb2"):
            importlib.import_module(f"{package}.{info.name}")


def _message_class(full_name: str) -> Any:
    from google.protobuf import descriptor_pool, message_factory

    _import_proto_package(full_name.rpartition(".")[0])
    descriptor = descriptor_pool.Default().FindMessageTypeByName(full_name)
    return message_factory.GetMessageClass(descriptor)


def _missing_typed_config(message: Any) -> list[str]:
    """Istio's recurseMissingTypedConfig: filters configured by name alone, without typed_config."""
    out: list[str] = []
    fields = message.DESCRIPTOR.fields
    name = next((str(getattr(message, f.name)) for f in fields if f.json_name == "name"), "")
    requires = any(f.json_name == "typedConfig" for f in fields)
    has = False
    for field, value in message.ListFields():
        if field.json_name in ("typedConfig", "configDiscovery"):
            has = True
        is_message = field.type == field.TYPE_MESSAGE
        if is_message and not _is_repeated(field) and not field.message_type.GetOptions().map_entry:
            out += _missing_typed_config(value)
    if requires and not has:
        out.append(name)
    return out


def _is_repeated(field: Any) -> bool:
    repeated = getattr(field, "is_repeated", None)
    return bool(repeated) if repeated is not None else field.label == field.LABEL_REPEATED
