"""RetryPolicy, HTTPFault, CircuitBreakers, OutlierDetection and HealthCheck → runtime objects.

Each function checks the fields it is given: a set field the proxy does not implement is a
ProxyConfigError naming its path; fields that cannot change traffic (runtime keys, event
logging) are appended to ``warnings`` as "ignored". Values are checked as Envoy's proto
validation and constructors do (for example max_interval >= base_interval).
"""

from __future__ import annotations

from typing import Any

# The predicate's message in the descriptor pool: /config_dump renders the routes that name it.
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2  # noqa: F401

from ...xds.backoff import DEFAULT_BASE_MS
from ..upstream.circuit_breaker import UNLIMITED, CircuitBreakerSettings, Thresholds
from ..common.errors import ProxyConfigError
from ..common.fractional import Fraction
from ..filters.fault import AbortSpec, DelaySpec, FaultPolicy
from ..upstream.health_check import HealthCheckSettings, HttpCheck
from .layered_runtime import EMPTY as EMPTY_RUNTIME, Runtime
from ..upstream.outlier import OutlierSettings
from ..router.retry_state import RetryPolicy, parse_retry_on
from .durations import seconds
from .matchers import header_matcher, string_matcher

FAULT_TYPE = "envoy.extensions.filters.http.fault.v3.HTTPFault"
PREVIOUS_HOSTS_NAME = "envoy.retry_host_predicates.previous_hosts"
PREVIOUS_HOSTS_TYPE = "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
_DENOMINATORS = {0: 100, 1: 10_000, 2: 1_000_000}
_METHODS = {0: b"GET", 1: b"GET", 2: b"HEAD", 3: b"POST", 4: b"PUT", 5: b"DELETE", 6: b"CONNECT",
            7: b"OPTIONS", 8: b"TRACE", 9: b"PATCH"}


def _check(msg: Any, path: str, supported: frozenset[str], ignored: frozenset[str] = frozenset(),
           warnings: list[str] | None = None) -> None:
    for fd, _ in msg.ListFields():
        if fd.name in supported:
            continue
        if fd.name in ignored:
            if warnings is not None:
                warnings.append(f"{path}.{fd.name}: ignored")
            continue
        raise ProxyConfigError(f"{fd.name} is not supported", f"{path}.{fd.name}")


def _ms(d: Any) -> int:
    """PROTOBUF_GET_MS: whole milliseconds."""
    return d.seconds * 1000 + d.nanos // 1_000_000


def _opt_seconds(msg: Any, name: str, default: float | None) -> float | None:
    return seconds(getattr(msg, name)) if msg.HasField(name) else default


def _wrapped(msg: Any, name: str, default: Any) -> Any:
    return getattr(msg, name).value if msg.HasField(name) else default


def fraction(p: Any, path: str) -> Fraction:
    if p.denominator not in _DENOMINATORS:
        raise ProxyConfigError(f"unknown denominator {p.denominator}", f"{path}.denominator")
    return Fraction(p.numerator, _DENOMINATORS[p.denominator])


# ---- route retry policy ---------------------------------------------------------------------
_RETRY_FIELDS = frozenset({
    "retry_on", "num_retries", "per_try_timeout", "per_try_idle_timeout", "retry_host_predicate",
    "host_selection_retry_max_attempts", "retriable_status_codes", "retry_back_off",
    "retriable_headers", "retriable_request_headers",
})


