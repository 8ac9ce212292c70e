"""RetryPolicy / RetryState against Envoy's RetryStateImpl rules."""

import random

import pytest

from pilotfish.proxy.upstream.circuit_breaker import ResourceManager, Thresholds
from pilotfish.proxy.router.retry_state import (
    NO, NO_LIMIT, NO_OVERFLOW, RESET_CONNECT_FAILURE, RESET_CONNECTION_TERMINATION, RESET_LOCAL,
    RESET_OVERFLOW, RESET_REFUSED_STREAM, RETRY, RETRY_ON_5XX, RETRY_ON_CONNECT_FAILURE, RetryCounters,
    RetryPolicy, expected_timeout_ms, parse_retry_on, per_try_timeout, retry_buffer_limit,
)
from pilotfish.proxy.router.route_table import HeaderMatcher


def begin(policy, headers=(), resources=None, trusted=True, rng=None):
    counters = RetryCounters()
    state = policy.begin(list(headers), resources or ResourceManager(), rng or random.Random(1), counters,
                         trusted=trusted)
    return state, counters


def policy(tokens, **kw):
    return RetryPolicy(retry_on=parse_retry_on(tokens), **kw)


def test_no_policy_and_no_header_means_no_state():
    assert begin(RetryPolicy())[0] is None
    assert begin(RetryPolicy(), [(b"x-envoy-max-retries", b"3")])[0] is None  # max-retries alone


def test_istio_default_policy():
    # Istio's kind of policy: connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes + 503, 2 tries
    p = policy("connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
               num_retries=3, retriable_status_codes=(503,))
    s, c = begin(p)
    assert s.should_retry_headers(503, []) == RETRY
    assert s.should_retry_headers(500, []) == NO
    assert s.should_retry_headers(200, [(b"grpc-status", b"14")]) == RETRY  # unavailable
    assert s.should_retry_headers(200, [(b"grpc-status", b"13")]) == NO
    assert s.should_retry_reset(RESET_CONNECT_FAILURE, False) == RETRY
    assert s.should_retry_reset(RESET_REFUSED_STREAM, True) == NO_LIMIT  # 3 retries spent: URX
    assert c.upstream_rq_retry == 3 and c.upstream_rq_retry_limit_exceeded == 1


def test_5xx_and_gateway_error_and_4xx():
    s, _ = begin(policy("5xx", num_retries=10))
    assert [s.would_retry_headers(code, []) for code in (500, 503, 599, 404, 200)] == [True] * 3 + [False] * 2
    s, _ = begin(policy("gateway-error"))
    assert [s.would_retry_headers(code, []) for code in (500, 502, 503, 504)] == [False, True, True, True]
    s, _ = begin(policy("retriable-4xx"))
    assert s.would_retry_headers(409, []) and not s.would_retry_headers(400, [])


def test_envoy_ratelimited_header_only_with_its_token():
    # A response with x-envoy-ratelimited is retried only under envoy-ratelimited.
    limited = [(b"x-envoy-ratelimited", b"true")]
    s, _ = begin(policy("5xx"))
    assert not s.would_retry_headers(503, limited)
    s, _ = begin(policy("envoy-ratelimited"))
    assert s.would_retry_headers(429, limited)


def test_reset_rules():
    s, _ = begin(policy("connect-failure"))
    assert s.would_retry_reset(RESET_CONNECT_FAILURE, False)
    assert not s.would_retry_reset(RESET_CONNECTION_TERMINATION, True)
    s, _ = begin(policy("reset-before-request"))
    assert s.would_retry_reset(RESET_CONNECTION_TERMINATION, False)
    assert not s.would_retry_reset(RESET_CONNECTION_TERMINATION, True)  # bytes already sent
    s, _ = begin(policy("5xx"))  # a reset counts as a 5xx; a per-try timeout is a local reset
    assert s.would_retry_reset(RESET_CONNECTION_TERMINATION, True) and s.would_retry_reset(RESET_LOCAL, True)
    assert not s.would_retry_reset(RESET_OVERFLOW, False)  # never retried
    s, _ = begin(policy("refused-stream"))
    assert s.would_retry_reset(RESET_REFUSED_STREAM, True) and not s.would_retry_reset(RESET_CONNECT_FAILURE, True)


