"""Checks on route targets shared by VirtualService routes, mirrors and Sidecar egress proxies.

Ports of Istio's validateDestination, validateSubsetName, validatePortSelector and
validateWeight.
"""

from __future__ import annotations

from ..errors import FieldError, at
from ..models.common import PortSelector
from ..models.virtualservice import Destination
from .domains import is_dns1123_label_any_case, validate_wildcard_domain
from .network import validate_port


def validate_destination(destination: Destination | None) -> list[str]:
    """A service host (not the bare ``*``), a DNS-label subset and a valid port."""
    if destination is None:
        return []
    errs: list[str] = []
    if destination.host == "*":
        errs.append(FieldError(f"invalid destination host {destination.host}", ("host",)))
    else:
        errs += at(("host",), validate_wildcard_domain(destination.host))
    if destination.subset:
        errs += at(("subset",), validate_subset_name(destination.subset))
    if destination.port is not None:
        errs += at(("port",), validate_port_selector(destination.port))
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
