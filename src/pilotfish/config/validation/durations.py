"""Durations as Istio's webhook and the CRDs' CEL rules check them.

Istio wants whole milliseconds of at least 1ms (ValidateDuration); most CRD duration fields
add the CEL rule ``duration(self) >= duration('1ms')``, reported with the API server's wording.
"""

from __future__ import annotations

from ..duration import Duration

ONE_MS = Duration(1_000_000)
CEL_DURATION_MESSAGE = "must be a valid duration greater than 1ms"


def validate_duration(d: Duration | None) -> list[str]:
    """Istio: at least 1ms, and whole milliseconds."""
    if d is None:
        return []
    if d.nanos % 1_000_000 != 0:
        return ["only durations to ms precision are supported"]
    if d.nanos < 1_000_000:
        return ["duration must be greater than 1ms"]
    return []


def check_duration(d: Duration | None, path: str) -> list[str]:
    """Istio's ValidateDuration plus the CRD's CEL rule ``duration(self) >= duration('1ms')``."""
    if d is None:
        return []
    errs = validate_duration(d)
    if d < ONE_MS:
        errs.append(f'{path}: Invalid value: "string": {CEL_DURATION_MESSAGE}')
    return errs


def cel_duration(d: Duration | None, path: str) -> list[str]:
    """Only the CRD's CEL rule, for durations Istio's webhook does not check itself."""
    if d is not None and d < ONE_MS:
        return [f'{path}: Invalid value: "string": {CEL_DURATION_MESSAGE}']
    return []
