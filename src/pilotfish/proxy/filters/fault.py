"""Envoy's HTTP fault filter (envoy.filters.http.fault) as a decision over a request head.

``FaultPolicy.decide()`` answers, for one request, the delay to inject and the abort to answer
with, sampling each percentage with the injected random source the way Envoy's
``featureEnabled`` does (``random % denominator < numerator``). The request path arms the delay
timer, answers the abort (local reply; for gRPC a trailers-only reply with ``grpc-status``)
and records the flags DI (delay) and FI (abort) of access_log.py.

Header-controlled faults (``header_delay`` / ``header_abort``) read x-envoy-fault-delay-request
(milliseconds), x-envoy-fault-abort-request (HTTP status 200-599) and
x-envoy-fault-abort-grpc-request; their percentage may be lowered, never raised, by
x-envoy-fault-delay-request-percentage / x-envoy-fault-abort-request-percentage. Only the first
value of each header counts.

Runtime keys (layered_runtime.py; ``fault.http.abort.abort_percent`` and the other ``*_runtime``
defaults) are resolved when the filter is compiled: a value there replaces the configured
percentage, delay, status or ``max_active_faults`` as Envoy's ``featureEnabled``/``getInteger``
would. A request carrying ``x-envoy-downstream-service-cluster: C`` reads the
``fault.http.C.*`` keys instead, as Envoy does; the policies for it are compiled too
(``by_downstream``), and the header is looked up only when the runtime makes it matter.

``max_active_faults`` is a shared ``ActiveFaults`` counter per filter config: a request takes
one slot when it gets any fault and gives it back when its delay ends without an abort, or when
it ends (``ActiveFaults.release``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ...xds.backoff import RandomSource
from ..common.fractional import Fraction
from ..router.route_table import HeaderMatcher

Headers = Sequence[tuple[bytes, bytes]]


DELAY_HEADER = b"x-envoy-fault-delay-request"
DELAY_PERCENTAGE_HEADER = b"x-envoy-fault-delay-request-percentage"
ABORT_HEADER = b"x-envoy-fault-abort-request"
ABORT_GRPC_HEADER = b"x-envoy-fault-abort-grpc-request"
ABORT_PERCENTAGE_HEADER = b"x-envoy-fault-abort-request-percentage"
DOWNSTREAM_NODE_HEADER = b"x-envoy-downstream-service-node"
DOWNSTREAM_CLUSTER_HEADER = b"x-envoy-downstream-service-cluster"


@dataclass(frozen=True, slots=True)
class DelaySpec:
    fixed: float | None  # seconds; None: header-controlled
    percentage: Fraction
    # header-controlled only, from runtime: the percentage replaces the header's, and the delay
    # (seconds) the header's value when the header asks for one
    runtime_percentage: bool = False
    runtime_delay: float | None = None


@dataclass(frozen=True, slots=True)
class AbortSpec:
    http_status: int | None  # fixed HTTP status
    grpc_status: int | None  # fixed gRPC status (answered with HTTP 200)
    percentage: Fraction
    header: bool = False  # header_abort
    # header_abort only, from runtime (as DelaySpec's)
    runtime_percentage: bool = False
    runtime_http_status: int | None = None
    runtime_grpc_status: int | None = None


class FaultDecision(NamedTuple):
    delay: float | None  # seconds to hold the request
    http_status: int | None  # abort with this status (200 with grpc_status for gRPC aborts)
    grpc_status: int | None


NO_FAULT = FaultDecision(None, None, None)


class ActiveFaults:
    """``fault.active_faults`` and its overflow counter, shared by the requests of one filter."""

    __slots__ = ("active", "overflow", "delays_injected", "aborts_injected")

    def __init__(self) -> None:
        self.active = self.overflow = self.delays_injected = self.aborts_injected = 0

    def release(self) -> None:
        if self.active > 0:
            self.active -= 1

    def values(self) -> Sequence[tuple[str, int, bool]]:
        return (("fault.delays_injected", self.delays_injected, True),
                ("fault.aborts_injected", self.aborts_injected, True),
                ("fault.faults_overflow", self.overflow, True),
                ("fault.active_faults", self.active, False))


def _first(headers: Headers, name: bytes) -> bytes | None:
    for k, v in headers:
        if k == name:
            return v
    return None


def _uint(value: bytes | None) -> int | None:
    if value is None:
        return None
    v = value.strip()
    return int(v) if v.isdigit() else None


def _percentage(configured: Fraction, headers: Headers, header: bytes) -> Fraction:
    """HeaderPercentageProvider: the header's numerator, capped by the configured one."""
    n = _uint(_first(headers, header))
    if n is None:
        return configured
    return Fraction(min(n, configured.numerator), configured.denominator)


