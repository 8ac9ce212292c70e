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
from google.protobuf import json_format, symbol_database

from .compile.service_clusters import check_service_clusters
from .errors import ProxyConfigError
from .istio_config import effective_type_name
from .support import CheckResult, check_message
from .xds.settings import ads_settings

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


def read_document(path: str | Path) -> dict[str, Any]:
    """Load YAML or JSON (JSON is YAML) into a dict."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ProxyConfigError(f"cannot read bootstrap {p}: {exc.strerror}") from exc
    try:
        doc = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
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
    """Parse a bootstrap document and check it against the supported subset."""
    for mod in _BASE_MODULES:
        importlib.import_module(mod)
    for type_name in sorted(_type_names(doc)):
        _import_type(type_name)
    msg = bootstrap_pb2.Bootstrap()
    try:
        json_format.ParseDict(doc, msg)
    except json_format.ParseError as exc:
        raise ProxyConfigError(f"invalid bootstrap: {exc}") from exc
    result = CheckResult()
    check_message(msg, "", result)
    _check_extensions(msg, result.warnings)
    ads_settings(msg)  # dynamic_resources: ADS over gRPC only, checked here at the edge
    result.warnings.extend(check_service_clusters(msg))
    return LoadedBootstrap(msg, "", result.warnings)


def _check_extensions(msg: bootstrap_pb2.Bootstrap, warnings: list[str]) -> None:
    for i, ext in enumerate(msg.bootstrap_extensions):
        path = f"bootstrap_extensions[{i}]"
        type_name = effective_type_name(ext.typed_config)
        why = _IGNORED_EXTENSIONS.get(type_name)
        if why is None:
            raise ProxyConfigError(f"bootstrap extension {type_name!r} is not supported", f"{path}.typed_config")
        warnings.append(f"{path} ({ext.name or type_name}): ignored ({why})")


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


def _import_type(type_name: str) -> None:
    """Register the descriptor of ``type_name`` by importing every module of its package."""
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
