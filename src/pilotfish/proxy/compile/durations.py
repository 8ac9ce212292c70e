"""protobuf Duration → float seconds."""

from __future__ import annotations

from typing import Any


def seconds(d: Any) -> float:
    return d.seconds + d.nanos / 1e9
