"""Envoy's runtime (``layered_runtime``): key → value layers, resolved when config is compiled.

Envoy's features read some settings through runtime keys (``fault.http.abort.abort_percent``,
a route's ``runtime_fraction.runtime_key``...), so a config can switch them on there: Envoy's
fault-injection example enables its faults only through its disk layer. Here the layers are
read when the config is compiled, and each feature compiles the value it reads (no lookup per
request). Later layers override earlier ones, as in Envoy:

- ``static_layer``: a YAML tree, flattened with ``.`` (``{fault: {http: {abort: ...}}}`` is
  ``fault.http.abort...``); an object with ``numerator``/``denominator`` (or empty) is one
  FractionalPercent value.
- ``disk_layer``: the files under ``symlink_root[/subdirectory][/<node.cluster>]``, the path
  relative to it with ``/`` → ``.`` as the key, the file's text (lines starting with ``#``
  dropped, trailing whitespace trimmed) read as YAML, as the value. A directory that cannot be read is an
  empty layer, as Envoy counts a ``load_error`` and goes on. Read once at startup (xDS updates
  compile with the same values); files are not watched, unlike Envoy's symlink swap.
- ``admin_layer``: empty (there is no ``/runtime_modify`` to write it).
- ``rtds_layer``: not supported (a startup error).

Connection limits are honoured (compile/overload.py): ``overload.global_downstream_max_connections``
and ``envoy.resource_limits.listener.<listener name>.connection_limit``; other keys of those
families are startup errors.

Values parse as Envoy's ``SnapshotImpl::createEntry``: an unsigned integer where the text is
one, a FractionalPercent for the object form. ``integer`` and ``fraction`` answer as Envoy's
``getInteger`` and ``featureEnabled`` do.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from google.protobuf import json_format

from ..common.errors import ProxyConfigError

_MAX_WALK_DEPTH = 16  # Envoy's DiskLayer::MaxWalkDepth
_DENOMINATORS = {"HUNDRED": 100, "TEN_THOUSAND": 10_000, "MILLION": 1_000_000, 0: 100, 1: 10_000,
                 2: 1_000_000}

#: Key families that Envoy reads for features the proxy runs, and which are not honoured here:
#: setting one changes Envoy's traffic, so it is a startup error rather than an ignored value.
UNHONOURED_PREFIXES: dict[str, str] = {
    "circuit_breakers.": "circuit breaker thresholds from runtime",
    "outlier_detection.": "outlier detection settings from runtime",
    "health_check.": "health check settings from runtime",
    "upstream.": "upstream settings from runtime (panic threshold, retry back-off, ...)",
    "router.": "router settings from runtime",
    "http_connection_manager.": "connection manager settings from runtime",
    "envoy.resource_limits.": "resource limits from runtime (only a listener's connection_limit is honoured)",
    "overload.": "overload settings from runtime (only global_downstream_max_connections is honoured)",
}
#: Keys of those families that are honoured (compile/overload.py reads them).
_HONOURED = ("overload.global_downstream_max_connections",)
_LISTENER_LIMIT = ("envoy.resource_limits.listener.", ".connection_limit")
#: What a key of these families does, for the warning saying why it is ignored.
IGNORED_PREFIXES: dict[str, str] = {
    "envoy.reloadable_features.": "an Envoy feature flag; the proxy behaves as Envoy's default",
    "envoy.restart_features.": "an Envoy feature flag; the proxy behaves as Envoy's default",
    "envoy.deprecated_features": "allows deprecated fields; none of them is supported here",
    "re2.": "regex program size limits of config validation",
}


@dataclass(frozen=True, slots=True)
class Entry:
    raw: str
    uint: int | None = None
    fraction: tuple[int, int] | None = None  # (numerator, denominator)
    path: str = ""  # where it was set, for messages


@dataclass(frozen=True)
class Runtime:
    """The merged layers. ``rng`` is the source runtime-sampled features draw from (Envoy's
    runtime loader owns the random generator its ``featureEnabled`` uses)."""

    entries: Mapping[str, Entry] = field(default_factory=dict)
    rng: random.Random | None = None

    def integer(self, key: str, default: int) -> int:
        """Envoy's ``getInteger``: the key's unsigned integer value, else ``default``."""
        e = self.entries.get(key) if key else None
        return e.uint if e is not None and e.uint is not None else default

    def fraction(self, key: str, default: tuple[int, int]) -> tuple[int, int]:
        """Envoy's ``featureEnabled(key, FractionalPercent)``: a FractionalPercent value, an integer
        taken as a percentage (above 100: always), else ``default``. (numerator, denominator)."""
        e = self.entries.get(key) if key else None
        if e is None:
            return default
        if e.fraction is not None:
            return e.fraction
        if e.uint is not None:
            return (100, 100) if e.uint > 100 else (e.uint, 100)
        return default

    def uint_of(self, key: str) -> int | None:
        """The key's integer value; None when unset or not an unsigned integer."""
        e = self.entries.get(key) if key else None
        return e.uint if e is not None else None

    def fraction_of(self, key: str) -> tuple[int, int] | None:
        """What ``fraction`` answers when the key decides it; None when the default would."""
        e = self.entries.get(key) if key else None
        if e is None or (e.fraction is None and e.uint is None):
            return None
        return self.fraction(key, (0, 100))

    def __contains__(self, key: str) -> bool:
        return key in self.entries


