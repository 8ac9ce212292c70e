"""ACK/NACK bookkeeping for one type: a pure object, no gRPC, no clock."""

from __future__ import annotations

from pilotfish.xds.state import TypeState
from pilotfish.xds.type_urls import CLUSTER, ENDPOINT, ROUTE


def test_first_request_carries_node_and_no_version() -> None:
    st = TypeState(CLUSTER, wildcard=True)
    spec = st.subscribe()
    assert (spec.names, spec.version, spec.nonce, spec.with_node) == ((), "", "", True)
    assert not st.subscribe().with_node  # the node goes once per type and stream


def test_ack_and_nack() -> None:
    st = TypeState(ROUTE)
    st.set_names({"r1"})
    st.subscribe()
    st.on_response("1", "n1")
    ack = st.ack("1")
    assert (ack.version, ack.nonce, ack.error, ack.names) == ("1", "n1", None, ("r1",))
    st.on_response("2", "n2")
    nack = st.nack("2", "bad")
    assert (nack.version, nack.nonce, nack.error) == ("1", "n2", "bad")  # previous accepted version
    assert st.version == "1" and st.rejected == ("2", "bad")
    st.on_response("3", "n3")
    assert st.ack("3").version == "3" and st.rejected is None


def test_subscription_changes_only_when_names_change() -> None:
    st = TypeState(ENDPOINT)
    assert st.set_names({"a"}) is None  # not started: the first subscribe sends them
    st.subscribe()
    st.on_response("1", "n1")
    st.ack("1")
    assert st.set_names({"a"}) is None
    spec = st.set_names({"a", "b"})
    assert spec is not None and spec.names == ("a", "b") and spec.nonce == "n1" and spec.version == "1"


def test_reconnect_resends_last_accepted_version_without_nonce() -> None:
    st = TypeState(CLUSTER, wildcard=True)
    st.subscribe()
    st.on_response("7", "n7")
    st.ack("7")
    st.reset_stream()
    spec = st.subscribe()
    assert (spec.version, spec.nonce, spec.with_node) == ("7", "", True)
