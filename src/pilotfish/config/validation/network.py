"""Network endpoints as Istio checks them: ports, IP addresses and subnets, unix socket
addresses, protocol names and port names (Istio's ValidatePort, ValidateIPAddress,
ValidateIPSubnet, ValidateUnixAddress, protocol.Parse and ValidatePortName).
"""

from __future__ import annotations

import ipaddress

from .domains import is_dns1123_label_any_case


def validate_port(port: int | None) -> list[str]:
    if port is None or not 1 <= port <= 65535:
        return [f"port number {port} must be in the range 1..65535"]
    return []


def validate_ip(value: str) -> list[str]:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return [f"{value} is not a valid IP"]
    return []


def validate_ip_subnet(subnet: str) -> list[str]:
    """Istio's ValidateIPSubnet: an IP, or a CIDR block when the value has one slash."""
    if subnet.count("/") == 1:
        try:
            ipaddress.ip_network(subnet, strict=False)
        except ValueError:
            return [f"{subnet} is not a valid CIDR block"]
        return []
    return validate_ip(subnet)


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