EMPTY = Runtime()


def load(bootstrap: Any, rng: random.Random | None = None) -> Runtime:
    """The bootstrap's layers merged (raises ProxyConfigError for what cannot be read)."""
    if not bootstrap.HasField("layered_runtime"):
        return Runtime({}, rng)
    entries: dict[str, Entry] = {}
    names: set[str] = set()
    admin = False
    for i, layer in enumerate(bootstrap.layered_runtime.layers):
        path = f"layered_runtime.layers[{i}]"
        kind = layer.WhichOneof("layer_specifier")
        if layer.name in names:  # Envoy's LoaderImpl::initLayers checks
            raise ProxyConfigError(f"duplicate layer name {layer.name!r}", f"{path}.name")
        names.add(layer.name)
        if kind is None:
            raise ProxyConfigError("layer specifier not set", path)
        if kind == "admin_layer":
            if admin:
                raise ProxyConfigError("at most one admin layer may be specified", path)
            admin = True
        if kind == "static_layer":
            entries.update(_static_layer(json_format.MessageToDict(layer.static_layer), f"{path}.static_layer"))
        elif kind == "disk_layer":
            entries.update(_disk_layer(layer.disk_layer, bootstrap.node.cluster, f"{path}.disk_layer"))
        elif kind == "admin_layer":
            continue
        elif kind == "rtds_layer":
            raise ProxyConfigError("RTDS runtime layers are not supported (static_layer, disk_layer and "
                                   "admin_layer are)", f"{path}.rtds_layer")
    return Runtime(entries, rng)


def check(bootstrap: Any) -> tuple[list[str], list[ProxyConfigError]]:
    """Warnings for keys no supported feature reads, errors for keys that would change Envoy's
    traffic but are not honoured here (and for layers that cannot be used)."""
    warnings: list[str] = []
    errors: list[ProxyConfigError] = []
    try:
        runtime = load(bootstrap)
    except ProxyConfigError as exc:
        return warnings, exc.errors
    listeners = {lst.name for lst in bootstrap.static_resources.listeners if lst.name}
    lds = bootstrap.dynamic_resources.HasField("lds_config")
    for key, entry in sorted(runtime.entries.items()):
        where = entry.path
        if key in _HONOURED or (key.startswith(_LISTENER_LIMIT[0]) and key.endswith(_LISTENER_LIMIT[1])):
            if entry.uint is None:  # Envoy's getInteger falls back to its default: no limit
                warnings.append(f"{where}: ignored (not an unsigned integer: no limit)")
            elif key.startswith(_LISTENER_LIMIT[0]):
                name = key[len(_LISTENER_LIMIT[0]):-len(_LISTENER_LIMIT[1])]
                if name not in listeners and not lds:  # with LDS a listener of that name may come
                    warnings.append(f"{where}: ignored (names no listener of this bootstrap)")
            continue
        unhonoured = next((why for p, why in UNHONOURED_PREFIXES.items() if key.startswith(p)), None)
        if unhonoured is not None:
            errors.append(ProxyConfigError(f"runtime key {key!r} is not supported: {unhonoured}", entry.path))
            continue
        ignored = next((why for p, why in IGNORED_PREFIXES.items() if key.startswith(p)), None)
        if ignored is not None:
            warnings.append(f"{where}: ignored ({ignored})")
    return warnings, errors


