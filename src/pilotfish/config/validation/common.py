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


WILDCARD_DNS1123_LABEL = re.compile(r"^(\*|(\*|\*-)?[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)$")


def is_wildcard_dns1123_label(value: str) -> bool:
    """Istio's labels.IsWildcardDNS1123Label: ``*``, or a label optionally led by ``*`` or ``*-``."""
    return len(value) <= DNS1123_LABEL_MAX and bool(WILDCARD_DNS1123_LABEL.match(value))


def is_dns1123_label_any_case(value: str) -> bool:
    """Istio's labels.IsDNS1123Label, which (unlike Kubernetes) also accepts upper case."""
    return len(value) <= DNS1123_LABEL_MAX and bool(DNS1123_LABEL_ANYCASE.match(value))


def validate_ip_subnet(subnet: str) -> list[str]:
    """Istio's ValidateIPSubnet: an IP, or a CIDR block when the value has one slash."""
    if subnet.count("/") == 1:
        try:
            ipaddress.ip_network(subnet, strict=False)
        except ValueError:
            return [f"{subnet} is not a valid CIDR block"]
        return []
    return validate_ip(subnet)


def validate_tag_labels(labels: dict[str, str] | None) -> list[str]:
    """Istio's labels.Instance.Validate (subset labels, sourceLabels), with its messages."""
    errs: list[str] = []
    for key, value in (labels or {}).items():
        m = TAG_KEY.match(key)
        if m is None:
            errs.append(f"invalid tag key: {go_quote(key)}")
        elif m.group(1) and len(m.group(1)) - 1 > 253:
            errs.append(f"invalid tag key: {go_quote(key)} (DNS prefix is too long)")
        elif len(m.group(2)) > DNS1123_LABEL_MAX:
            errs.append(f"invalid tag key: {go_quote(key)} (name is too long)")
        if not TAG_VALUE.match(value):
            errs.append(f"invalid tag value: {go_quote(value)}")
    return errs


_LABEL_FMT = r"[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?"
_QUALIFIED_FMT = r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
TAG_KEY = re.compile(rf"^({_LABEL_FMT}(?:\.{_LABEL_FMT})*/)?({_QUALIFIED_FMT})$")
TAG_VALUE = re.compile(rf"^({_QUALIFIED_FMT})?$")


def validate_export_to(namespace: str, export_to: list[str] | None, *, service_entry: bool = False, dr_with_selector: bool = False) -> list[str]:
    """Istio's validateExportTo: ``.``, ``*``, ``~`` (ServiceEntry only) or namespaces, no duplicates."""
    errs: list[str] = []
    if not export_to:
        return errs
    seen: list[str] = []
    for entry in export_to:
        key = namespace if entry == "." else entry
        if key in seen:
            if key != entry:
                errs.append(f"duplicate entries in exportTo: . and current namespace {namespace}")
            else:
                errs.append(f"duplicate entries in exportTo for entry {entry}")
            continue
        if service_entry and entry == "~":
            seen.append(key)
        elif key == "~":
            errs.append("exportTo ~ (none) is not allowed for Istio configuration objects")
        elif key in ("*", ".") or is_dns1123_label_any_case(key):
            seen.append(key)
        else:
            errs.append("only .,*, or a valid DNS 1123 label is allowed as exportTo entry")
    if dr_with_selector and seen:
        if namespace in seen:
            if len(seen) > 1:
                errs.append("destination rule with workload selector cannot have multiple entries in exportTo")
        else:
            errs.append("destination rule with workload selector cannot have exportTo beyond current namespace")
    if "*" in seen and len(export_to) > 1:
        errs.append("cannot have both public (*) and non-public exportTo values for a resource")
    if "~" in seen and len(export_to) > 1:
        errs.append("cannot export service entry to no one (~) and someone")
    return errs


# ---------------------------------------------------------------- Go net/url (for URL fields)

from typing import TYPE_CHECKING  # noqa: E402  (appended section)


class GoURLError(ValueError):
    """A URL Go's net/url refuses; Istio (and the CRDs' CEL url()) parse with it."""


_USERINFO_OK = set("-._:~!$&'()*+,;=%@")
_HOST_OK = set("!$&'()*+,;=:[]<>\"-_.~")


def _unescape(s: str, host: bool) -> None:
    i = 0
    while i < len(s):
        c = s[i]
        if c == "%":
            esc = s[i : i + 3]
            if len(esc) < 3 or not all(ch in "0123456789abcdefABCDEF" for ch in esc[1:]):
                raise GoURLError(f"invalid URL escape {esc!r}")
            if host and int(esc[1], 16) < 8 and esc != "%25":
                raise GoURLError(f"invalid URL escape {esc!r}")
            i += 3
            continue
        if host and ord(c) < 0x80 and not c.isalnum() and c not in _HOST_OK:
            raise GoURLError(f"invalid character {c!r} in host name")
        i += 1


