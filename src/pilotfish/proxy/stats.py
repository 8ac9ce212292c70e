"""Envoy-style stats as plain integer attributes: a request costs a few ``+= 1``.

Each scope (cluster, HTTP connection manager, listener) is a slotted object; names and tags
are only built when /stats or /stats/prometheus is read.
"""

from __future__ import annotations

from collections.abc import Iterator


class _Scope:
    __slots__ = ()
    COUNTERS: tuple[str, ...] = ()
    GAUGES: tuple[str, ...] = ()

    def __init__(self) -> None:
        for name in self.COUNTERS + self.GAUGES:
            setattr(self, name, 0)

    def values(self) -> Iterator[tuple[str, int, bool]]:
        """(name, value, is_counter) for every stat of the scope."""
        for name in self.COUNTERS:
            yield name, getattr(self, name), True
        for name in self.GAUGES:
            yield name, getattr(self, name), False


class ClusterStats(_Scope):
    COUNTERS = (
        "upstream_rq_total", "upstream_rq_completed", "upstream_rq_timeout",
        "upstream_rq_retry", "upstream_rq_retry_success", "upstream_rq_pending_total",
        "upstream_cx_total", "upstream_cx_connect_fail", "upstream_cx_connect_timeout",
        "upstream_cx_destroy", "upstream_cx_idle_timeout", "upstream_cx_max_requests",
        "upstream_cx_protocol_error", "upstream_rq_rx_reset", "upstream_cx_none_healthy",
        "upstream_cx_rx_bytes_total", "upstream_cx_tx_bytes_total", "membership_change",
    )
    GAUGES = ("upstream_rq_active", "upstream_cx_active", "membership_total", "membership_healthy")
    __slots__ = COUNTERS + GAUGES + ("rq_code",)

    def __init__(self) -> None:
        super().__init__()
        self.rq_code = [0] * 600  # upstream_rq_<code>; the classes are summed when read

    def values(self) -> Iterator[tuple[str, int, bool]]:
        yield from super().values()
        classes = [0] * 6
        for code, n in enumerate(self.rq_code):
            if n:
                classes[code // 100] += n
        for c in range(1, 6):
            yield f"upstream_rq_{c}xx", classes[c], True
        for code, n in enumerate(self.rq_code):
            if n:
                yield f"upstream_rq_{code}", n, True


class HttpStats(_Scope):
    """``http.<stat_prefix>.*``: the connection manager and its router."""

    COUNTERS = (
        "downstream_rq_total", "downstream_rq_http1_total", "downstream_cx_total",
        "downstream_cx_http1_total", "downstream_cx_destroy", "downstream_cx_protocol_error",
        "downstream_cx_idle_timeout", "downstream_rq_header_timeout", "downstream_rq_timeout",
        "downstream_rq_too_large", "downstream_rq_rx_reset", "downstream_rq_completed",
        "downstream_cx_rx_bytes_total", "downstream_cx_tx_bytes_total",
        "no_route", "no_cluster", "rq_redirect", "rq_direct_response",
    )
    GAUGES = ("downstream_rq_active", "downstream_cx_active")
    __slots__ = COUNTERS + GAUGES + ("rq_class",)

    def __init__(self) -> None:
        super().__init__()
        self.rq_class = [0] * 6  # downstream_rq_<n>xx

    def values(self) -> Iterator[tuple[str, int, bool]]:
        yield from super().values()
        for c in range(1, 6):
            yield f"downstream_rq_{c}xx", self.rq_class[c], True


class ListenerStats(_Scope):
    COUNTERS = ("downstream_cx_total", "downstream_cx_destroy")
    GAUGES = ("downstream_cx_active",)
    __slots__ = COUNTERS + GAUGES


class StatsStore:
    """Every scope, by the prefix Envoy gives it, plus the tags /stats/prometheus needs."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, str, str, str, _Scope]] = []  # (prefix, family, tag, value, scope)
        self.server: dict[str, int] = {}

    def cluster(self, name: str) -> ClusterStats:
        s = ClusterStats()
        self.scopes.append((f"cluster.{name}", "cluster", "envoy_cluster_name", name, s))
        return s

    def http(self, stat_prefix: str) -> HttpStats:
        for prefix, family, _, _, scope in self.scopes:
            if family == "http" and prefix == f"http.{stat_prefix}":
                return scope  # type: ignore[return-value]
        s = HttpStats()
        self.scopes.append((f"http.{stat_prefix}", "http", "envoy_http_conn_manager_prefix", stat_prefix, s))
        return s

    def listener(self, address: str) -> ListenerStats:
        s = ListenerStats()
        self.scopes.append((f"listener.{address}", "listener", "envoy_listener_address", address, s))
        return s

    def text(self) -> str:
        lines = [f"{p}.{n}: {v}" for p, _, _, _, s in self.scopes for n, v, _ in s.values()]
        lines.extend(f"server.{k}: {v}" for k, v in self.server.items())
        return "\n".join(sorted(lines)) + "\n"

    def prometheus(self) -> str:
        families: dict[str, tuple[bool, list[str]]] = {}
        for _, family, tag, tag_value, scope in self.scopes:
            label = f'{tag}="{_escape(tag_value)}"'
            for name, value, counter in scope.values():
                metric, labels = _prom_name(family, name, label)
                families.setdefault(metric, (counter, []))[1].append(f"{metric}{{{labels}}} {value}")
        for k, v in self.server.items():
            families[f"envoy_server_{k}"] = (False, [f"envoy_server_{k}{{}} {v}"])
        out = []
        for metric in sorted(families):
            counter, samples = families[metric]
            out.append(f"# TYPE {metric} {'counter' if counter else 'gauge'}")
            out.extend(samples)
        return "\n".join(out) + "\n"


def _prom_name(family: str, name: str, label: str) -> tuple[str, str]:
    """Envoy's tag extraction for the response-code stats."""
    for prefix in ("upstream_rq_", "downstream_rq_"):
        if name.startswith(prefix):
            rest = name[len(prefix):]
            if len(rest) == 3 and rest.isdigit():
                return f"envoy_{family}_{prefix[:-1]}", f'envoy_response_code="{rest}",{label}'
            if len(rest) == 3 and rest.endswith("xx") and rest[0].isdigit():
                return f"envoy_{family}_{prefix}xx", f'envoy_response_code_class="{rest[0]}",{label}'
    return f"envoy_{family}_{name}", label


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
