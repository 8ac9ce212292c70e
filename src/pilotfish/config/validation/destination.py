"""Checks on route targets shared by VirtualService routes, mirrors and Sidecar egress proxies.

Ports of Istio's validateDestination, validateSubsetName, validatePortSelector,
validateWeight and the duration checks with the CRD's CEL rule on top.
"""

from __future__ import annotations

from ..duration import Duration
from ..models.common import PortSelector
from ..models.virtualservice import Destination
from .common import is_dns1123_label_any_case, validate_duration, validate_port, validate_wildcard_domain

ONE_MS = Duration(1_000_000)
CEL_DURATION_MESSAGE = "must be a valid duration greater than 1ms"


def validate_destination(destination: Destination | None) -> list[str]:
    """A service host (not the bare ``*``), a DNS-label subset and a valid port."""
    if destination is None:
        return []
    errs: list[str] = []
    if destination.host == "*":
        errs.append(f"invalid destination host {destination.host}")
    else:
        errs += validate_wildcard_domain(destination.host)
    if destination.subset:
        errs += validate_subset_name(destination.subset)
    if destination.port is not None:
        errs += validate_port_selector(destination.port)
    return errs


def validate_subset_name(name: str) -> list[str]:
    if not name:
        return ["subset name cannot be empty"]
    if not is_dns1123_label_any_case(name):
        return [f"subset name is invalid: {name}"]
    return []


def validate_port_selector(selector: PortSelector | None) -> list[str]:
    if selector is None:
        return []
    return validate_port(selector.number or 0)


def validate_weight(weight: int | None) -> list[str]:
    if weight is not None and weight < 0:
        return [f"weight {weight} < 0"]
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