def compile_retry_policy(rp: Any, path: str) -> RetryPolicy:
    """envoy.config.route.v3.RetryPolicy (route or virtual host)."""
    _check(rp, path, _RETRY_FIELDS)
    base_ms, max_ms = DEFAULT_BASE_MS, 0
    if rp.HasField("retry_back_off"):
        bo = rp.retry_back_off
        bpath = f"{path}.retry_back_off"
        _check(bo, bpath, frozenset({"base_interval", "max_interval"}))
        if not bo.HasField("base_interval") or seconds(bo.base_interval) <= 0:
            raise ProxyConfigError("base_interval is required and must be above 0", f"{bpath}.base_interval")
        base_ms = max(1, _ms(bo.base_interval))
        if bo.HasField("max_interval"):
            if seconds(bo.max_interval) <= 0:
                raise ProxyConfigError("max_interval must be above 0", f"{bpath}.max_interval")
            max_ms = max(1, _ms(bo.max_interval))
            if max_ms < base_ms:
                raise ProxyConfigError("retry_policy.max_interval must greater than or equal to the "
                                       "base_interval", f"{bpath}.max_interval")
    previous_hosts = False
    for i, pred in enumerate(rp.retry_host_predicate):
        ppath = f"{path}.retry_host_predicate[{i}]"
        type_name = pred.typed_config.type_url.rsplit("/", 1)[-1] if pred.HasField("typed_config") else ""
        if type_name == PREVIOUS_HOSTS_TYPE or (not type_name and pred.name == PREVIOUS_HOSTS_NAME):
            previous_hosts = True
            continue
        raise ProxyConfigError(f"retry host predicate {type_name or pred.name!r} is not supported "
                               f"(supported: {PREVIOUS_HOSTS_NAME})", ppath)
    for code in rp.retriable_status_codes:
        if not 100 <= code < 600:
            raise ProxyConfigError(f"invalid status code {code}", f"{path}.retriable_status_codes")
    return RetryPolicy(
        retry_on=parse_retry_on(rp.retry_on),
        num_retries=_wrapped(rp, "num_retries", 1),
        per_try_timeout=_ms(rp.per_try_timeout) / 1000.0 if rp.HasField("per_try_timeout") else 0.0,
        per_try_idle_timeout=(_ms(rp.per_try_idle_timeout) / 1000.0
                              if rp.HasField("per_try_idle_timeout") else 0.0),
        base_interval_ms=base_ms,
        max_interval_ms=max_ms,
        retriable_status_codes=tuple(rp.retriable_status_codes),
        retriable_headers=tuple(header_matcher(m, f"{path}.retriable_headers[{i}]")
                                for i, m in enumerate(rp.retriable_headers)),
        retriable_request_headers=tuple(header_matcher(m, f"{path}.retriable_request_headers[{i}]")
                                        for i, m in enumerate(rp.retriable_request_headers)),
        previous_hosts=previous_hosts,
        host_selection_max_attempts=rp.host_selection_retry_max_attempts or 1,
    )


# ---- fault filter -------------------------------------------------------------------------------
_FAULT_FIELDS = frozenset({"delay", "abort", "upstream_cluster", "headers", "downstream_nodes",
                           "max_active_faults", "delay_percent_runtime", "abort_percent_runtime",
                           "delay_duration_runtime", "abort_http_status_runtime", "max_active_faults_runtime",
                           "abort_grpc_status_runtime"})
# response_rate_limit is refused, so its runtime key is never read; the rest shape stats only
_FAULT_IGNORED = frozenset({"response_rate_limit_percent_runtime", "disable_downstream_cluster_stats",
                            "filter_metadata"})
#: Envoy's FaultSettings defaults for the ``*_runtime`` fields.
_FAULT_RUNTIME = {
    "delay_percent_runtime": "fault.http.delay.fixed_delay_percent",
    "abort_percent_runtime": "fault.http.abort.abort_percent",
    "delay_duration_runtime": "fault.http.delay.fixed_duration_ms",
    "abort_http_status_runtime": "fault.http.abort.http_status",
    "abort_grpc_status_runtime": "fault.http.abort.grpc_status",
    "max_active_faults_runtime": "fault.http.max_active_faults",
}
#: fault.http.<downstream cluster><suffix>: the keys a request naming its downstream cluster reads.
_DOWNSTREAM_SUFFIXES = (".delay.fixed_delay_percent", ".abort.abort_percent", ".delay.fixed_duration_ms",
                        ".abort.http_status", ".abort.grpc_status")
_DelayCfg = tuple[int | None, Fraction]  # fixed delay (ms; None: header), percentage
_AbortCfg = tuple[str, int | None, Fraction]  # "http" | "grpc" | "header", status, percentage


