"""Envoy's overload manager and downstream connection limits, at run time.

Resource monitors are sampled by one loop timer every ``refresh_interval`` (Envoy's first sample
comes one interval after start); each sample feeds the triggers of the actions that name the
monitor, and an action's state is the largest of its triggers' (0 inactive, 1 saturated, between:
a scaled trigger's share). Nothing runs per request until an action that sheds requests is
active: the server then sets ``RequestShed`` on each connection manager (``HcmConfig.overload``,
None otherwise), the one attribute read before a stream begins (downstream.py).

Connections: ``ConnectionGate`` is one per process, shared by every listener's ConnectionSet
when a connection limit or ``reject_incoming_connections`` is configured. A new connection asks
it once (``admit``) and is closed at once when refused, as Envoy's listeners do.
"""

from __future__ import annotations

import gc
import logging
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("pilotfish.proxy")

STOP_ACCEPTING_REQUESTS = "envoy.overload_actions.stop_accepting_requests"
DISABLE_HTTP_KEEPALIVE = "envoy.overload_actions.disable_http_keepalive"
REJECT_INCOMING_CONNECTIONS = "envoy.overload_actions.reject_incoming_connections"
SHRINK_HEAP = "envoy.overload_actions.shrink_heap"
FIXED_HEAP = "envoy.resource_monitors.fixed_heap"
GLOBAL_CONNECTIONS = "envoy.resource_monitors.global_downstream_max_connections"

SHRINK_INTERVAL = 10.0  # Envoy's HeapShrinker timer (seconds)


def resident_bytes() -> int:
    """The process's resident set (``/proc/self/statm``): Python has no tcmalloc heap stats."""
    with open("/proc/self/statm") as f:
        resident = int(f.read().split()[1])
    return resident * os.sysconf("SC_PAGE_SIZE")


# ---- triggers and actions ------------------------------------------------------------------
class Trigger:
    """Envoy's ThresholdTrigger (``scaling`` None: saturated at ``threshold``) or ScaledTrigger
    (0 at or below ``scaling``, 1 at or above ``threshold``, linear between)."""

    __slots__ = ("threshold", "scaling", "state")

    def __init__(self, threshold: float, scaling: float | None = None) -> None:
        self.threshold = threshold
        self.scaling = scaling
        self.state = 0.0

    def update(self, pressure: float) -> bool:
        """Take a new pressure; True when the trigger's state changed."""
        old = self.state
        if self.scaling is None:
            self.state = 1.0 if pressure >= self.threshold else 0.0
        elif pressure <= self.scaling:
            self.state = 0.0
        elif pressure >= self.threshold:
            self.state = 1.0
        else:
            self.state = (pressure - self.scaling) / (self.threshold - self.scaling)
        return self.state != old


class ActionStats:
    """``overload.<action>.active`` and ``.scale_percent`` (gauges), plus ``shrink_count`` for
    shrink_heap."""

    __slots__ = ("active", "scale_percent", "shrink_count", "counts_shrinks")

    def __init__(self, counts_shrinks: bool = False) -> None:
        self.active = 0
        self.scale_percent = 0
        self.shrink_count = 0
        self.counts_shrinks = counts_shrinks

    def values(self) -> Iterator[tuple[str, int, bool]]:
        if self.counts_shrinks:
            yield "shrink_count", self.shrink_count, True
        yield "active", self.active, False
        yield "scale_percent", self.scale_percent, False


class Action:
    __slots__ = ("name", "triggers", "state", "stats")

    def __init__(self, name: str, triggers: dict[str, Trigger]) -> None:
        self.name = name
        self.triggers = triggers
        self.state = 0.0
        self.stats = ActionStats(name == SHRINK_HEAP)

    def update(self, monitor: str, pressure: float) -> bool:
        """Envoy's OverloadAction::updateResourcePressure: the gauges show the trigger that just
        changed, the state is the largest over all triggers. True when the state changed."""
        trigger = self.triggers[monitor]
        if not trigger.update(pressure):
            return False
        self.stats.active = 1 if trigger.state >= 1.0 else 0
        self.stats.scale_percent = int(trigger.state * 100)
        old = self.state
        self.state = max(t.state for t in self.triggers.values())
        return self.state != old


