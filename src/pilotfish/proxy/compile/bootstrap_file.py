"""Read an Envoy v3 bootstrap (YAML or JSON) into xds-protos messages and check its subset.

``load_bootstrap`` is the edge: after it, the rest of the proxy sees a ``Bootstrap`` message
whose every set field is one the proxy implements (or a warning saying it was ignored).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from envoy.config.bootstrap.v3 import bootstrap_pb2
from google.protobuf import symbol_database

from . import envoy_json, layered_runtime
from .service_clusters import check_service_clusters
from ..common.errors import ProxyConfigError
from .istio_config import effective_type_name
from .data_sources import resolve_data_sources
from .subset import CheckResult, check_message
from ...xds.errors import XdsConfigError
from ...xds.settings import ads_settings

# The modules of every type the supported subset names, so their descriptors are registered.
_BASE_MODULES = (
    "envoy.config.listener.v3.listener_pb2",
    "envoy.config.route.v3.route_pb2",
    "envoy.config.cluster.v3.cluster_pb2",
    "envoy.config.endpoint.v3.endpoint_pb2",
    "envoy.extensions.filters.network.http_connection_manager.v3.http_connection_manager_pb2",
    "envoy.extensions.filters.http.router.v3.router_pb2",
    "envoy.extensions.filters.http.buffer.v3.buffer_pb2",
    "envoy.extensions.access_loggers.file.v3.file_pb2",
    "envoy.extensions.access_loggers.stream.v3.stream_pb2",
    "envoy.extensions.upstreams.http.v3.http_protocol_options_pb2",
)

#: bootstrap_extensions that only serve features which are errors here when used, or telemetry:
#: ignored with a warning. Any other extension is a startup error.
_IGNORED_EXTENSIONS = {
    # internal listeners: an envoy_internal_address listener or endpoint is itself an error
    "envoy.extensions.bootstrap.internal_listener.v3.InternalListener":
        "only internal listeners use it, and none can be configured here",
    # Istio's workload metadata discovery (metadata_discovery): peer labels of telemetry only
    "istio.workload.BootstrapExtension": "peer metadata comes from istio_headers only",
}


@dataclass
class LoadedBootstrap:
    """The parsed bootstrap, the document it came from, and what was ignored."""

    message: bootstrap_pb2.Bootstrap
    source: str
    warnings: list[str] = field(default_factory=list)


class _EnvoyYamlLoader(yaml.SafeLoader):
    """YAML as Envoy's loader types it: an unquoted date stays a string (yaml-cpp has no
    timestamp type; PyYAML would make it a ``date`` no protobuf field takes)."""


_EnvoyYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_document(path: str | Path) -> dict[str, Any]:
    """Load YAML or JSON (JSON is YAML) into a dict."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ProxyConfigError(f"cannot read bootstrap {p}: {exc.strerror}") from exc
    try:
        doc = json.loads(text) if p.suffix == ".json" else yaml.load(text, Loader=_EnvoyYamlLoader)  # noqa: S506
    except (ValueError, yaml.YAMLError) as exc:
        raise ProxyConfigError(f"{p}: not valid YAML/JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ProxyConfigError(f"{p}: a bootstrap must be a mapping at the top level")
    return doc


def load_bootstrap(path: str | Path) -> LoadedBootstrap:
    doc = read_document(path)
    loaded = parse_bootstrap(doc)
    loaded.source = str(path)
    return loaded


def parse_bootstrap(doc: dict[str, Any]) -> LoadedBootstrap:
    """Parse a bootstrap document and check it against the supported subset.

    Every problem is found before anything is raised: parse errors (envoy_json), fields outside
    the subset (compile/subset.py) and, on the rest of the config, what compiling it refuses. The one
    ProxyConfigError raised lists them all, each with its path.
    """
    for mod in _BASE_MODULES:
        importlib.import_module(mod)
    errors: list[ProxyConfigError] = []
    for type_name in sorted(_type_names(doc)):
        try:
            import_type(type_name)
        except ProxyConfigError:
            pass  # envoy_json names the field holding the unknown @type
    msg = bootstrap_pb2.Bootstrap()
    errors.extend(envoy_json.parse(doc, msg))
    result = CheckResult(collect=True)
    check_message(msg, "", result)
    errors.extend(result.errors)
    errors.extend(resolve_data_sources(msg, ""))  # the files compile would otherwise read
    for check in (_check_extensions, _check_dynamic, _check_service_clusters, _check_runtime, _check_overload):
        try:
            check(msg, result.warnings)
        except ProxyConfigError as exc:
            errors.extend(exc.errors)
    if errors:
        errors.extend(_compile_errors(msg))
        raise ProxyConfigError.collected(_distinct(errors))
    return LoadedBootstrap(msg, "", result.warnings)


def _check_runtime(msg: bootstrap_pb2.Bootstrap, warnings: list[str]) -> None:
    found, errors = layered_runtime.check(msg)
    warnings.extend(found)
    if errors:
        raise ProxyConfigError.collected(errors)


def _check_overload(msg: bootstrap_pb2.Bootstrap, warnings: list[str]) -> None:
    """overload_manager as compile/overload.py runs it (its errors name their paths)."""
    from .overload import compile_overload

    try:
        runtime = layered_runtime.load(msg)
    except ProxyConfigError:
        runtime = layered_runtime.EMPTY  # _check_runtime reports it
    compiled = compile_overload(msg, runtime)
    if compiled is not None:
        warnings.extend(compiled.warnings)


def _check_dynamic(msg: bootstrap_pb2.Bootstrap, warnings: list[str]) -> None:
    try:
        ads_settings(msg)  # dynamic_resources: ADS over gRPC only, checked here at the edge
    except XdsConfigError as exc:
        raise ProxyConfigError(exc.message, exc.field_path) from None


def _check_service_clusters(msg: bootstrap_pb2.Bootstrap, warnings: list[str]) -> None:
    warnings.extend(check_service_clusters(msg))


def _compile_errors(msg: bootstrap_pb2.Bootstrap) -> list[ProxyConfigError]:
    """What compiling the config (as far as it parsed) refuses, to list with the other errors."""
    from . import compile_bootstrap

    try:
        compile_bootstrap(msg)
    except ProxyConfigError as exc:
        return exc.errors
    except Exception:  # noqa: BLE001 - a config already in error may trip what compiling assumes
        return []
    return []


def _distinct(errors: list[ProxyConfigError]) -> list[ProxyConfigError]:
    """One error per place: a later error at, above or below an earlier one's path is a
    consequence of it (a field left unset, a whole listener refused) and is dropped."""
    kept: list[ProxyConfigError] = []
    for err in errors:
        p = err.field_path
        if any(_related(p, k.field_path) for k in kept):
            continue
        kept.append(err)
    return kept


def _related(a: str, b: str) -> bool:
    if not a or not b:
        return a == b
    return a == b or a.startswith((b + ".", b + "[")) or b.startswith((a + ".", a + "["))


def _check_extensions(msg: bootstrap_pb2.Bootstrap, warnings: list[str]) -> None:
    errors = []
    for i, ext in enumerate(msg.bootstrap_extensions):
        path = f"bootstrap_extensions[{i}]"
        type_name = effective_type_name(ext.typed_config)
        why = _IGNORED_EXTENSIONS.get(type_name)
        if why is None:
            errors.append(ProxyConfigError(f"bootstrap extension {type_name!r} is not supported",
                                           f"{path}.typed_config"))
            continue
        warnings.append(f"{path} ({ext.name or type_name}): ignored ({why})")
    if errors:
        raise ProxyConfigError.collected(errors)


def _type_names(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [(node, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict):
            t = item.get("@type")
            if isinstance(t, str):
                found.add(t.rsplit("/", 1)[-1])
            elif "@type" in item:  # json_format would fail on it with an AttributeError
                raise ProxyConfigError("@type must be a string (a type URL)", f"{path}.@type" if path else "@type")
            stack.extend((v, f"{path}.{k}" if path else str(k)) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(item))
    return found


def import_type(type_name: str) -> None:
    """Register the descriptor of ``type_name`` by importing every module of its package
    (ProxyConfigError when no module defines it)."""
    db = symbol_database.Default()
    try:
        db.pool.FindMessageTypeByName(type_name)
        return
    except KeyError:
        pass
    package = type_name.rsplit(".", 1)[0]
    try:
        pkg = importlib.import_module(package)
    except (ImportError, TypeError, ValueError):  # TypeError/ValueError: ".a.B", "" (not a module name)
        raise ProxyConfigError(f"unknown @type {type_name!r}") from None
    for info in pkgutil.iter_modules(getattr(pkg, "__path__", [])):
        if info.name.endswith("_pb2"):
            importlib.import_module(f"{package}.{info.name}")
    try:
        db.pool.FindMessageTypeByName(type_name)
    except KeyError:
        raise ProxyConfigError(f"unknown @type {type_name!r}") from None