def compile_fault(f: Any, path: str, warnings: list[str] | None = None,
                  runtime: Runtime | None = None) -> FaultPolicy:
    """envoy.extensions.filters.http.fault.v3.HTTPFault (the filter's or a route's override), with
    the runtime values it reads resolved (filters/fault.py)."""
    runtime = runtime or EMPTY_RUNTIME
    _check(f, path, _FAULT_FIELDS, _FAULT_IGNORED, warnings)
    delay_cfg: _DelayCfg | None = None
    abort_cfg: _AbortCfg | None = None
    if f.HasField("delay"):
        d = f.delay
        dpath = f"{path}.delay"
        _check(d, dpath, frozenset({"fixed_delay", "header_delay", "percentage"}))
        pct = fraction(d.percentage, f"{dpath}.percentage")
        which = d.WhichOneof("fault_delay_secifier")
        if which == "fixed_delay":
            if _ms(d.fixed_delay) < 0:
                raise ProxyConfigError("fixed_delay must not be negative", f"{dpath}.fixed_delay")
            delay_cfg = (_ms(d.fixed_delay), pct)
        elif which == "header_delay":
            delay_cfg = (None, pct)
        else:
            raise ProxyConfigError("a delay needs fixed_delay or header_delay", dpath)
    if f.HasField("abort"):
        a = f.abort
        apath = f"{path}.abort"
        _check(a, apath, frozenset({"http_status", "grpc_status", "header_abort", "percentage"}))
        pct = fraction(a.percentage, f"{apath}.percentage")
        which = a.WhichOneof("error_type")
        if which == "http_status":
            if not 200 <= a.http_status < 600:
                raise ProxyConfigError("http_status must be in [200, 600)", f"{apath}.http_status")
            abort_cfg = ("http", a.http_status, pct)
        elif which == "grpc_status":
            abort_cfg = ("grpc", a.grpc_status, pct)
        elif which == "header_abort":
            abort_cfg = ("header", None, pct)
        else:
            raise ProxyConfigError("an abort needs http_status, grpc_status or header_abort", apath)
    keys = {name: getattr(f, name) or default for name, default in _FAULT_RUNTIME.items()}
    common: dict[str, Any] = dict(
        upstream_cluster=f.upstream_cluster,
        headers=tuple(header_matcher(m, f"{path}.headers[{i}]") for i, m in enumerate(f.headers)),
        downstream_nodes=frozenset(n.encode() for n in f.downstream_nodes),
    )
    configured_max = f.max_active_faults.value if f.HasField("max_active_faults") else None
    max_active = runtime.uint_of(keys["max_active_faults_runtime"])
    common["max_active_faults"] = configured_max if max_active is None else max_active

    def policy(pct_delay: str, pct_abort: str, durations: tuple[str, ...], status: str, grpc: str,
               **extra: Any) -> FaultPolicy:
        return FaultPolicy(delay=_runtime_delay(delay_cfg, runtime, pct_delay, durations),
                           abort=_runtime_abort(abort_cfg, runtime, pct_abort, status, grpc), **common, **extra)

    generic = (keys["delay_percent_runtime"], keys["abort_percent_runtime"], (keys["delay_duration_runtime"],),
               keys["abort_http_status_runtime"], keys["abort_grpc_status_runtime"])
    clusters = _downstream_clusters(runtime)
    if not clusters and not any(k in runtime for k in (*generic[:2], *generic[2], *generic[3:])):
        return policy(*generic)  # the downstream-cluster header cannot change anything
    by = {c.encode(): policy(f"fault.http.{c}.delay.fixed_delay_percent", f"fault.http.{c}.abort.abort_percent",
                             (generic[2][0], f"fault.http.{c}.delay.fixed_duration_ms"),
                             f"fault.http.{c}.abort.http_status", f"fault.http.{c}.abort.grpc_status")
          for c in sorted(clusters)}
    other = policy("", "", generic[2], "", "")
    return policy(*generic, by_downstream=(by, other))


def _downstream_clusters(runtime: Runtime) -> set[str]:
    found = set()
    for key in runtime.entries:
        if key.startswith("fault.http."):
            rest = key[len("fault.http."):]
            for suffix in _DOWNSTREAM_SUFFIXES:
                if rest.endswith(suffix) and len(rest) > len(suffix):
                    found.add(rest[:-len(suffix)])
    return found


def _runtime_fraction(runtime: Runtime, key: str, configured: Fraction) -> tuple[Fraction, bool]:
    value = runtime.fraction_of(key)
    return (configured, False) if value is None else (Fraction(*value), True)


