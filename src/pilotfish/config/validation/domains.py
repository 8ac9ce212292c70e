"""Host and domain names as Istio checks them: DNS-1123 labels, FQDNs, wildcard domains.

Ports of Istio's labels.IsDNS1123Label/IsWildcardDNS1123Label, ValidateFQDN and
ValidateWildcardDomain; each check returns Istio's error texts (empty when fine).
"""

from __future__ import annotations

import re

from .golang import go_quote

DNS1123_LABEL_MAX = 63
DNS1123_LABEL_ANYCASE = re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
WILDCARD_DNS1123_LABEL = re.compile(r"^(\*|(\*|\*-)?[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)$")


def is_dns1123_label_any_case(value: str) -> bool:
    """Istio's labels.IsDNS1123Label, which (unlike Kubernetes) also accepts upper case."""
    return len(value) <= DNS1123_LABEL_MAX and bool(DNS1123_LABEL_ANYCASE.match(value))


def is_wildcard_dns1123_label(value: str) -> bool:
    """Istio's labels.IsWildcardDNS1123Label: ``*``, or a label optionally led by ``*`` or ``*-``."""
    return len(value) <= DNS1123_LABEL_MAX and bool(WILDCARD_DNS1123_LABEL.match(value))


def validate_dns1123_labels(domain: str) -> list[str]:
    """Every dot-separated label must be a DNS-1123 label (case-insensitive), the last not all digits."""
    parts = domain.split(".")
    if domain.endswith(".") and not parts[-1]:
        parts = parts[:-1]
    top = parts[-1] if parts else ""
    if top and top.isdigit():
        return [f"domain name {go_quote(domain)} invalid (top level domain {go_quote(top)} cannot be all-numeric)"]
    for label in parts:
        if not (len(label) <= DNS1123_LABEL_MAX and DNS1123_LABEL_ANYCASE.match(label)):
            return [f"domain name {go_quote(domain)} invalid (label {go_quote(label)} invalid)"]
    return []


def check_dns1123_preconditions(name: str) -> list[str]:
    if len(name) > 255:
        return [f"domain name {go_quote(name)} too long (max 255)"]
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
    """Istio's ValidateWildcardDomain: a wildcard only in the first label.

    Like Istio, the first label may be ``*``, ``*foo`` or ``*-foo`` (labels.IsWildcardDNS1123Label);
    kinds that forbid partial wildcards check that separately (ValidatePartialWildCard).
    """
    errs = check_dns1123_preconditions(domain)
    if errs:
        return errs
    label, dot, rest = domain.partition(".")
    if not is_wildcard_dns1123_label(label):
        return [f"domain name {go_quote(domain)} invalid (label {go_quote(label)} invalid)"]
    return validate_dns1123_labels(rest) if dot else []


def validate_wildcard_domain_for_virtual_service_bound_to_gateway(sni: bool, domain: str) -> list[str]:
    """As validate_wildcard_domain, plus the SNI names AUTO_PASSTHROUGH generates (outbound_.80_._.host)."""
    errs = check_dns1123_preconditions(domain)
    if errs:
        return errs
    if sni and domain.startswith("outbound_"):
        parts = domain.split("_")
        fmt = "outbound_.<port>_._.<hostname>"
        if len(parts) < 4:
            return [f"domain name {domain} invalid, should follow '{fmt}' format"]
        port, hostname = parts[1].strip("."), parts[3].strip(".")
        if parts[0] != "outbound":
            return [f"domain name {domain!r} invalid (label {parts[0]!r} invalid)"]
        if not re.search(r"[0-9]", port):
            return [f"domain name {domain!r} invalid (label {port!r} invalid). should follow {fmt} format"]
        if not re.search(r"[a-zA-Z]", hostname):
            return [f"domain name {domain!r} invalid (label {hostname!r} invalid). should follow {fmt} format"]
        return []
    return validate_wildcard_domain(domain)
