"""compile/resilience.py: Envoy protos → retry, fault, circuit breaker, outlier, health check objects."""

import pytest
from envoy.config.cluster.v3 import circuit_breaker_pb2, outlier_detection_pb2
from envoy.config.core.v3 import health_check_pb2
from envoy.config.route.v3 import route_components_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2  # noqa: F401 (registers the type)
from google.protobuf import any_pb2, json_format

from pilotfish.proxy.upstream.circuit_breaker import UNLIMITED
from pilotfish.proxy.compile.resilience import (
    compile_circuit_breakers, compile_fault, compile_fault_any, compile_health_checks,
    compile_outlier_detection, compile_retry_policy,
)
from pilotfish.proxy.common.errors import ProxyConfigError
from pilotfish.proxy.common.fractional import MILLION
from pilotfish.proxy.router.retry_state import (
    RETRY_ON_CONNECT_FAILURE, RETRY_ON_GRPC_CANCELLED, RETRY_ON_GRPC_UNAVAILABLE, RETRY_ON_REFUSED_STREAM,
    RETRY_ON_RETRIABLE_STATUS_CODES,
)


def parse(cls, doc):
    return json_format.ParseDict(doc, cls())


def test_istio_default_retry_policy():
    rp = parse(route_components_pb2.RetryPolicy, {
        "retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
        "num_retries": 2, "retry_host_predicate": [{
            "name": "envoy.retry_host_predicates.previous_hosts",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3"
                                      ".PreviousHostsPredicate"}}],
        "host_selection_retry_max_attempts": "5", "retriable_status_codes": [503]})
    p = compile_retry_policy(rp, "r.retry_policy")
    assert p.retry_on == (RETRY_ON_CONNECT_FAILURE | RETRY_ON_REFUSED_STREAM | RETRY_ON_GRPC_UNAVAILABLE
                          | RETRY_ON_GRPC_CANCELLED | RETRY_ON_RETRIABLE_STATUS_CODES)
    assert (p.num_retries, p.previous_hosts, p.host_selection_max_attempts) == (2, True, 5)
    assert p.retriable_status_codes == (503,)
    assert (p.base_interval_ms, p.max_interval_ms) == (25, 0)


def test_retry_defaults_and_back_off():
    p = compile_retry_policy(parse(route_components_pb2.RetryPolicy, {"retry_on": "5xx"}), "p")
    assert p.num_retries == 1 and p.per_try_timeout == 0.0 and p.host_selection_max_attempts == 1
    assert not p.per_try_timers  # streams of routes without per-try timers arm none
    p = compile_retry_policy(parse(route_components_pb2.RetryPolicy, {
        "retry_on": "5xx", "per_try_timeout": "0.25s", "per_try_idle_timeout": "2s",
        "retry_back_off": {"base_interval": "0.0001s", "max_interval": "1s"},
        "retriable_headers": [{"name": "x-retry", "present_match": True}]}), "p")
    assert (p.per_try_timeout, p.per_try_idle_timeout, p.per_try_timers) == (0.25, 2.0, True)
    idle_only = compile_retry_policy(parse(route_components_pb2.RetryPolicy, {
        "retry_on": "reset", "per_try_idle_timeout": "0.5s"}), "p")
    assert (idle_only.per_try_timeout, idle_only.per_try_idle_timeout, idle_only.per_try_timers) == (0.0, 0.5, True)
    assert (p.base_interval_ms, p.max_interval_ms) == (1, 1000)  # under 1 ms rounds up to 1 ms
    assert len(p.retriable_headers) == 1
    with pytest.raises(ProxyConfigError, match="max_interval") as e:
        compile_retry_policy(parse(route_components_pb2.RetryPolicy, {
            "retry_back_off": {"base_interval": "1s", "max_interval": "0.5s"}}), "p")
    assert e.value.field_path == "p.retry_back_off.max_interval"