def _last_uint(runtime: Runtime, keys: tuple[str, ...]) -> int | None:
    """getInteger(k2, getInteger(k1, default)): the last key holding an integer decides."""
    found = None
    for k in keys:
        v = runtime.uint_of(k)
        if v is not None:
            found = v
    return found


def _runtime_delay(cfg: _DelayCfg | None, runtime: Runtime, pct_key: str,
                   duration_keys: tuple[str, ...]) -> DelaySpec | None:
    if cfg is None:
        return None
    fixed_ms, configured = cfg
    pct, from_runtime = _runtime_fraction(runtime, pct_key, configured)
    ms = _last_uint(runtime, duration_keys)
    if fixed_ms is not None:
        return DelaySpec((fixed_ms if ms is None else ms) / 1000.0, pct)
    return DelaySpec(None, pct, from_runtime, None if ms is None else ms / 1000.0)


def _runtime_abort(cfg: _AbortCfg | None, runtime: Runtime, pct_key: str, status_key: str,
                   grpc_key: str) -> AbortSpec | None:
    if cfg is None:
        return None
    kind, status, configured = cfg
    pct, from_runtime = _runtime_fraction(runtime, pct_key, configured)
    http = runtime.uint_of(status_key)
    if http is not None and not 200 <= http < 600:  # Envoy would answer with it anyway; refuse
        raise ProxyConfigError(f"runtime key {status_key!r}: HTTP status {http} is outside [200, 600)",
                               runtime.entries[status_key].path)
    grpc = runtime.uint_of(grpc_key)
    if kind == "http":
        return AbortSpec(status if http is None else http, None, pct)
    if kind == "grpc":
        return AbortSpec(None, status if grpc is None else grpc, pct)
    return AbortSpec(None, None, pct, header=True, runtime_percentage=from_runtime,
                     runtime_http_status=http, runtime_grpc_status=grpc)


def compile_fault_any(value: Any, path: str, warnings: list[str] | None = None,
                      runtime: Runtime | None = None) -> FaultPolicy:
    """A typed_config / typed_per_filter_config Any holding an HTTPFault."""
    from envoy.extensions.filters.http.fault.v3 import fault_pb2

    type_name = value.type_url.rsplit("/", 1)[-1]
    if type_name != FAULT_TYPE:
        raise ProxyConfigError(f"expected {FAULT_TYPE}, got {type_name!r}", path)
    msg = fault_pb2.HTTPFault()
    value.Unpack(msg)
    return compile_fault(msg, path, warnings, runtime)


# ---- circuit breakers ---------------------------------------------------------------------------
_THRESHOLD_FIELDS = frozenset({"priority", "max_connections", "max_pending_requests", "max_requests",
                               "max_retries", "retry_budget", "track_remaining", "max_connection_pools"})


def compile_circuit_breakers(cb: Any, path: str) -> CircuitBreakerSettings:
    """envoy.config.cluster.v3.CircuitBreakers; the first entry per priority wins, as Envoy."""
    _check(cb, path, frozenset({"thresholds", "per_host_thresholds"}))
    found: dict[int, Thresholds] = {}
    for i, t in enumerate(cb.thresholds):
        tpath = f"{path}.thresholds[{i}]"
        _check(t, tpath, _THRESHOLD_FIELDS)
        if t.priority not in (0, 1):
            raise ProxyConfigError(f"unknown routing priority {t.priority}", f"{tpath}.priority")
        if t.priority in found:
            continue
        budget_percent = min_conc = None
        if t.HasField("retry_budget"):
            rb = t.retry_budget
            _check(rb, f"{tpath}.retry_budget", frozenset({"budget_percent", "min_retry_concurrency"}))
            if rb.HasField("budget_percent"):
                budget_percent = rb.budget_percent.value
                if not 0 <= budget_percent <= 100:
                    raise ProxyConfigError("budget_percent must be in [0, 100]",
                                           f"{tpath}.retry_budget.budget_percent")
            if rb.HasField("min_retry_concurrency"):
                min_conc = rb.min_retry_concurrency.value
            if budget_percent is None and min_conc is None:
                budget_percent = 20.0  # a present budget is in use with its defaults
        found[t.priority] = Thresholds(
            max_connections=_wrapped(t, "max_connections", 1024),
            max_pending_requests=_wrapped(t, "max_pending_requests", 1024),
            max_requests=_wrapped(t, "max_requests", 1024),
            max_retries=_wrapped(t, "max_retries", 3),
            max_connection_pools=_wrapped(t, "max_connection_pools", UNLIMITED),
            budget_percent=budget_percent, min_retry_concurrency=min_conc,
            track_remaining=t.track_remaining,
        )
    per_host = None
    for i, t in enumerate(cb.per_host_thresholds):
        tpath = f"{path}.per_host_thresholds[{i}]"
        _check(t, tpath, frozenset({"priority", "max_connections"}))
        if t.priority == 0 and per_host is None and t.HasField("max_connections"):
            per_host = t.max_connections.value
    return CircuitBreakerSettings(default=found.get(0, Thresholds()), high=found.get(1, Thresholds()),
                                  max_connections_per_host=per_host)


