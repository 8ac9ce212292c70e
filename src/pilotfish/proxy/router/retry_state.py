"""Retries as Envoy's router does them: a compiled RetryPolicy per route, a RetryState per request.

``RetryPolicy`` is built once from envoy.config.route.v3.RetryPolicy (compile/resilience.py).
``RetryPolicy.begin()`` merges the request's x-envoy-* retry headers the way
RetryStateImpl's constructor does and returns a ``RetryState``, or None when this request
can never be retried (then nothing is buffered). The state answers, per attempt outcome,
RETRY / NO / NO_OVERFLOW (flag UO) / NO_LIMIT (flag URX), holds one ``retries`` unit of the
cluster's ResourceManager from a RETRY until the next outcome (as Envoy), and hands out the
jittered back-off delay. No clock, no I/O: the request path arms its own timer.

Header trust (Envoy's ConnectionManagerUtility::cleanInternalHeaders): x-envoy-retry-on,
x-envoy-retry-grpc-on, x-envoy-max-retries, x-envoy-retriable-status-codes,
x-envoy-retriable-header-names and x-envoy-upstream-rq-per-try-timeout-ms are honoured only
on internal requests; pass ``trusted=False`` for external ones. Either way the router removes
them before forwarding (``RETRY_REQUEST_HEADERS``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...xds.backoff import DEFAULT_BASE_MS, JitteredExponentialBackOff, RandomSource
from ..upstream.circuit_breaker import ResourceManager
from .route_table import HeaderMatcher

Headers = Sequence[tuple[bytes, bytes]]

# retry_on bits (Envoy's RetryPolicy::RETRY_ON_*)
RETRY_ON_5XX = 1 << 0
RETRY_ON_GATEWAY_ERROR = 1 << 1
RETRY_ON_CONNECT_FAILURE = 1 << 2
RETRY_ON_RETRIABLE_4XX = 1 << 3
RETRY_ON_REFUSED_STREAM = 1 << 4
RETRY_ON_GRPC_CANCELLED = 1 << 5
RETRY_ON_GRPC_DEADLINE_EXCEEDED = 1 << 6
RETRY_ON_GRPC_RESOURCE_EXHAUSTED = 1 << 7
RETRY_ON_GRPC_UNAVAILABLE = 1 << 8
RETRY_ON_GRPC_INTERNAL = 1 << 9
RETRY_ON_RETRIABLE_STATUS_CODES = 1 << 10
RETRY_ON_RESET = 1 << 11
RETRY_ON_RETRIABLE_HEADERS = 1 << 12
RETRY_ON_ENVOY_RATE_LIMITED = 1 << 13
RETRY_ON_HTTP3_POST_CONNECT_FAILURE = 1 << 14
RETRY_ON_RESET_BEFORE_REQUEST = 1 << 15
_GRPC_BITS = (RETRY_ON_GRPC_CANCELLED | RETRY_ON_GRPC_DEADLINE_EXCEEDED | RETRY_ON_GRPC_RESOURCE_EXHAUSTED
              | RETRY_ON_GRPC_UNAVAILABLE | RETRY_ON_GRPC_INTERNAL)

RETRY_ON_TOKENS = {
    "5xx": RETRY_ON_5XX, "gateway-error": RETRY_ON_GATEWAY_ERROR, "connect-failure": RETRY_ON_CONNECT_FAILURE,
    "envoy-ratelimited": RETRY_ON_ENVOY_RATE_LIMITED, "retriable-4xx": RETRY_ON_RETRIABLE_4XX,
    "refused-stream": RETRY_ON_REFUSED_STREAM, "retriable-status-codes": RETRY_ON_RETRIABLE_STATUS_CODES,
    "retriable-headers": RETRY_ON_RETRIABLE_HEADERS, "reset": RETRY_ON_RESET,
    "reset-before-request": RETRY_ON_RESET_BEFORE_REQUEST,
    "http3-post-connect-failure": RETRY_ON_HTTP3_POST_CONNECT_FAILURE,
}
GRPC_RETRY_ON_TOKENS = {
    "cancelled": RETRY_ON_GRPC_CANCELLED, "deadline-exceeded": RETRY_ON_GRPC_DEADLINE_EXCEEDED,
    "internal": RETRY_ON_GRPC_INTERNAL, "resource-exhausted": RETRY_ON_GRPC_RESOURCE_EXHAUSTED,
    "unavailable": RETRY_ON_GRPC_UNAVAILABLE,
}
_GRPC_STATUS_BIT = {1: RETRY_ON_GRPC_CANCELLED, 4: RETRY_ON_GRPC_DEADLINE_EXCEEDED,
                    8: RETRY_ON_GRPC_RESOURCE_EXHAUSTED, 13: RETRY_ON_GRPC_INTERNAL,
                    14: RETRY_ON_GRPC_UNAVAILABLE}

# Why an attempt ended without a response head (a subset of Envoy's StreamResetReason).
RESET_CONNECT_FAILURE = "connect_failure"  # local/remote connection failure, connect timeout
RESET_CONNECTION_TERMINATION = "connection_termination"
RESET_REMOTE = "remote_reset"
RESET_REFUSED_STREAM = "remote_refused_stream_reset"
RESET_LOCAL = "local_reset"  # a per-try timeout or per-try idle timeout
RESET_OVERFLOW = "overflow"  # a circuit breaker: never retried
RESET_PROTOCOL_ERROR = "protocol_error"

# Outcomes of should_retry_* (Envoy's RetryStatus).
NO, RETRY, NO_OVERFLOW, NO_LIMIT = range(4)

RETRY_REQUEST_HEADERS = frozenset({
    b"x-envoy-retry-on", b"x-envoy-retry-grpc-on", b"x-envoy-max-retries",
    b"x-envoy-retriable-status-codes", b"x-envoy-retriable-header-names",
    b"x-envoy-upstream-rq-per-try-timeout-ms", b"x-envoy-hedge-on-per-try-timeout",
})


def parse_retry_on(value: str) -> int:
    """Both token lists (RetryPolicyImpl parses retry_on with each); unknown tokens are ignored,
    as Envoy does."""
    bits = 0
    for token in value.split(","):
        token = token.strip()
        bits |= RETRY_ON_TOKENS.get(token, 0) | GRPC_RETRY_ON_TOKENS.get(token, 0)
    return bits


def _parse_tokens(value: bytes, table: dict[str, int]) -> int:
    bits = 0
    for token in value.decode("latin-1").split(","):
        bits |= table.get(token.strip(), 0)
    return bits


def _uint(value: bytes) -> int | None:
    """absl::SimpleAtoi into an unsigned value: digits only (surrounding blanks allowed)."""
    v = value.strip()
    return int(v) if v.isdigit() else None


def retry_buffer_limit(connection_limit: int, route_limit: int | None) -> int:
    """Bytes of request body the router keeps for a retry: the downstream connection's buffer
    limit (listener ``per_connection_buffer_limit_bytes``, 1 MiB by default) capped by the
    route's or virtual host's ``per_request_buffer_limit_bytes``. A body larger than this
    abandons the retry (Envoy's ``retry_or_shadow_abandoned``)."""
    return connection_limit if route_limit is None else min(connection_limit, route_limit)


def per_try_timeout(policy_timeout: float, header: bytes | None, global_timeout: float) -> float:
    """The per-try timeout in seconds (0 = none), as FilterUtility::finalTimeout: the trusted
    x-envoy-upstream-rq-per-try-timeout-ms header wins when it parses; a per-try timeout that is
    not shorter than a non-zero route timeout is dropped."""
    value = policy_timeout
    if header is not None:
        ms = _uint(header)
        if ms is not None:
            value = ms / 1000.0
    if global_timeout and value >= global_timeout:
        return 0.0
    return value


def expected_timeout_ms(global_timeout: float, per_try: float, elapsed: float = 0.0) -> int:
    """x-envoy-expected-rq-timeout-ms for an attempt (0: send none), as setTimeoutHeaders."""
    expected = int(per_try * 1000) or int(global_timeout * 1000)
    global_ms = int(global_timeout * 1000)
    elapsed_ms = int(elapsed * 1000)
    if expected and global_ms:
        expected = 1 if elapsed_ms >= global_ms else min(expected, global_ms - elapsed_ms)
    return expected


class RetryCounters:
    """The cluster stats a RetryState moves (Envoy names, under ``cluster.<name>.``)."""

    __slots__ = ("upstream_rq_retry", "upstream_rq_retry_success", "upstream_rq_retry_overflow",
                 "upstream_rq_retry_limit_exceeded", "upstream_rq_retry_backoff_exponential",
                 "retry_or_shadow_abandoned")

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retry_on: int = 0
    num_retries: int = 1
    per_try_timeout: float = 0.0  # seconds, 0 = none
    per_try_idle_timeout: float = 0.0
    base_interval_ms: int = DEFAULT_BASE_MS
    max_interval_ms: int = 0  # 0: ten times the base
    retriable_status_codes: tuple[int, ...] = ()
    retriable_headers: tuple[HeaderMatcher, ...] = ()
    retriable_request_headers: tuple[HeaderMatcher, ...] = ()
    previous_hosts: bool = False  # envoy.retry_host_predicates.previous_hosts
    host_selection_max_attempts: int = 1
    per_try_timers: bool = field(default=False, init=False)  # per_try_timeout or per_try_idle_timeout

    def __post_init__(self) -> None:
        object.__setattr__(self, "per_try_timers", bool(self.per_try_timeout or self.per_try_idle_timeout))

    def begin(self, headers: Headers, resources: ResourceManager, rng: RandomSource,
              counters: Any, trusted: bool = True) -> RetryState | None:
        """The request's RetryState, or None when it cannot be retried (nothing to buffer)."""
        retry_on = self.retry_on
        max_retries = codes_hdr = names_hdr = None
        if trusted:
            for name, value in headers:
                if name[:8] != b"x-envoy-":
                    continue
                if name == b"x-envoy-retry-on":
                    retry_on |= _parse_tokens(value, RETRY_ON_TOKENS)
                elif name == b"x-envoy-retry-grpc-on":
                    retry_on |= _parse_tokens(value, GRPC_RETRY_ON_TOKENS)
                elif name == b"x-envoy-max-retries":
                    max_retries = value
                elif name == b"x-envoy-retriable-status-codes":
                    codes_hdr = value
                elif name == b"x-envoy-retriable-header-names":
                    names_hdr = value
        if not retry_on:
            return None
        if self.retriable_request_headers and not any(
                m.matches(headers) for m in self.retriable_request_headers):  # type: ignore[arg-type]
            return None  # the route limits retries to matching requests
        remaining = self.num_retries
        if max_retries is not None:
            n = _uint(max_retries)
            if n is not None:
                remaining = n  # the header takes precedence
        codes = self.retriable_status_codes
        if codes_hdr is not None:
            codes += tuple(n for n in (_uint(c) for c in codes_hdr.split(b",")) if n is not None)
        matchers = self.retriable_headers
        if names_hdr is not None:  # name-only matchers: the header must be present
            matchers += tuple(HeaderMatcher(n.strip().lower(), None, True, False, False)
                              for n in names_hdr.split(b",") if n.strip())
        max_ms = self.max_interval_ms or self.base_interval_ms * 10
        backoff = JitteredExponentialBackOff(self.base_interval_ms, max_ms, rng)
        return RetryState(self, retry_on, remaining, codes, matchers, backoff, resources, counters)


class RetryState:
    __slots__ = ("policy", "retry_on", "retries_remaining", "status_codes", "header_matchers",
                 "backoff", "resources", "counters", "attempt_count", "holding", "attempted",
                 "buffered", "abandoned")

    def __init__(self, policy: RetryPolicy, retry_on: int, remaining: int, status_codes: tuple[int, ...],
                 header_matchers: tuple[HeaderMatcher, ...], backoff: JitteredExponentialBackOff,
                 resources: ResourceManager, counters: Any) -> None:
        self.policy = policy
        self.retry_on = retry_on
        self.retries_remaining = remaining
        self.status_codes = status_codes
        self.header_matchers = header_matchers
        self.backoff = backoff
        self.resources = resources
        self.counters = counters
        self.attempt_count = 1  # x-envoy-attempt-count of the current attempt
        self.holding = False  # one unit of the cluster's retries resource
        self.attempted: list[Any] | None = [] if policy.previous_hosts else None
        self.buffered = 0
        self.abandoned = False

    # ---- decisions ---------------------------------------------------------------------
    def would_retry_headers(self, status: int, headers: Headers) -> bool:
        """Envoy's wouldRetryFromHeaders (no budget or count checks). The gRPC conditions read
        ``grpc-status`` of the response headers, i.e. a trailers-only reply (a status sent in
        trailers is never retried), whatever the HTTP status or content-type, as Envoy's
        ``Grpc::Common::getGrpcStatus(response_headers)``; a code that is not a number from 0
        to 16 matches none."""
        retry_on = self.retry_on
        for name, _ in headers:
            if name == b"x-envoy-ratelimited":  # from an upstream Envoy: only envoy-ratelimited
                return bool(retry_on & RETRY_ON_ENVOY_RATE_LIMITED)
        if retry_on & RETRY_ON_5XX and 500 <= status < 600:
            return True
        if retry_on & RETRY_ON_GATEWAY_ERROR and 502 <= status <= 504:
            return True
        if retry_on & RETRY_ON_RETRIABLE_4XX and status == 409:
            return True
        if retry_on & RETRY_ON_RETRIABLE_STATUS_CODES and status in self.status_codes:
            return True
        if retry_on & RETRY_ON_RETRIABLE_HEADERS and self.header_matchers:
            with_status = [(b":status", b"%d" % status), *headers]
            if any(m.matches(with_status) for m in self.header_matchers):
                return True
        if retry_on & _GRPC_BITS:
            for name, value in headers:
                if name == b"grpc-status":
                    code = _uint(value)
                    return code is not None and bool(retry_on & _GRPC_STATUS_BIT.get(code, 0))
        return False

    def would_retry_reset(self, reason: str, request_started: bool) -> bool:
        """Envoy's wouldRetryFromReset (no HTTP/3)."""
        if reason == RESET_OVERFLOW:
            return False
        retry_on = self.retry_on
        if reason == RESET_CONNECT_FAILURE and retry_on & RETRY_ON_CONNECT_FAILURE:
            return True
        if retry_on & RETRY_ON_RESET_BEFORE_REQUEST and not request_started:
            return True  # only while no byte went upstream
        if retry_on & (RETRY_ON_RESET | RETRY_ON_5XX | RETRY_ON_GATEWAY_ERROR):
            return True  # a reset counts as a 5xx
        return bool(retry_on & RETRY_ON_REFUSED_STREAM and reason == RESET_REFUSED_STREAM)

    def should_retry_headers(self, status: int, headers: Headers) -> int:
        """For a response head: RETRY, NO, NO_OVERFLOW (flag UO) or NO_LIMIT (flag URX)."""
        return self._should_retry(self.would_retry_headers(status, headers))

    def should_retry_reset(self, reason: str, request_started: bool) -> int:
        """For an attempt that ended without a response head (a per-try timeout is RESET_LOCAL:
        retried under reset, 5xx and gateway-error)."""
        return self._should_retry(self.would_retry_reset(reason, request_started))

    def _should_retry(self, would_retry: bool) -> int:
        counters = self.counters
        if self.holding and not would_retry:
            counters.upstream_rq_retry_success += 1  # the earlier retry worked
        self._release()
        if not would_retry or self.abandoned:
            return NO
        if self.retries_remaining == 0:
            counters.upstream_rq_retry_limit_exceeded += 1
            return NO_LIMIT
        self.retries_remaining -= 1
        if not self.resources.try_retry():
            counters.upstream_rq_retry_overflow += 1
            return NO_OVERFLOW
        self.holding = True
        counters.upstream_rq_retry += 1
        counters.upstream_rq_retry_backoff_exponential += 1
        return RETRY

    # ---- carrying out a retry ------------------------------------------------------------
    def next_backoff(self) -> float:
        """Seconds to wait before the retry just granted."""
        return self.backoff.next_backoff()

    def start_attempt(self) -> int:
        """The back-off elapsed: the new attempt's number (for x-envoy-attempt-count)."""
        self.attempt_count += 1
        return self.attempt_count

    def on_host_attempted(self, host: Any) -> None:
        if self.attempted is not None:
            self.attempted.append(host)

    def should_select_another_host(self, host: Any) -> bool:
        attempted = self.attempted
        return attempted is not None and any(h is host for h in attempted)

    def choose_host(self, choose: Callable[[], Any]) -> Any:
        """Envoy's LoadBalancerBase::chooseHost loop: up to host_selection_retry_max_attempts
        re-picks while the retry host predicate rejects the host; the last pick otherwise."""
        host = None
        for _ in range(self.policy.host_selection_max_attempts + 1):
            host = choose()
            if host is None or not self.should_select_another_host(host):
                return host
        return host

    def on_body(self, nbytes: int, limit: int) -> bool:
        """Count request body kept for a retry; False once over ``limit``: the retry is given
        up (``retry_or_shadow_abandoned``) and nothing more needs buffering. When that happens
        while waiting for a back-off, Envoy answers 507 "exceeded request buffer limit while
        retrying upstream"."""
        if self.abandoned:
            return False
        self.buffered += nbytes
        if self.buffered > limit:
            self.abandoned = True
            self.counters.retry_or_shadow_abandoned += 1
            self._release()
            return False
        return True

    def finish(self) -> None:
        """The request is over: give back a held retry unit."""
        self._release()

    def _release(self) -> None:
        if self.holding:
            self.holding = False
            self.resources.retries.dec()
