"""Go-style durations ("1h2m3.5s", "500ms", "0.5s") as Istio's API accepts them.

Istio's YAML carries durations as protobuf JSON strings, which are a subset of Go's
``time.ParseDuration`` syntax; users write both. Validation needs nanosecond precision
(Istio rejects durations that are not whole milliseconds), so a ``Duration`` keeps integer
nanoseconds rather than a float or a ``timedelta``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_MAX_NS = (1 << 63) - 1


class DurationError(ValueError):
    """A duration string that Go's time.ParseDuration would refuse."""


@dataclass(frozen=True, order=True, slots=True)
class Duration:
    """A signed span of time in integer nanoseconds."""

    nanos: int

    @classmethod
    def parse(cls, text: str) -> Duration:
        return cls(parse_duration_ns(text))

    @classmethod
    def of(cls, seconds: float = 0, *, ms: float = 0) -> Duration:
        return cls(round(seconds * 1e9 + ms * 1e6))

    @property
    def seconds(self) -> float:
        return self.nanos / 1e9

    @property
    def millis(self) -> float:
        return self.nanos / 1e6

    def __str__(self) -> str:
        return format_duration(self.nanos)

    def __bool__(self) -> bool:
        return self.nanos != 0


def parse_duration_ns(text: str) -> int:
    """Parse a Go duration into nanoseconds; raises DurationError with Go's wording."""
    if not isinstance(text, str):
        raise DurationError(f"invalid duration {text!r}: expected a string like \"1.5s\"")
    s = text.strip()
    if not s:
        raise DurationError('invalid duration "": empty')
    sign = 1
    if s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    pos = 0
    total = 0
    while pos < len(s):
        m = _PART.match(s, pos)
        if not m:
            raise DurationError(f'invalid duration "{text}"' + (": missing unit" if s[pos:].replace(".", "").isdigit() else ""))
        number, unit = m.group(1), m.group(2)
        whole, _, frac = number.partition(".")
        scale = _UNITS_NS[unit]
        value = int(whole or "0") * scale
        if frac:
            value += int(frac) * scale // (10 ** len(frac))
        total += value
        pos = m.end()
    if total > _MAX_NS:
        raise DurationError(f'invalid duration "{text}": out of range')
    return sign * total


def format_duration(nanos: int) -> str:
    """Render nanoseconds as protobuf JSON does: seconds with up to 9 fractional digits."""
    sign = "-" if nanos < 0 else ""
    nanos = abs(nanos)
    secs, frac = divmod(nanos, 1_000_000_000)
    if not frac:
        return f"{sign}{secs}s"
    digits = f"{frac:09d}"
    for width in (3, 6, 9):
        if int(digits[width:] or "0") == 0:
            return f"{sign}{secs}.{digits[:width]}s"
    return f"{sign}{secs}.{digits}s"


def _coerce(value: Any) -> Any:
    if isinstance(value, Duration):
        return value
    if isinstance(value, str):
        return Duration.parse(value)
    if isinstance(value, dict) and set(value) <= {"seconds", "nanos"}:
        return Duration(int(value.get("seconds", 0)) * 1_000_000_000 + int(value.get("nanos", 0)))
    raise DurationError(f"invalid duration {value!r}: expected a string like \"1.5s\" or \"500ms\"")


GoDuration = Annotated[
    Duration,
    PlainValidator(_coerce),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string"}),
]
"""Pydantic field type for an Istio duration."""