# ---- outlier detection ----------------------------------------------------------------------------
_OUTLIER_INTS = ("consecutive_5xx", "consecutive_gateway_failure", "consecutive_local_origin_failure",
                 "max_ejection_percent", "enforcing_consecutive_5xx", "enforcing_consecutive_gateway_failure",
                 "enforcing_consecutive_local_origin_failure", "enforcing_success_rate",
                 "enforcing_local_origin_success_rate", "enforcing_failure_percentage",
                 "enforcing_failure_percentage_local_origin", "success_rate_minimum_hosts",
                 "success_rate_request_volume", "success_rate_stdev_factor", "failure_percentage_threshold",
                 "failure_percentage_minimum_hosts", "failure_percentage_request_volume")
_PERCENTS = frozenset({"max_ejection_percent", "failure_percentage_threshold"}
                      | {n for n in _OUTLIER_INTS if n.startswith("enforcing_")})
_OUTLIER_FIELDS = frozenset(_OUTLIER_INTS) | {
    "interval", "base_ejection_time", "max_ejection_time", "max_ejection_time_jitter",
    "split_external_local_origin_errors", "successful_active_health_check_uneject_host",
    "always_eject_one_host"}


def compile_outlier_detection(od: Any, path: str) -> OutlierSettings:
    """envoy.config.cluster.v3.OutlierDetection (``monitors`` extensions are not supported)."""
    _check(od, path, _OUTLIER_FIELDS)
    d = OutlierSettings()
    values: dict[str, Any] = {}
    for name in _OUTLIER_INTS:
        if od.HasField(name):
            v = getattr(od, name).value
            if name in _PERCENTS and v > 100:
                raise ProxyConfigError(f"{name} must be at most 100", f"{path}.{name}")
            values[name] = v
    for name in ("interval", "base_ejection_time", "max_ejection_time_jitter"):
        if od.HasField(name):
            if seconds(getattr(od, name)) <= 0 and name != "max_ejection_time_jitter":
                raise ProxyConfigError(f"{name} must be above 0", f"{path}.{name}")
            values[name] = _ms(getattr(od, name)) / 1000.0
    base = values.get("base_ejection_time", d.base_ejection_time)
    if od.HasField("max_ejection_time"):
        values["max_ejection_time"] = _ms(od.max_ejection_time) / 1000.0
    else:
        values["max_ejection_time"] = max(300.0, base)  # the default, or base when larger
    if values["max_ejection_time"] < base:
        raise ProxyConfigError("outlier detector's max_ejection_time cannot be smaller than "
                               "base_ejection_time", f"{path}.max_ejection_time")
    values["split_external_local_origin_errors"] = od.split_external_local_origin_errors
    values["successful_active_health_check_uneject_host"] = _wrapped(
        od, "successful_active_health_check_uneject_host", True)
    values["always_eject_one_host"] = _wrapped(od, "always_eject_one_host", False)
    return OutlierSettings(**values)


# ---- active health checking --------------------------------------------------------------------------
_HC_FIELDS = frozenset({
    "timeout", "interval", "initial_jitter", "interval_jitter", "interval_jitter_percent",
    "unhealthy_threshold", "healthy_threshold", "reuse_connection", "http_health_check",
    "no_traffic_interval", "no_traffic_healthy_interval", "unhealthy_interval",
    "unhealthy_edge_interval", "healthy_edge_interval"})
_HC_IGNORED = frozenset({"event_log_path", "event_logger", "event_service", "always_log_health_check_failures",
                         "always_log_health_check_success"})
