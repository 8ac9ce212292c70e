"""``overload_manager`` and the runtime connection limits → OverloadConfig (what the server runs).

Checked as Envoy's OverloadManagerImpl constructor checks: known monitors and actions only (an
unknown one is an error naming its path), no duplicates, every trigger naming a configured
monitor, triggers within [0, 1] and a scaled trigger's scaling below its saturation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..http import overload
from ..common.errors import ProxyConfigError
from .layered_runtime import EMPTY, Runtime
from .durations import seconds

_FIXED_HEAP_TYPE = "envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig"
_CONNECTIONS_TYPE = "envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig"
_MONITOR_TYPES = {overload.FIXED_HEAP: _FIXED_HEAP_TYPE, overload.GLOBAL_CONNECTIONS: _CONNECTIONS_TYPE}

_SUPPORTED_ACTIONS = {
    overload.STOP_ACCEPTING_REQUESTS, overload.DISABLE_HTTP_KEEPALIVE,
    overload.REJECT_INCOMING_CONNECTIONS, overload.SHRINK_HEAP,
}
#: Envoy's other well-known actions, and why they are refused here.
_REFUSED_ACTIONS = {
    "envoy.overload_actions.stop_accepting_connections":
        "the event loop cannot pause accepting on a listener; reject_incoming_connections (close new "
        "connections at once) is supported",
    "envoy.overload_actions.reduce_timeouts": "scaled timeouts are not supported",
    "envoy.overload_actions.reset_high_memory_stream": "needs buffer_factory_config's per-stream "
                                                       "memory accounting, which is not supported",
}
GLOBAL_MAX_KEY = "overload.global_downstream_max_connections"
LISTENER_LIMIT_KEY = "envoy.resource_limits.listener.{}.connection_limit"


@dataclass(frozen=True)
class MonitorSpec:
    name: str
    max_value: int  # max_heap_size_bytes or max_active_downstream_connections


@dataclass(frozen=True)
class TriggerSpec:
    monitor: str
    threshold: float  # ThresholdTrigger.value or ScaledTrigger.saturation_threshold
    scaling: float | None = None  # ScaledTrigger.scaling_threshold


@dataclass(frozen=True)
class ActionSpec:
    name: str
    triggers: tuple[TriggerSpec, ...]


@dataclass(frozen=True)
class OverloadConfig:
    refresh_interval: float = 1.0
    monitors: tuple[MonitorSpec, ...] = ()
    actions: tuple[ActionSpec, ...] = ()
    global_max_connections: int | None = None  # None: no global limit
    warnings: tuple[str, ...] = field(default=())

    @property
    def needs_gate(self) -> bool:
        """Whether new connections must be counted and admitted (ConnectionGate)."""
        return self.global_max_connections is not None or any(
            a.name == overload.REJECT_INCOMING_CONNECTIONS for a in self.actions)

    def manager(self, gate: overload.ConnectionGate | None, on_requests: Any = None,
                heap_reader: Any = overload.resident_bytes) -> overload.OverloadManager:
        """The run-time manager; ``heap_reader`` is the fixed_heap monitor's memory source."""
        monitors = []
        for m in self.monitors:
            if m.name == overload.FIXED_HEAP:
                read = overload.fixed_heap(m.max_value, heap_reader)
            else:
                read = gate.pressure if gate is not None else (lambda: 0.0)
            monitors.append(overload.Monitor(m.name, read))
        actions = [overload.Action(a.name, {t.monitor: overload.Trigger(t.threshold, t.scaling) for t in a.triggers})
                   for a in self.actions]
        return overload.OverloadManager(self.refresh_interval, monitors, actions, gate, on_requests)


def compile_overload(bootstrap: Any, runtime: Runtime = EMPTY) -> OverloadConfig | None:
    """None when neither an overload manager nor a global connection limit is configured."""
    errors: list[ProxyConfigError] = []
    warnings: list[str] = []
    runtime_max = runtime.uint_of(GLOBAL_MAX_KEY)
    if not bootstrap.HasField("overload_manager"):
        return OverloadConfig(global_max_connections=runtime_max) if runtime_max is not None else None
    om = bootstrap.overload_manager
    interval = seconds(om.refresh_interval) if om.HasField("refresh_interval") else 1.0
    if om.HasField("refresh_interval") and interval <= 0:
        errors.append(ProxyConfigError("refresh_interval must be greater than 0",
                                       "overload_manager.refresh_interval"))
    monitors: dict[str, MonitorSpec] = {}
    for i, m in enumerate(om.resource_monitors):
        path = f"overload_manager.resource_monitors[{i}]"
        try:
            spec = _monitor(m, path)
        except ProxyConfigError as exc:
            errors.extend(exc.errors)
            continue
        if spec.name in monitors:
            errors.append(ProxyConfigError(f"duplicate resource monitor {spec.name}", f"{path}.name"))
        monitors[spec.name] = spec
    actions: dict[str, ActionSpec] = {}
    for i, a in enumerate(om.actions):
        path = f"overload_manager.actions[{i}]"
        try:
            spec = _action(a, path, monitors)
        except ProxyConfigError as exc:
            errors.extend(exc.errors)
            continue
        if spec.name in actions:
            errors.append(ProxyConfigError(f"duplicate overload action {spec.name}", f"{path}.name"))
        actions[spec.name] = spec
    for i in range(len(om.loadshed_points)):
        errors.append(ProxyConfigError("overload load shed points are not supported",
                                       f"overload_manager.loadshed_points[{i}]"))
    if om.HasField("buffer_factory_config"):
        errors.append(ProxyConfigError("per-stream memory accounting is not supported",
                                       "overload_manager.buffer_factory_config"))
    if errors:
        raise ProxyConfigError.collected(errors)
    global_max = runtime_max
    conn_monitor = monitors.get(overload.GLOBAL_CONNECTIONS)
    if conn_monitor is not None:
        if runtime_max is not None:  # Envoy: "... configured via runtime key ... and in overload manager"
            warnings.append(f"layered_runtime {GLOBAL_MAX_KEY}: ignored (the "
                            f"{overload.GLOBAL_CONNECTIONS} resource monitor sets the limit)")
        global_max = conn_monitor.max_value
    return OverloadConfig(interval, tuple(monitors.values()), tuple(actions.values()), global_max,
                          tuple(warnings))