def _parse_host(host: str) -> str:
    if host.startswith("["):
        end = host.rfind("]")
        if end < 0:
            raise GoURLError("missing ']' in host")
        port = host[end + 1 :]
    else:
        colon = host.rfind(":")
        port = host[colon:] if colon >= 0 else ""
    if port and not (port[0] == ":" and port[1:].isdigit() or port == ":"):
        raise GoURLError(f"invalid port {port!r} after host")
    _unescape(host, host=True)
    return host


def parse_go_url(raw: str, *, request_uri: bool = False) -> tuple[str, str, str]:
    """(scheme, host, port) as Go's url.Parse / url.ParseRequestURI see them, or GoURLError."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise GoURLError(f"parse {raw!r}: net/url: invalid control character in URL")
    if not request_uri:
        raw, _, fragment = raw.partition("#")
        _unescape(fragment, host=False)
    if raw == "" and request_uri:
        raise GoURLError('parse "": empty url')
    if raw == "*":
        return "", "", ""
    scheme, rest = "", raw
    for i, c in enumerate(raw):
        if c.isascii() and c.isalpha():
            continue
        if c.isascii() and (c.isdigit() or c in "+-.") and i > 0:
            continue
        if c == ":":
            if i == 0:
                raise GoURLError(f"parse {raw!r}: missing protocol scheme")
            scheme, rest = raw[:i].lower(), raw[i + 1 :]
        break
    if rest.endswith("?") and rest.count("?") == 1:
        rest = rest[:-1]
    else:
        rest = rest.partition("?")[0]
    if not rest.startswith("/"):
        if scheme:
            return scheme, "", ""
        if request_uri:
            raise GoURLError(f"parse {raw!r}: invalid URI for request")
        if ":" in rest.partition("/")[0]:
            raise GoURLError(f"parse {raw!r}: first path segment in URL cannot contain colon")
    host = ""
    if (scheme or (not request_uri and not rest.startswith("///"))) and rest.startswith("//"):
        authority, slash, tail = rest[2:].partition("/")
        rest = slash + tail
        user, at, hostport = authority.rpartition("@")
        host = _parse_host(hostport)
        if at:
            if not all(c.isascii() and c.isalnum() or c in _USERINFO_OK for c in user):
                raise GoURLError(f"parse {raw!r}: net/url: invalid userinfo")
            _unescape(user, host=False)
    _unescape(rest, host=False)
    hostname, port = host, ""
    if host.startswith("["):
        hostname, _, after = host[1:].partition("]")
        port = after[1:]
    elif ":" in host:
        hostname, _, port = host.rpartition(":")
    return scheme, hostname, port


# ---------------------------------------------------------------- metadata every Istio kind shares

DRY_RUN_ANNOTATION = "istio.io/dry-run"
_REJECTED_ANNOTATIONS = {
    "internal.istio.io/webhook-always-reject": "rejecting",
    "internal.istio.io/parents": "this may not be set by users",
}


def validate_reserved_annotations(namespace: str, name: str, annotations: dict[str, str], *, dry_run_allowed: bool = False) -> list[str]:
    """Istio's validateMetadata: annotations the webhook refuses before looking at the spec."""
    if DRY_RUN_ANNOTATION in annotations and not dry_run_allowed:
        return [f"{namespace}/{name} has unsupported annotation {DRY_RUN_ANNOTATION}, please remove the annotation"]
    for key, message in _REJECTED_ANNOTATIONS.items():
        if key in annotations:
            return [f'"{key}" annotation found, {message}']
    return []


# ---------------------------------------------------------------- policy attachment (selector / targetRef)

if TYPE_CHECKING:
    from ..models.common import PolicyTargetReference, WorkloadSelector

