"""Value checks for AuthorizationPolicy rules (Istio's pkg/config/security).

Each returns the first problem (or each problem) with Istio's wording, as a FieldError whose
path is the offending value's index in the list it was handed; ``validate_attribute`` gives
its path below the ``when`` condition (its ``key``, or the value).
"""

from __future__ import annotations

import ipaddress
import re

from ..errors import FieldError, field_path

_PREFIX_BITS = re.compile(r"^(0|[1-9][0-9]*)$")
_LITERAL = re.compile(r"^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$")
MATCH_ONE = "{*}"
MATCH_ANY = "{**}"


def check_empty_values(key: str, values: list[str] | None) -> str | None:
    for i, value in enumerate(values or ()):
        if value == "":
            return FieldError(f"empty value not allowed, found in {key}", (i,))
    return None


def check_service_account(key: str, values: list[str] | None) -> str | None:
    """``sa`` or ``namespace/sa``, no wildcard, at most 16 of them."""
    values = values or []
    if len(values) > 16:
        return "may not have more than 16 values"
    for i, value in enumerate(values):
        if err := _service_account_error(key, value):
            return FieldError(err, (i,))
    return None


def _service_account_error(key: str, value: str) -> str | None:
    if value == "":
        return f"empty value not allowed, found in {key}"
    if "*" in value:
        return f"wildcard not allowed, found in {key}"
    if value.count("/") not in (0, 1):
        return f"expected format 'serviceAccount' or 'namespace/serviceAccount', found \"{value}\" in {key}"
    if len(value) > 320:
        return f"value cannot exceed 320 characters, found \"{value}\" in {key}"
    ns, slash, sa = value.partition("/")
    if slash and not ns:
        return f"expected format 'serviceAccount' or 'namespace/serviceAccount', found empty namespace \"{value}\" in {key}"
    if slash and not sa:
        return f"expected format 'serviceAccount' or 'namespace/serviceAccount', found empty serviceAccount \"{value}\" in {key}"
    return None


def _go_parse_addr(value: str) -> bool:
    """netip.ParseAddr: IPv4 dotted quad (no leading zeros) or IPv6, zone allowed on IPv6."""
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return False
    return not (isinstance(addr, ipaddress.IPv4Address) and "%" in value)


def validate_ips(values: list[str] | None) -> list[str]:
    """Istio's ValidateIPs: each value an address or a CIDR prefix (host bits may be set)."""
    errs: list[str] = []
    for i, v in enumerate(values or ()):
        if "/" in v:
            addr, _, bits = v.partition("/")
            ok = "%" not in addr and _go_parse_addr(addr) and bool(_PREFIX_BITS.match(bits))
            if ok:
                ok = int(bits) <= ipaddress.ip_address(addr).max_prefixlen
            if not ok:
                errs.append(FieldError(f'bad CIDR range ({v}): netip.ParsePrefix("{v}"): invalid prefix', (i,)))
        elif not _go_parse_addr(v):
            errs.append(FieldError(f"bad IP address ({v})", (i,)))
    return errs


def validate_ports(values: list[str] | None) -> list[str]:
    """Istio's ValidatePorts: decimal numbers 0..65535 (Go's ParseUint, 32 bits)."""
    errs: list[str] = []
    for i, port in enumerate(values or ()):
        if not (port.isascii() and port.isdigit()):
            errs.append(FieldError(f'bad port ({port}): strconv.ParseUint: parsing "{port}": invalid syntax', (i,)))
        elif int(port) >= 2**32:
            errs.append(FieldError(f'bad port ({port}): strconv.ParseUint: parsing "{port}": value out of range', (i,)))
        elif int(port) > 65535:
            errs.append(FieldError(f"bad port ({port}): <nil>", (i,)))
    return errs


def contains_path_template(path: str) -> bool:
    return MATCH_ONE in path or MATCH_ANY in path


def check_valid_path_template(key: str, paths: list[str] | None) -> str | None:
    """Paths may use ``{*}`` and a final ``{**}`` segment, nothing else in braces."""
    for i, path in enumerate(paths or ()):
        if err := _path_template_error(key, path):
            return FieldError(err, (i,))
    return None


def _path_template_error(key: str, path: str) -> str | None:
    templated = contains_path_template(path)
    found_any = False
    path = path.strip("/")
    for glob in path.split("/"):
        if glob in (MATCH_ONE, MATCH_ANY) and found_any:
            return f"invalid or unsupported path {path}, found in {key}. {{**}} is not the last operator"
        if glob == MATCH_ONE:
            continue
        if glob == MATCH_ANY:
            found_any = True
            continue
        if "{" in glob or "}" in glob:
            return f"invalid or unsupported path {path}, found in {key}. Contains '{{' or '}}' beyond a supported path template"
        if templated and not _LITERAL.match(glob):
            return f"invalid or unsupported path {path}, found in {key}. Contains segment {glob} with invalid string literal"
    return None


def _validate_map_key(key: str) -> str | None:
    open_at = key.find("[")
    if key.endswith("]") and 0 < open_at < len(key) - 2:
        return None
    return f"bad key ({key}): should have format a[b]"


_PLAIN_KEYS = {
    "source.namespace",
    "source.principal",
    "source.trustDomain",
    "request.auth.principal",
    "request.auth.audiences",
    "request.auth.presenter",
    "connection.sni",
}
_IP_KEYS = {"source.ip", "remote.ip", "destination.ip"}
_MAP_KEY_PREFIXES = ("request.headers", "request.experimental.inline.headers", "request.auth.claims", "experimental.envoy.filters.")


def validate_attribute(key: str, values: list[str] | None, field: str = "values") -> FieldError | None:
    """Istio's ValidateAttribute: a known ``when`` key and values of the right shape; the path
    is ``key``, or the offending item of ``field`` (the condition's ``values`` or ``notValues``)."""
    if err := check_empty_values(key, values):
        return _in_values(field, [err])
    if key.startswith(_MAP_KEY_PREFIXES[:2]):
        return _on_key(_validate_map_key(key))
    if key in _IP_KEYS:
        return _in_values(field, validate_ips(values))
    if key == "source.serviceAccount":
        err = check_service_account(key, values)
        return _in_values(field, [err] if err else [])
    if key in _PLAIN_KEYS:
        return None
    if key.startswith(_MAP_KEY_PREFIXES[2:]):
        return _on_key(_validate_map_key(key))
    if key == "destination.port":
        return _in_values(field, validate_ports(values))
    return _on_key(_retired_key_error(key))


def _retired_key_error(key: str) -> str:
    if key == "destination.namespace":
        return f"attribute {key} is replaced by the metadata.namespace"
    if key.startswith("destination.labels"):
        return f"attribute {key} is replaced by the workload selector"
    if key in ("destination.name", "destination.user"):
        return f"deprecated attribute {key}: only supported in v1alpha1"
    return f"unknown attribute: {key}"


def _on_key(err: str | None) -> FieldError | None:
    return FieldError(err, ("key",)) if err else None


def _in_values(field: str, errs: list[str]) -> FieldError | None:
    """The problems with the values, as one message at the first one's value."""
    return FieldError("; ".join(errs), (field, *field_path(errs[0]))) if errs else None