@pytest.mark.parametrize("doc,field", [
    ({"retry_priority": {"name": "envoy.retry_priorities.previous_priorities"}}, "p.retry_priority"),
    ({"rate_limited_retry_back_off": {"reset_headers": [{"name": "retry-after"}]}},
     "p.rate_limited_retry_back_off"),
    ({"retry_host_predicate": [{"name": "envoy.retry_host_predicates.omit_canary_hosts"}]},
     "p.retry_host_predicate[0]"),
])
def test_unsupported_retry_fields(doc, field):
    with pytest.raises(ProxyConfigError) as e:
        compile_retry_policy(parse(route_components_pb2.RetryPolicy, doc), "p")
    assert e.value.field_path == field


def test_istio_fault():
    # Istio: fault.abort.percentage 0.1 -> numerator 1000 of a MILLION
    f = parse(fault_pb2.HTTPFault, {
        "delay": {"fixed_delay": "5s", "percentage": {"numerator": 100000, "denominator": "MILLION"}},
        "abort": {"http_status": 503, "percentage": {"numerator": 1000, "denominator": "MILLION"}},
        "headers": [{"name": "end-user", "string_match": {"exact": "jason"}}],
        "delay_percent_runtime": "x"})
    warnings = []
    p = compile_fault(f, "f", warnings)
    assert p.delay.fixed == 5.0 and p.delay.percentage.numerator == 100000
    assert p.abort.http_status == 503 and p.abort.percentage.denominator == MILLION
    assert len(p.headers) == 1 and warnings == []  # delay_percent_runtime is read (no value: the default)
    packed = any_pb2.Any()
    packed.Pack(f)
    assert compile_fault_any(packed, "f").abort.http_status == 503


def test_fault_grpc_header_and_errors():
    p = compile_fault(parse(fault_pb2.HTTPFault, {"abort": {"grpc_status": 14, "percentage": {"numerator": 100}},
                                                  "delay": {"header_delay": {}, "percentage": {"numerator": 100}},
                                                  "max_active_faults": 3, "downstream_nodes": ["n"]}), "f")
    assert p.abort.grpc_status == 14 and p.delay.fixed is None and p.max_active_faults == 3
    assert p.downstream_nodes == frozenset({b"n"})
    with pytest.raises(ProxyConfigError) as e:
        compile_fault(parse(fault_pb2.HTTPFault, {"response_rate_limit": {"fixed_limit": {"limit_kbps": 1}}}), "f")
    assert e.value.field_path == "f.response_rate_limit"
    with pytest.raises(ProxyConfigError):
        compile_fault(parse(fault_pb2.HTTPFault, {"abort": {"http_status": 100}}), "f")


def test_circuit_breakers():
    cb = parse(circuit_breaker_pb2.CircuitBreakers, {"thresholds": [
        {"max_connections": 10, "max_pending_requests": 5, "max_requests": 20, "max_retries": 1,
         "track_remaining": True},
        {"priority": "HIGH", "retry_budget": {}},
        {"max_connections": 99}],  # a second DEFAULT entry: the first wins
        "per_host_thresholds": [{"max_connections": 7}]})
    s = compile_circuit_breakers(cb, "c")
    assert (s.default.max_connections, s.default.max_pending_requests, s.default.max_requests,
            s.default.max_retries, s.default.track_remaining) == (10, 5, 20, 1, True)
    assert s.default.max_connection_pools == UNLIMITED
    assert s.high.budget_percent == 20.0 and s.high.max_connections == 1024
    assert s.max_connections_per_host == 7
    defaults = compile_circuit_breakers(circuit_breaker_pb2.CircuitBreakers(), "c")
    assert defaults.default.max_retries == 3 and defaults.high.max_requests == 1024
    with pytest.raises(ProxyConfigError) as e:
        compile_circuit_breakers(parse(circuit_breaker_pb2.CircuitBreakers,
                                       {"per_host_thresholds": [{"max_requests": 1}]}), "c")
    assert e.value.field_path == "c.per_host_thresholds[0].max_requests"