def test_headers_merge_and_max_retries_precedence():
    headers = [(b"x-envoy-retry-on", b"5xx, connect-failure,bogus"), (b"x-envoy-retry-grpc-on", b"cancelled"),
               (b"x-envoy-max-retries", b"4")]
    s, _ = begin(RetryPolicy(num_retries=1), headers)
    assert s.retry_on & RETRY_ON_5XX and s.retry_on & RETRY_ON_CONNECT_FAILURE
    assert s.would_retry_headers(200, [(b"grpc-status", b"1")])
    assert s.retries_remaining == 4  # the header takes precedence over the route
    s, _ = begin(policy("5xx", num_retries=2), [(b"x-envoy-max-retries", b"x")])
    assert s.retries_remaining == 2  # unparsable: ignored


def test_untrusted_headers_are_ignored():
    assert begin(RetryPolicy(), [(b"x-envoy-retry-on", b"5xx")], trusted=False)[0] is None
    s, _ = begin(policy("5xx"), [(b"x-envoy-max-retries", b"9")], trusted=False)
    assert s.retries_remaining == 1


def test_retriable_status_codes_header_adds_codes():
    s, _ = begin(policy("retriable-status-codes", retriable_status_codes=(503,)),
                 [(b"x-envoy-retriable-status-codes", b"418,x,429")])
    assert all(s.would_retry_headers(c, []) for c in (503, 418, 429)) and not s.would_retry_headers(500, [])


def test_retriable_headers_config_and_request_header():
    m = HeaderMatcher(b":status", lambda v: v == b"500", None, False, False)
    s, _ = begin(policy("retriable-headers", retriable_headers=(m,)),
                 [(b"x-envoy-retriable-header-names", b"X-Upstream-Retry, other")])
    assert s.would_retry_headers(500, [])  # :status is visible to matchers
    assert s.would_retry_headers(200, [(b"x-upstream-retry", b"1")])
    assert not s.would_retry_headers(200, [(b"x-nothing", b"1")])


def test_retriable_request_headers_limit_retries():
    only_get = HeaderMatcher(b":method", lambda v: v == b"GET", None, False, False)
    p = policy("5xx", retriable_request_headers=(only_get,))
    assert begin(p, [(b":method", b"POST")])[0] is None
    assert begin(p, [(b":method", b"GET")])[0] is not None


def test_overflow_and_resource_held_until_next_outcome():
    rm = ResourceManager(Thresholds(max_retries=1))
    a, ca = begin(policy("5xx", num_retries=3), resources=rm)
    b, cb = begin(policy("5xx", num_retries=3), resources=rm)
    assert a.should_retry_headers(503, []) == RETRY
    assert rm.retries.count == 1
    assert b.should_retry_headers(503, []) == NO_OVERFLOW  # flag UO
    assert cb.upstream_rq_retry_overflow == 1 and rm.rq_retry_overflow == 1
    assert a.should_retry_headers(200, []) == NO  # the retried attempt succeeded
    assert ca.upstream_rq_retry_success == 1 and rm.retries.count == 0
    assert b.should_retry_headers(503, []) == RETRY
    b.finish()
    assert rm.retries.count == 0


def test_backoff_defaults_and_attempts():
    class MaxRandom:
        def getrandbits(self, k):
            return 25 * 1024 * 1000 - 1  # one below a multiple of every window: window - 1

    s, _ = begin(policy("5xx", num_retries=5), rng=MaxRandom())
    delays = []
    for _ in range(5):
        assert s.should_retry_headers(503, []) == RETRY
        delays.append(s.next_backoff())
        s.start_attempt()
    assert delays == pytest.approx([0.024, 0.049, 0.099, 0.199, 0.249])  # 25 ms base, 250 ms cap
    assert s.attempt_count == 6
    assert s.should_retry_headers(503, []) == NO_LIMIT


