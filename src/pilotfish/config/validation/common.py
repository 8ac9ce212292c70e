"""Checks shared by several kinds (Istio's pkg/config/validation/agent helpers).

Each returns a list of error strings (empty when fine) so callers can prefix them with
the field they came from. Wording follows Istio's so users can search for it.
"""

from __future__ import annotations

import ipaddress
import re

from ..duration import Duration

DNS1123_LABEL_MAX = 63
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_LABEL_ANYCASE = re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def is_dns1123_label(value: str) -> bool:
    return len(value) <= DNS1123_LABEL_MAX and bool(DNS1123_LABEL.match(value))


def validate_dns1123_labels(domain: str) -> list[str]:
    """Every dot-separated label must be a DNS-1123 label (case-insensitive), the last not all digits."""
    parts = domain.split(".")
    if domain.endswith(".") and not parts[-1]:
        parts = parts[:-1]
    top = parts[-1] if parts else ""
    if top and top.isdigit():
        return [f"domain name {domain!r} invalid (top level domain {top!r} cannot be all-numeric)"]
    for label in parts:
        if not (len(label) <= DNS1123_LABEL_MAX and DNS1123_LABEL_ANYCASE.match(label)):
            return [f"domain name {domain!r} invalid (label {label!r} invalid)"]
    return []


def check_dns1123_preconditions(name: str) -> list[str]:
    if len(name) > 255:
        return [f"domain name {name!r} too long (max 255)"]
    if not name:
        return ["empty domain name not allowed"]
    return []


def validate_fqdn(fqdn: str) -> list[str]:
    errs = check_dns1123_preconditions(fqdn)
    if errs:
        return errs
    if fqdn.endswith("."):
        fqdn = fqdn[:-1]
    return validate_dns1123_labels(fqdn)


def validate_wildcard_domain(domain: str) -> list[str]:
    """A host that may start with ``*`` (``*``, ``*.example.com``), but no partial wildcard."""
    errs = check_dns1123_preconditions(domain)
    if errs:
        return errs
    label, _, rest = domain.partition(".")
    if label == "*":
        if not rest:
            return []
    elif "*" in label:
        return [f'partial wildcard "{domain}" not allowed']
    else:
        if not (len(label) <= DNS1123_LABEL_MAX and DNS1123_LABEL_ANYCASE.match(label)):
            return [f"domain name {domain!r} invalid (label {label!r} invalid)"]
        if not rest:
            return []
    return validate_dns1123_labels(rest) if rest else []


def validate_wildcard_domain_for_virtual_service_bound_to_gateway(sni: bool, domain: str) -> list[str]:
    if domain.startswith("*") and not domain.startswith("*."):
        # "*foo.com" is a partial wildcard; Istio allows it only when it's a suffix match on SNI.
        if sni:
            return validate_dns1123_labels(domain[1:].lstrip("."))
    return validate_wildcard_domain(domain)


def validate_port(port: int | None) -> list[str]:
    if port is None or not 1 <= port <= 65535:
        return [f"port number {port} must be in the range 1..65535"]
    return []


def validate_percent(value: float | int | None) -> list[str]:
    if value is None or not 0 <= value <= 100:
        return [f"percentage {value} is not in range 0..100"]
    return []


def validate_duration(d: Duration | None) -> list[str]:
    """Istio: at least 1ms, and whole milliseconds."""
    if d is None:
        return []
    if d.nanos % 1_000_000 != 0:
        return ["only durations to ms precision are supported"]
    if d.nanos < 1_000_000:
        return ["duration must be greater than 1ms"]
    return []


def validate_duration_range(d: Duration | None, low: Duration, high: Duration) -> list[str]:
    if d is None:
        return []
    if d < low or d > high:
        return [f"duration {d}, must be between {low} and {high}"]
    return []


def validate_label_key(key: str) -> list[str]:
    """A Kubernetes qualified name with an optional DNS-1123 subdomain prefix."""
    prefix, slash, name = key.rpartition("/")
    errs: list[str] = []
    if slash:
        if not prefix or len(prefix) > 253 or validate_dns1123_labels(prefix.lower()):
            errs.append(f"invalid label key {key!r}: prefix must be a DNS-1123 subdomain")
    if not name or len(name) > 63 or not QUALIFIED_NAME.match(name):
        errs.append(f"invalid label key {key!r}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")
    return errs


def validate_label_value(value: str) -> list[str]:
    if len(value) > 63 or not LABEL_VALUE.match(value):
        return [f"invalid label value {value!r}: must be 63 characters or less, alphanumeric, '-', '_' or '.', starting and ending with an alphanumeric character"]
    return []


def validate_labels(labels: dict[str, str] | None) -> list[str]:
    errs: list[str] = []
    for k, v in (labels or {}).items():
        errs += validate_label_key(k)
        errs += validate_label_value(v)
    return errs


def validate_http_header_name(name: str) -> list[str]:
    if not name:
        return ["header name cannot be empty"]
    if not HEADER_NAME.match(name):
        return [f"header name {name!r} is not a valid HTTP header name"]
    return []


def validate_ip(value: str) -> list[str]:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return [f"{value} is not a valid IP"]
    return []


def validate_cidr_or_ip(value: str) -> list[str]:
    try:
        if "/" in value:
            ipaddress.ip_network(value, strict=False)
        else:
            ipaddress.ip_address(value)
    except ValueError:
        return [f"{value} is not a valid CIDR or IP"]
    return []


def validate_namespace_name(value: str) -> list[str]:
    if not is_dns1123_label(value):
        return [f"invalid namespace {value!r}: must be a DNS-1123 label"]
    return []