def _monitor(m: Any, path: str) -> MonitorSpec:
    expected = _MONITOR_TYPES.get(m.name)
    if expected is None:
        raise ProxyConfigError(f"resource monitor {m.name!r} is not supported (supported: "
                               f"{', '.join(sorted(_MONITOR_TYPES))})", f"{path}.name")
    if not m.HasField("typed_config"):
        raise ProxyConfigError(f"{m.name} needs a typed_config ({expected})", path)
    type_name = m.typed_config.type_url.rsplit("/", 1)[-1]
    if type_name != expected:
        raise ProxyConfigError(f"{m.name} takes a {expected}, not {type_name}", f"{path}.typed_config")
    from google.protobuf import symbol_database

    config = symbol_database.Default().GetSymbol(type_name)()
    m.typed_config.Unpack(config)
    if m.name == overload.FIXED_HEAP:
        if config.max_heap_size_bytes <= 0:
            raise ProxyConfigError("max_heap_size_bytes must be greater than 0",
                                   f"{path}.typed_config.max_heap_size_bytes")
        return MonitorSpec(m.name, config.max_heap_size_bytes)
    if config.max_active_downstream_connections <= 0:
        raise ProxyConfigError("max_active_downstream_connections must be greater than 0",
                               f"{path}.typed_config.max_active_downstream_connections")
    return MonitorSpec(m.name, config.max_active_downstream_connections)


def _action(a: Any, path: str, monitors: dict[str, MonitorSpec]) -> ActionSpec:
    errors: list[ProxyConfigError] = []
    if a.name in _REFUSED_ACTIONS:
        raise ProxyConfigError(f"overload action {a.name!r} is not supported: {_REFUSED_ACTIONS[a.name]}",
                               f"{path}.name")
    if a.name not in _SUPPORTED_ACTIONS:
        raise ProxyConfigError(f"unknown overload action {a.name!r} (supported: "
                               f"{', '.join(sorted(_SUPPORTED_ACTIONS))})", f"{path}.name")
    if a.HasField("typed_config"):  # only shrink_heap and reduce_timeouts take one in Envoy
        errors.append(ProxyConfigError(f"overload action {a.name!r} takes no typed_config", f"{path}.typed_config"))
    triggers: list[TriggerSpec] = []
    seen: set[str] = set()
    for j, t in enumerate(a.triggers):
        tpath = f"{path}.triggers[{j}]"
        if t.name not in monitors:
            errors.append(ProxyConfigError(f"unknown trigger resource {t.name} for overload action {a.name}",
                                           f"{tpath}.name"))
            continue
        if t.name in seen:
            errors.append(ProxyConfigError(f"duplicate trigger resource for overload action {a.name}",
                                           f"{tpath}.name"))
            continue
        seen.add(t.name)
        kind = t.WhichOneof("trigger_oneof")
        if kind == "threshold":
            value = t.threshold.value
            if not 0.0 <= value <= 1.0:
                errors.append(ProxyConfigError("must be within [0, 1]", f"{tpath}.threshold.value"))
            triggers.append(TriggerSpec(t.name, value))
        elif kind == "scaled":
            low, high = t.scaled.scaling_threshold, t.scaled.saturation_threshold
            for name, v in (("scaling_threshold", low), ("saturation_threshold", high)):
                if not 0.0 <= v <= 1.0:
                    errors.append(ProxyConfigError("must be within [0, 1]", f"{tpath}.scaled.{name}"))
            if low >= high:
                errors.append(ProxyConfigError("scaling_threshold must be less than saturation_threshold",
                                               f"{tpath}.scaled"))
            triggers.append(TriggerSpec(t.name, high, low))
        else:
            errors.append(ProxyConfigError(f"action not set for trigger {t.name}", tpath))
    if not a.triggers:
        errors.append(ProxyConfigError("an overload action needs at least one trigger", f"{path}.triggers"))
    if errors:
        raise ProxyConfigError.collected(errors)
    return ActionSpec(a.name, tuple(triggers))


def listener_connection_limit(name: str, runtime: Runtime) -> int | None:
    """``envoy.resource_limits.listener.<name>.connection_limit`` (None: no limit)."""
    if not name:
        return None
    return runtime.uint_of(LISTENER_LIMIT_KEY.format(name))