def _static_layer(tree: Any, path: str) -> dict[str, Entry]:
    out: dict[str, Entry] = {}

    def walk(value: Any, prefix: str) -> None:
        if isinstance(value, dict):
            if not value or "numerator" in value or "denominator" in value:
                out[prefix] = _fraction_entry(value, prefix, f"{path}[{prefix!r}]")
                return
            for k, v in value.items():
                walk(v, f"{prefix}.{k}" if prefix else k)
            return
        if isinstance(value, list) or value is None:
            raise ProxyConfigError(f"invalid runtime entry value for {prefix!r} (a list or null)", path)
        out[prefix] = _entry(_text(value), f"{path}[{prefix!r}]")

    if isinstance(tree, dict):
        for k, v in tree.items():
            walk(v, k)
    return out


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _entry(raw: str, path: str) -> Entry:
    """Envoy's createEntry/setNumberValue: a number (a string is parsed as a double) that is not
    negative is also an unsigned integer, floored (``3.7`` → 3)."""
    try:
        number = float(raw)
    except ValueError:
        return Entry(raw, None, None, path)
    uint = int(number) if 0 <= number < 2**64 else None
    return Entry(raw, uint, None, path)


def _fraction_entry(value: dict[str, Any], key: str, path: str) -> Entry:
    try:
        numerator = int(value.get("numerator", 0))
        denominator = _DENOMINATORS[value.get("denominator", "HUNDRED")]
    except (KeyError, TypeError, ValueError):
        raise ProxyConfigError(f"runtime key {key!r}: not a FractionalPercent: {value!r}", path) from None
    return Entry(str(value), None, (numerator, denominator), path)


def _disk_layer(disk: Any, service_cluster: str, path: str) -> dict[str, Entry]:
    root = disk.symlink_root
    if disk.subdirectory:
        root = os.path.join(root, disk.subdirectory)
    if disk.append_service_cluster:
        root = os.path.join(root, service_cluster)
    out: dict[str, Entry] = {}
    _walk(root, "", 1, out, path)
    return out


def _walk(directory: str, prefix: str, depth: int, out: dict[str, Entry], path: str) -> None:
    if depth > _MAX_WALK_DEPTH:
        return
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return  # Envoy: load_error, the layer is what could be read
    for name in names:
        full = os.path.join(directory, name)
        key = f"{prefix}.{name}" if prefix else name
        if os.path.isdir(full):
            _walk(full, key, depth + 1, out, path)
            continue
        try:
            with open(full, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        lines = [line for line in text.split("\n") if not line.startswith("#")]
        value = "\n".join(lines).rstrip()
        out[key] = _file_entry(value, key, f"{path} ({full})")


def _file_entry(text: str, key: str, path: str) -> Entry:
    """A disk layer file's text is YAML to Envoy (``ValueUtil::loadFromYaml``): a number, a
    FractionalPercent object, or a string."""
    try:
        value = yaml.safe_load(text) if text else ""
    except yaml.YAMLError:
        value = text
    if isinstance(value, dict):
        try:
            return _fraction_entry(value, key, path)
        except ProxyConfigError:
            return Entry(text, None, None, path)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _entry(_text(value), path)
    return Entry(text, None, None, path)


class FractionMatch:
    """A route's ``match.runtime_fraction``, resolved: matches that share of requests. It rides
    in the route's header matchers (one more ``matches`` call only on routes that have it)."""

    __slots__ = ("numerator", "denominator", "rng")

    def __init__(self, numerator: int, denominator: int, rng: random.Random) -> None:
        self.numerator = numerator
        self.denominator = denominator
        self.rng = rng

    def matches(self, headers: object) -> bool:
        n = self.numerator
        if n <= 0:
            return False
        if n >= self.denominator:
            return True
        return self.rng.getrandbits(64) % self.denominator < n
