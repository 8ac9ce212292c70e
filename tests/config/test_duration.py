"""Go-style durations: parsing, formatting, and the round trip between them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pilotfish.config.duration import Duration, DurationError, format_duration, parse_duration_ns


@pytest.mark.parametrize(
    "text,nanos",
    [
        ("1h2m3.5s", 3723_500_000_000),
        ("500ms", 500_000_000),
        ("0.5s", 500_000_000),
        ("1.5us", 1_500),
        ("10ns", 10),
        ("2.000000005s", 2_000_000_005),
        ("0", 0),
        ("-1s", -1_000_000_000),
        (".5s", 500_000_000),
        ("1m30s", 90_000_000_000),
    ],
)
def test_parses_go_durations(text: str, nanos: int) -> None:
    assert parse_duration_ns(text) == nanos


@pytest.mark.parametrize("text", ["", "1", "1x", "s", "1.s.", "abc", "1h 2m", "--1s"])
def test_rejects_malformed(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration_ns(text)


def test_formats_like_protobuf_json() -> None:
    assert format_duration(1_500_000_000) == "1.500s"
    assert format_duration(2_000_000_005) == "2.000000005s"
    assert format_duration(3_000_000_000) == "3s"
    assert str(Duration.parse("1m")) == "60s"


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_format_then_parse_is_identity(nanos: int) -> None:
    assert parse_duration_ns(format_duration(nanos)) == nanos


@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=10_000), st.sampled_from(["h", "m", "s", "ms", "us", "ns"])),
        min_size=1,
        max_size=6,
    )
)
def test_sum_of_parts(parts: list[tuple[int, str]]) -> None:
    scale = {"h": 3600 * 10**9, "m": 60 * 10**9, "s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
    text = "".join(f"{n}{u}" for n, u in parts)
    assert parse_duration_ns(text) == sum(n * scale[u] for n, u in parts)