def test_outlier_detection():
    s = compile_outlier_detection(outlier_detection_pb2.OutlierDetection(), "o")
    assert (s.interval, s.base_ejection_time, s.max_ejection_time, s.max_ejection_percent) == (10.0, 30.0, 300.0, 10)
    assert (s.enforcing_consecutive_5xx, s.enforcing_consecutive_gateway_failure) == (100, 0)
    s = compile_outlier_detection(parse(outlier_detection_pb2.OutlierDetection, {
        "consecutive_5xx": 3, "interval": "1s", "base_ejection_time": "400s", "max_ejection_percent": 100,
        "split_external_local_origin_errors": True, "consecutive_local_origin_failure": 2}), "o")
    assert (s.consecutive_5xx, s.interval, s.base_ejection_time, s.max_ejection_percent) == (3, 1.0, 400.0, 100)
    assert s.max_ejection_time == 400.0  # default max is raised to the base
    assert s.split_external_local_origin_errors and s.consecutive_local_origin_failure == 2
    with pytest.raises(ProxyConfigError, match="max_ejection_time"):
        compile_outlier_detection(parse(outlier_detection_pb2.OutlierDetection, {
            "base_ejection_time": "60s", "max_ejection_time": "30s"}), "o")
    with pytest.raises(ProxyConfigError) as e:
        compile_outlier_detection(parse(outlier_detection_pb2.OutlierDetection, {"max_ejection_percent": 101}), "o")
    assert e.value.field_path == "o.max_ejection_percent"


def test_health_checks():
    hc = parse(health_check_pb2.HealthCheck, {
        "timeout": "1s", "interval": "5s", "unhealthy_threshold": 2, "healthy_threshold": 1,
        "no_traffic_interval": "30s", "event_log_path": "/dev/null",
        "http_health_check": {"path": "/healthz", "host": "svc", "expected_statuses": [{"start": 200, "end": 400}],
                              "request_headers_to_add": [{"header": {"key": "X-A", "value": "1"}}]}})
    warnings = []
    s = compile_health_checks([hc], "c.health_checks", warnings)
    assert (s.timeout, s.interval, s.unhealthy_threshold, s.healthy_threshold) == (1.0, 5.0, 2, 1)
    assert s.no_traffic_interval == 30.0 and s.http.expected == ((200, 400),) and s.http.host == b"svc"
    assert s.http.request_headers_to_add == ((b"x-a", b"1"),)
    assert warnings == ["c.health_checks[0].event_log_path: ignored"]
    assert compile_health_checks([], "c.health_checks") is None
    plain = parse(health_check_pb2.HealthCheck, {"timeout": "1s", "interval": "5s", "unhealthy_threshold": 2,
                                                 "healthy_threshold": 1, "http_health_check": {"path": "/"}})
    assert compile_health_checks([plain], "c").http.expected == ((200, 201),)  # only 200 by default


@pytest.mark.parametrize("doc,field", [
    ({"tcp_health_check": {}}, "c[0].tcp_health_check"),
    ({"http_health_check": {"path": "/"}, "alt_port": 1}, "c[0].alt_port"),
    ({"http_health_check": {"path": "/", "codec_client_type": "HTTP2"}}, "c[0].http_health_check.codec_client_type"),
    ({"http_health_check": {"path": "/", "expected_statuses": [{"start": 300, "end": 200}]}},
     "c[0].http_health_check.expected_statuses[0]"),
    ({"http_health_check": {"path": ""}}, "c[0].http_health_check.path"),
])
def test_health_check_errors(doc, field):
    full = {"timeout": "1s", "interval": "5s", "unhealthy_threshold": 2, "healthy_threshold": 1, **doc}
    with pytest.raises(ProxyConfigError) as e:
        compile_health_checks([parse(health_check_pb2.HealthCheck, full)], "c")
    assert e.value.field_path == field