@dataclass(frozen=True, slots=True)
class FaultPolicy:
    delay: DelaySpec | None = None
    abort: AbortSpec | None = None
    upstream_cluster: str = ""
    headers: tuple[HeaderMatcher, ...] = ()
    downstream_nodes: frozenset[bytes] = frozenset()
    max_active_faults: int | None = None
    #: Runtime made x-envoy-downstream-service-cluster matter: (policy by its value, policy for
    #: a value without keys of its own). None: the header changes nothing.
    by_downstream: tuple[Mapping[bytes, FaultPolicy], FaultPolicy] | None = None
    #: Nothing can fire: no delay or abort, or 0% for each (a request header can only lower a
    #: configured percentage). The filter then costs one attribute read per request.
    never: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        d, a = self.delay, self.abort
        never = (d is None or d.percentage.numerator <= 0) and (a is None or a.percentage.numerator <= 0)
        if self.by_downstream is not None:
            by, other = self.by_downstream
            never = never and other.never and all(p.never for p in by.values())
        object.__setattr__(self, "never", never)

    def for_request(self, headers: Headers) -> FaultPolicy:
        """This policy, or the one runtime gives requests from a downstream cluster."""
        by = self.by_downstream
        if by is None:
            return self
        cluster = _first(headers, DOWNSTREAM_CLUSTER_HEADER)
        if cluster is None:
            return self
        return by[0].get(cluster, by[1])

    def decide(self, headers: Headers, cluster: str, rng: RandomSource,
               active: ActiveFaults | None = None) -> FaultDecision:
        """The faults for this request (Envoy's decodeHeaders, with the delay's follow-up abort
        sampled up front: the draws are independent either way)."""
        if self.upstream_cluster and cluster != self.upstream_cluster:
            return NO_FAULT
        if self.downstream_nodes and _first(headers, DOWNSTREAM_NODE_HEADER) not in self.downstream_nodes:
            return NO_FAULT
        for m in self.headers:
            if not m.matches(headers):  # type: ignore[arg-type]
                return NO_FAULT
        delay = self._delay(headers, rng)
        taken = False
        if delay is not None:
            if self._take(active):
                taken = True
                if active is not None:
                    active.delays_injected += 1
            else:
                delay = None
        http_status, grpc_status = self._abort(headers, rng)
        if http_status is not None:
            if taken or self._take(active):
                if active is not None:
                    active.aborts_injected += 1
            else:
                http_status = grpc_status = None
        if delay is None and http_status is None:
            return NO_FAULT
        return FaultDecision(delay, http_status, grpc_status)

    def _take(self, active: ActiveFaults | None) -> bool:
        if active is None:
            return True
        limit = self.max_active_faults
        if limit is not None and active.active >= limit:
            active.overflow += 1
            return False
        active.active += 1
        return True

    def _delay(self, headers: Headers, rng: RandomSource) -> float | None:
        d = self.delay
        if d is None:
            return None
        if d.fixed is not None:
            if not d.percentage.sample(rng):
                return None
            duration = d.fixed
        else:
            pct = d.percentage if d.runtime_percentage else _percentage(d.percentage, headers,
                                                                        DELAY_PERCENTAGE_HEADER)
            if not pct.sample(rng):
                return None
            ms = _uint(_first(headers, DELAY_HEADER))
            if ms is None:
                return None
            duration = ms / 1000.0 if d.runtime_delay is None else d.runtime_delay
        return duration if duration > 0 else None  # only a delay above 0 ms is injected

    def _abort(self, headers: Headers, rng: RandomSource) -> tuple[int | None, int | None]:
        a = self.abort
        if a is None:
            return None, None
        if not a.header:
            if not a.percentage.sample(rng):
                return None, None
            if a.http_status is not None:
                return a.http_status, None
            return 200, a.grpc_status
        pct = a.percentage if a.runtime_percentage else _percentage(a.percentage, headers,
                                                                    ABORT_PERCENTAGE_HEADER)
        if not pct.sample(rng):
            return None, None
        code = _uint(_first(headers, ABORT_HEADER))
        if code is not None and 200 <= code < 600:
            # an HTTP status wins over a gRPC one
            return (code if a.runtime_http_status is None else a.runtime_http_status), None
        grpc = _uint(_first(headers, ABORT_GRPC_HEADER))
        if grpc is not None:
            return 200, (grpc if a.runtime_grpc_status is None else a.runtime_grpc_status)
        return None, None


def resolve(filter_policy: FaultPolicy | None, route_policy: Any) -> FaultPolicy | None:
    """The most specific configuration wins whole: a route's typed_per_filter_config replaces
    the filter's (no field-by-field merge, as Envoy's resolveMostSpecificPerFilterConfig)."""
    return route_policy if route_policy is not None else filter_policy