# Istio's allowedTargetRefs: (canonical group, kind) and how the error message prints them.
ALLOWED_TARGET_REFS = (
    ("core", "Service", "core/v1/Service"),
    ("networking.istio.io", "ServiceEntry", "networking.istio.io/v1/ServiceEntry"),
    ("gateway.networking.k8s.io", "Gateway", "gateway.networking.k8s.io/v1/Gateway"),
    ("gateway.networking.k8s.io", "GatewayClass", "gateway.networking.k8s.io/v1/GatewayClass"),
)
_REF_GROUP = re.compile(r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_REF_KIND = re.compile(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")


def validate_one_of_selector_type(
    selector: WorkloadSelector | None, target_ref: PolicyTargetReference | None, target_refs: list[PolicyTargetReference] | None
) -> list[str]:
    if sum((selector is not None, target_ref is not None, bool(target_refs))) > 1:
        return ["only one of targetRefs or workloadSelector can be set"]
    return []


def validate_policy_workload_selector(selector: WorkloadSelector | None) -> tuple[list[str], list[str]]:
    """Istio's validateWorkloadSelector for type.v1beta1 selectors: (errors, warnings)."""
    if selector is None:
        return [], []
    errs = []
    match_labels = selector.match_labels or {}
    for k, v in match_labels.items():
        if k == "":
            errs.append(f'empty key is not supported in selector: "{k}={v}"')
        if "*" in k or "*" in v:
            errs.append(f'wildcard is not supported in selector: "{k}={v}"')
    warnings = [] if match_labels else ["workload selector specified without labels"]
    return errs, warnings


def validate_policy_target_reference(ref: PolicyTargetReference | None) -> list[str]:
    if ref is None:
        return []
    group, kind, name, namespace = ref.group, ref.kind, ref.name, ref.namespace
    errs = []
    if not name:
        errs.append("targetRef name must be set")
    if namespace:
        errs.append("targetRef namespace must not be set; cross namespace referencing is not supported")
    canonical = group or "core"
    if not any(g == canonical and k == kind for g, k, _ in ALLOWED_TARGET_REFS):
        allowed = " ".join(text for _, _, text in ALLOWED_TARGET_REFS)
        errs.append(f"targetRef must be to one of [{allowed}] but was {group or ''}/{kind or ''}")
    return errs


def crd_selector_errors(path: str, selector: WorkloadSelector | None) -> list[str]:
    """The CRD schema and CEL rules on type.v1beta1.WorkloadSelector.matchLabels."""
    labels = (selector.match_labels if selector else None) or {}
    errs = []
    if len(labels) > 4096:
        errs.append(f"{path}.matchLabels: Too many: {len(labels)}: must have at most 4096 items")
    if any("*" in k for k in labels):
        errs.append(f"{path}.matchLabels: Invalid value: \"object\": wildcard not allowed in label key match")
    if any(k == "" for k in labels):
        errs.append(f"{path}.matchLabels: Invalid value: \"object\": key must not be empty")
    for k, v in labels.items():
        if len(v) > 63:
            errs.append(f"{path}.matchLabels.{k}: Too long: may not be more than 63 bytes")
        if "*" in v:
            errs.append(f"{path}.matchLabels.{k}: Invalid value: \"string\": wildcard not allowed in label value match")
    return errs


def crd_target_ref_errors(path: str, ref: PolicyTargetReference | None) -> list[str]:
    """The CRD schema and CEL rules on type.v1beta1.PolicyTargetReference."""
    if ref is None:
        return []
    group, kind, name, namespace = ref.group, ref.kind, ref.name, ref.namespace
    errs = []
    if group is not None and (len(group) > 253 or not _REF_GROUP.match(group)):
        errs.append(f"{path}.group in body should match '{_REF_GROUP.pattern}'")
    if kind is None:
        errs.append(f"{path}.kind: Required value")
    elif not kind or len(kind) > 63 or not _REF_KIND.match(kind):
        errs.append(f"{path}.kind in body should match '{_REF_KIND.pattern}'")
    if name is None:
        errs.append(f"{path}.name: Required value")
    elif not name or len(name) > 253:
        errs.append(f"{path}.name in body should be at least 1 chars long and at most 253")
    if namespace:
        errs.append(f"{path}.namespace: Invalid value: \"string\": cross namespace referencing is not currently supported")
    return errs


# ---------------------------------------------------------------- protocols, port names, unix sockets

# Istio's protocol.Parse (case-insensitive) and the families its predicates test.
PROTOCOLS = {
    p.lower(): p
    for p in ("TCP", "UDP", "GRPC", "GRPC-Web", "HTTP", "HTTP_PROXY", "HTTP2", "HTTPS", "TLS", "Mongo", "Redis", "MySQL")
}
UNSUPPORTED_PROTOCOL = "UnsupportedProtocol"
HTTP_PROTOCOLS = frozenset({"HTTP", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-Web"})
TLS_PROTOCOLS = frozenset({"HTTPS", "TLS"})
TCP_PROTOCOLS = frozenset({"TCP", "HTTPS", "TLS", "Mongo", "Redis", "MySQL"})


def parse_protocol(value: str | None) -> str:
    """Istio's protocol.Parse: the canonical protocol name, or ``UnsupportedProtocol``."""
    return PROTOCOLS.get((value or "").lower(), UNSUPPORTED_PROTOCOL)


def validate_protocol(value: str | None) -> list[str]:
    """Istio's ValidateProtocol: empty means "sniff"; anything else must be a known protocol."""
    if value and parse_protocol(value) == UNSUPPORTED_PROTOCOL:
        return [f"unsupported protocol: {value}"]
    return []


def validate_port_name(name: str | None) -> list[str]:
    """Istio's ValidatePortName: a DNS-1123 label (either case)."""
    if not is_dns1123_label_any_case(name or ""):
        return [f"invalid port name: {name or ''}"]
    return []


UNIX_ADDRESS_PREFIX = "unix://"


def validate_unix_address(addr: str) -> list[str]:
    """Istio's ValidateUnixAddress (without the unix:// prefix): absolute file path or @abstract."""
    if not addr:
        return ["unix address must not be empty"]
    if addr.startswith("@"):
        return []
    if not addr.startswith("/") or addr.endswith("/"):
        return [f"{addr} is not an absolute path to a file"]
    return []


def go_quote(value: str) -> str:
    """Go's %q for the plain strings in Istio's messages: double quotes, backslash escapes."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