_HTTP_HC_FIELDS = frozenset({"host", "path", "expected_statuses", "retriable_statuses", "request_headers_to_add",
                             "request_headers_to_remove", "method", "codec_client_type",
                             "service_name_matcher", "response_buffer_size"})


def _ranges(rs: Any, path: str) -> tuple[tuple[int, int], ...]:
    out = []
    for i, r in enumerate(rs):
        if r.start >= r.end:
            raise ProxyConfigError(f"expecting start < end, but found start={r.start} and end={r.end}",
                                   f"{path}[{i}]")
        if r.start < 100 or r.end > 600:
            raise ProxyConfigError("status ranges must lie within [100, 600]", f"{path}[{i}]")
        out.append((r.start, r.end))
    return tuple(out)


def compile_health_checks(checks: Any, path: str, warnings: list[str] | None = None) -> HealthCheckSettings | None:
    """Cluster.health_checks: one HTTP/1.1 health check at most."""
    if len(checks) == 0:
        return None
    if len(checks) > 1:
        raise ProxyConfigError("only one health check per cluster is supported", f"{path}[1]")
    hc = checks[0]
    path = f"{path}[0]"
    _check(hc, path, _HC_FIELDS, _HC_IGNORED, warnings)
    if hc.WhichOneof("health_checker") != "http_health_check":
        raise ProxyConfigError("only http_health_check is supported (tcp, grpc and custom checks are not)",
                               path)
    for name in ("timeout", "interval"):
        if not hc.HasField(name) or seconds(getattr(hc, name)) <= 0:
            raise ProxyConfigError(f"{name} is required and must be above 0", f"{path}.{name}")
    for name in ("unhealthy_threshold", "healthy_threshold"):
        if not hc.HasField(name):
            raise ProxyConfigError(f"{name} is required", f"{path}.{name}")
    h = hc.http_health_check
    hpath = f"{path}.http_health_check"
    _check(h, hpath, _HTTP_HC_FIELDS)
    if not h.path:
        raise ProxyConfigError("path is required", f"{hpath}.path")
    if h.codec_client_type not in (0,):  # envoy.type.v3.CodecClientType HTTP1
        raise ProxyConfigError("only HTTP/1.1 health checks are supported", f"{hpath}.codec_client_type")
    if h.method == 6:
        raise ProxyConfigError("CONNECT is not a valid health check method", f"{hpath}.method")
    adds = []
    for i, opt in enumerate(h.request_headers_to_add):
        adds.append((opt.header.key.lower().encode(), opt.header.value.encode()))
    matcher = None
    if h.HasField("service_name_matcher"):
        matcher = string_matcher(h.service_name_matcher, f"{hpath}.service_name_matcher")

    def opt(name: str) -> float | None:
        return _ms(getattr(hc, name)) / 1000.0 if hc.HasField(name) else None

    return HealthCheckSettings(
        timeout=_ms(hc.timeout) / 1000.0, interval=_ms(hc.interval) / 1000.0,
        unhealthy_threshold=hc.unhealthy_threshold.value, healthy_threshold=hc.healthy_threshold.value,
        http=HttpCheck(path=h.path.encode(), host=h.host.encode(), method=_METHODS[h.method],
                       expected=_ranges(h.expected_statuses, f"{hpath}.expected_statuses") or ((200, 201),),
                       retriable=_ranges(h.retriable_statuses, f"{hpath}.retriable_statuses"),
                       request_headers_to_add=tuple(adds),
                       request_headers_to_remove=tuple(n.lower().encode() for n in h.request_headers_to_remove),
                       service_name_matcher=matcher),
        initial_jitter=opt("initial_jitter") or 0.0, interval_jitter=opt("interval_jitter") or 0.0,
        interval_jitter_percent=hc.interval_jitter_percent,
        no_traffic_interval=opt("no_traffic_interval") or 60.0,
        no_traffic_healthy_interval=opt("no_traffic_healthy_interval"),
        unhealthy_interval=opt("unhealthy_interval"), unhealthy_edge_interval=opt("unhealthy_edge_interval"),
        healthy_edge_interval=opt("healthy_edge_interval"),
        reuse_connection=_wrapped(hc, "reuse_connection", True),
    )