def test_previous_hosts_predicate():
    s, _ = begin(policy("5xx", previous_hosts=True, host_selection_max_attempts=3))
    a, b = object(), object()
    s.on_host_attempted(a)
    picks = iter([a, a, b])
    assert s.choose_host(lambda: next(picks)) is b
    picks = iter([a] * 10)
    assert s.choose_host(lambda: next(picks)) is a  # gives up after 1 + 3 picks: the last one
    s2, _ = begin(policy("5xx"))
    s2.on_host_attempted(a)
    assert not s2.should_select_another_host(a)


def test_buffer_limit_abandons_retry():
    s, c = begin(policy("5xx"))
    assert s.on_body(10, 16) and not s.on_body(10, 16)
    assert c.retry_or_shadow_abandoned == 1
    assert s.should_retry_headers(503, []) == NO
    assert retry_buffer_limit(1 << 20, None) == 1 << 20 and retry_buffer_limit(1 << 20, 4096) == 4096


def test_per_try_timeout_rules():
    assert per_try_timeout(0.5, None, 15.0) == 0.5
    assert per_try_timeout(0.5, b"200", 15.0) == 0.2  # trusted header wins
    assert per_try_timeout(0.5, b"bad", 15.0) == 0.5
    assert per_try_timeout(20.0, None, 15.0) == 0.0  # not below the route timeout: dropped
    assert per_try_timeout(20.0, None, 0.0) == 20.0  # no route timeout
    assert expected_timeout_ms(15.0, 0.0) == 15000 and expected_timeout_ms(15.0, 0.2) == 200
    assert expected_timeout_ms(1.0, 0.0, elapsed=2.0) == 1


GRPC_CODES = {"cancelled": 1, "deadline-exceeded": 4, "resource-exhausted": 8, "internal": 13, "unavailable": 14}
TRAILERS_ONLY = [(b"content-type", b"application/grpc")]


@pytest.mark.parametrize("token,code", sorted(GRPC_CODES.items()))
def test_grpc_conditions_read_grpc_status_of_the_response_headers(token, code):
    s, _ = begin(policy(token, num_retries=5))
    for other in range(17):  # each token retries its own code only
        headers = [*TRAILERS_ONLY, (b"grpc-status", b"%d" % other), (b"grpc-message", b"x")]
        assert s.would_retry_headers(200, headers) == (other == code), other
    s, _ = begin(RetryPolicy(), [(b"x-envoy-retry-grpc-on", token.encode())])  # the request header too
    assert s.should_retry_headers(200, [*TRAILERS_ONLY, (b"grpc-status", b"%d" % code)]) == RETRY


def test_grpc_status_rule_as_envoy():
    # Envoy's wouldRetryFromHeaders reads Grpc::Common::getGrpcStatus(response_headers): any HTTP
    # status, with or without content-type; a status in trailers (a normal gRPC reply) is never seen.
    s, _ = begin(policy("unavailable", num_retries=5))
    assert s.would_retry_headers(503, [(b"grpc-status", b"14")])
    assert s.would_retry_headers(200, [(b"grpc-status", b" 14 ")])  # SimpleAtoi allows blanks
    for bad in (b"", b"x", b"-14", b"14x", b"17", b"1400"):  # empty: none; else InvalidCode
        assert not s.would_retry_headers(200, [(b"grpc-status", bad)]), bad
    assert not s.would_retry_headers(200, TRAILERS_ONLY)  # no grpc-status: a streaming reply
    assert not s.would_retry_headers(503, [])  # an HTTP 5xx is not a gRPC condition
    s, _ = begin(policy("5xx"))
    assert not s.would_retry_headers(200, [(b"grpc-status", b"14")])  # gRPC codes need gRPC tokens
    s, _ = begin(policy("unavailable,retriable-status-codes", retriable_status_codes=(503,)))
    assert s.would_retry_headers(503, []) and s.would_retry_headers(200, [(b"grpc-status", b"14")])