# ---- monitors -------------------------------------------------------------------------------
class MonitorStats:
    """``overload.<monitor>.pressure`` (percent), ``failed_updates``, ``skipped_updates``."""

    __slots__ = ("pressure", "failed_updates", "skipped_updates")

    def __init__(self) -> None:
        self.pressure = 0
        self.failed_updates = 0
        self.skipped_updates = 0  # updates are synchronous here: never counted

    def values(self) -> Iterator[tuple[str, int, bool]]:
        yield "failed_updates", self.failed_updates, True
        yield "skipped_updates", self.skipped_updates, True
        yield "pressure", self.pressure, False


class Monitor:
    """A resource whose pressure ``read`` returns (an exception counts a failed update)."""

    __slots__ = ("name", "read", "stats")

    def __init__(self, name: str, read: Callable[[], float]) -> None:
        self.name = name
        self.read = read
        self.stats = MonitorStats()


def fixed_heap(max_bytes: int, reader: Callable[[], int] = resident_bytes) -> Callable[[], float]:
    """Envoy's fixed_heap monitor: memory in use / ``max_heap_size_bytes`` (here the resident set)."""
    return lambda: reader() / max_bytes


# ---- what connections and requests read ---------------------------------------------------
@dataclass(frozen=True, slots=True)
class RequestShed:
    """The request-level actions' states while one is not 0 (``HcmConfig.overload``)."""

    stop_requests: float = 0.0
    disable_keepalive: float = 0.0


def shed_request(stream: Any, shed: RequestShed) -> bool:
    """A new stream while a request-level action is active: True when it was answered 503
    (Envoy's ``envoy overloaded``, details ``overload_manager``, ``downstream_rq_overload_close``);
    else keep-alive may be disabled for its response (``downstream_cx_overload_disable_keepalive``)."""
    rng = stream.conn.rng
    p = shed.stop_requests
    if p and (p >= 1.0 or rng.random() < p):
        stream.hcm.stats.downstream_rq_overload_close += 1
        stream.details = "overload_manager"  # %RESPONSE_CODE_DETAILS% (an overloaded proxy's streams only)
        stream.local_reply(503, b"envoy overloaded", details="overload_manager")
        return True
    p = shed.disable_keepalive
    if p and (p >= 1.0 or rng.random() < p) and stream.head.keep_alive and not stream.conn.closing:
        stream.hcm.stats.downstream_cx_overload_disable_keepalive += 1
        stream.close_after = True
    return False


class ConnectionGate:
    """Admission of new downstream connections, shared by every listener of the process.

    ``active`` counts the open connections of every listener; ``global_max`` (None: none; 0 refuses
    every connection, as Envoy's) is
    ``overload.global_downstream_max_connections`` or the global_downstream_max_connections
    monitor's limit; ``reject`` is reject_incoming_connections' state."""

    __slots__ = ("active", "global_max", "reject", "rng")

    def __init__(self, global_max: int | None = None, rng: random.Random | None = None) -> None:
        self.active = 0
        self.global_max = global_max
        self.reject = 0.0
        self.rng = rng or random.Random()

    def admit(self, conns: Any, lstats: Any) -> bool:
        """Envoy's order: the global limit (unless the listener ignores it), the overload
        action (unless it bypasses the overload manager), then the listener's own limit."""
        if self.global_max is not None and not conns.ignore_global and self.active >= self.global_max:
            lstats.downstream_global_cx_overflow += 1
            return False
        reject = self.reject
        if reject and not conns.bypass_overload and (reject >= 1.0 or self.rng.random() < reject):
            lstats.downstream_cx_overload_reject += 1
            return False
        limit = conns.limit
        if limit is not None and len(conns.connections) >= limit:
            lstats.downstream_cx_overflow += 1
            return False
        self.active += 1
        return True

    def pressure(self) -> float:
        if self.global_max is None:
            return 0.0
        return self.active / self.global_max if self.global_max else 1.0


