"""FaultPolicy: Envoy's fault filter decisions with an injected random source."""

import random

from pilotfish.proxy.filters.fault import (
    NO_FAULT, ActiveFaults, AbortSpec, DelaySpec, FaultPolicy, resolve,
)
from pilotfish.proxy.common.fractional import MILLION, Fraction
from pilotfish.proxy.router.route_table import HeaderMatcher


class Seq:
    """Scripted 64-bit draws."""

    def __init__(self, *values):
        self.values = list(values)

    def getrandbits(self, k):
        return self.values.pop(0)


ALWAYS = Fraction(100)


def test_fixed_delay_and_abort():
    p = FaultPolicy(delay=DelaySpec(2.0, ALWAYS), abort=AbortSpec(503, None, ALWAYS))
    assert p.decide([], "c", Seq(0, 0)) == (2.0, 503, None)


def test_percentage_sampling_is_random_mod_denominator():
    p = FaultPolicy(abort=AbortSpec(503, None, Fraction(50)))
    assert p.decide([], "c", Seq(49)).http_status == 503
    assert p.decide([], "c", Seq(50)) == NO_FAULT
    assert p.decide([], "c", Seq(149)).http_status == 503


def test_istio_percentage_one_in_a_thousand():
    # Istio's `percentage: {value: 0.1}` becomes 1000/MILLION: one request in a thousand.
    p = FaultPolicy(abort=AbortSpec(500, None, Fraction(1000, MILLION)))
    rng = random.Random(3)
    hits = sum(p.decide([], "c", rng) != NO_FAULT for _ in range(200_000))
    assert 150 < hits < 250


def test_unset_percentage_never_fires():
    p = FaultPolicy(abort=AbortSpec(503, None, Fraction()))
    assert p.decide([], "c", random.Random(1)) == NO_FAULT


def test_grpc_abort_answers_200_with_grpc_status():
    p = FaultPolicy(abort=AbortSpec(None, 14, ALWAYS))
    assert p.decide([], "c", Seq(0)) == (None, 200, 14)


def test_zero_delay_is_no_delay():
    assert FaultPolicy(delay=DelaySpec(0.0, ALWAYS)).decide([], "c", Seq(0)) == NO_FAULT


def test_header_controlled_faults():
    p = FaultPolicy(delay=DelaySpec(None, ALWAYS), abort=AbortSpec(None, None, ALWAYS, header=True))
    h = [(b"x-envoy-fault-delay-request", b"150"), (b"x-envoy-fault-abort-request", b"429")]
    assert p.decide(h, "c", Seq(0, 0)) == (0.15, 429, None)
    h = [(b"x-envoy-fault-abort-request", b"700"), (b"x-envoy-fault-abort-grpc-request", b"4")]
    assert p.decide(h, "c", Seq(0, 0)) == (None, 200, 4)  # invalid HTTP status: the gRPC one
    assert p.decide([], "c", Seq(0, 0)) == NO_FAULT  # no headers: nothing


def test_header_percentage_can_only_lower():
    p = FaultPolicy(abort=AbortSpec(None, None, Fraction(50), header=True))
    h = [(b"x-envoy-fault-abort-request", b"503"), (b"x-envoy-fault-abort-request-percentage", b"10")]
    assert p.decide(h, "c", Seq(9)).http_status == 503
    assert p.decide(h, "c", Seq(10)) == NO_FAULT
    h[1] = (b"x-envoy-fault-abort-request-percentage", b"90")
    assert p.decide(h, "c", Seq(60)) == NO_FAULT  # capped at the configured 50


def test_targeting_cluster_nodes_and_headers():
    p = FaultPolicy(abort=AbortSpec(503, None, ALWAYS), upstream_cluster="a",
                    downstream_nodes=frozenset({b"n1"}),
                    headers=(HeaderMatcher(b"x-test", None, True, False, False),))
    h = [(b"x-envoy-downstream-service-node", b"n1"), (b"x-test", b"1")]
    assert p.decide(h, "a", Seq(0)).http_status == 503
    assert p.decide(h, "b", Seq(0)) == NO_FAULT
    assert p.decide(h[:1], "a", Seq(0)) == NO_FAULT
    assert p.decide(h[1:], "a", Seq(0)) == NO_FAULT


def test_max_active_faults():
    active = ActiveFaults()
    p = FaultPolicy(delay=DelaySpec(1.0, ALWAYS), max_active_faults=1)
    assert p.decide([], "c", Seq(0), active).delay == 1.0
    assert p.decide([], "c", Seq(0), active) == NO_FAULT
    assert active.overflow == 1 and active.delays_injected == 1
    active.release()
    assert p.decide([], "c", Seq(0), active).delay == 1.0
    assert dict((n, v) for n, v, _ in active.values())["fault.active_faults"] == 1


def test_route_override_replaces_whole():
    f, r = FaultPolicy(), FaultPolicy(upstream_cluster="x")
    assert resolve(f, r) is r and resolve(f, None) is f


def test_fault_flags_render_in_envoy_order():
    from pilotfish.proxy.common.response_flags import DI, FI, NR, UO, flags_string

    assert flags_string(DI | FI) == "DI,FI" and flags_string(FI | UO | NR) == "UO,NR,FI"