# ---- the manager --------------------------------------------------------------------------
class OverloadManager:
    """Samples the monitors on a timer and publishes the actions' states: ``on_requests`` gets
    the RequestShed (or None) when a request-level action changes; the gate's ``reject`` follows
    reject_incoming_connections; shrink_heap runs every SHRINK_INTERVAL while saturated."""

    def __init__(self, refresh_interval: float, monitors: list[Monitor], actions: list[Action],
                 gate: ConnectionGate | None = None,
                 on_requests: Callable[[RequestShed | None], None] | None = None) -> None:
        self.refresh_interval = refresh_interval
        self.monitors = monitors
        self.actions = {a.name: a for a in actions}
        self.gate = gate
        self.on_requests = on_requests
        self.shed: RequestShed | None = None
        self._by_monitor: dict[str, list[Action]] = {}
        for a in actions:
            for m in a.triggers:
                self._by_monitor.setdefault(m, []).append(a)
        self._timer: Any = None
        self._shrink_timer: Any = None
        self._loop: Any = None

    def scopes(self) -> Iterator[tuple[str, Any]]:
        """(prefix, scope) for the stats store: ``overload.<name>``."""
        for m in self.monitors:
            yield f"overload.{m.name}", m.stats
        for a in self.actions.values():
            yield f"overload.{a.name}", a.stats

    def start(self, loop: Any) -> None:
        self._loop = loop
        if self.monitors:
            self._timer = loop.call_later(self.refresh_interval, self._tick)
        if SHRINK_HEAP in self.actions:
            self._shrink_timer = loop.call_later(SHRINK_INTERVAL, self._shrink_tick)

    def stop(self) -> None:
        for t in (self._timer, self._shrink_timer):
            if t is not None:
                t.cancel()
        self._timer = self._shrink_timer = None

    def _tick(self) -> None:
        self.refresh()
        self._timer = self._loop.call_later(self.refresh_interval, self._tick)

    def refresh(self) -> None:
        """Sample every monitor once and apply what changed."""
        changed = False
        for m in self.monitors:
            try:
                pressure = float(m.read())
            except (OSError, ValueError, ZeroDivisionError) as exc:
                m.stats.failed_updates += 1
                log.info("failed to update resource %s: %s", m.name, exc)
                continue
            m.stats.pressure = int(pressure * 100)
            for action in self._by_monitor.get(m.name, ()):
                if action.update(m.name, pressure):
                    changed = True
                    log.info("overload action %s became %s", action.name,
                             "saturated" if action.state >= 1.0 else
                             ("scaling" if action.state > 0 else "inactive"))
        if changed:
            self._publish()

    def state(self, action: str) -> float:
        a = self.actions.get(action)
        return a.state if a is not None else 0.0

    def _publish(self) -> None:
        stop, keepalive = self.state(STOP_ACCEPTING_REQUESTS), self.state(DISABLE_HTTP_KEEPALIVE)
        shed = RequestShed(stop, keepalive) if stop or keepalive else None
        if shed != self.shed:
            self.shed = shed
            if self.on_requests is not None:
                self.on_requests(shed)
        if self.gate is not None:
            self.gate.reject = self.state(REJECT_INCOMING_CONNECTIONS)

    def _shrink_tick(self) -> None:
        if self.state(SHRINK_HEAP) >= 1.0:
            shrink_heap()
            self.actions[SHRINK_HEAP].stats.shrink_count += 1
        self._shrink_timer = self._loop.call_later(SHRINK_INTERVAL, self._shrink_tick)


_libc: Any = None


def shrink_heap() -> None:
    """Envoy's releaseFreeMemory, for CPython: collect unreachable cycles, then give the C heap's
    free pages back to the system (glibc ``malloc_trim``; skipped where there is none)."""
    global _libc
    gc.collect()
    if _libc is None:
        try:
            import ctypes  # only where shrink_heap fires: ctypes costs ~0.5 MB resident
            import ctypes.util

            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.malloc_trim(0)
