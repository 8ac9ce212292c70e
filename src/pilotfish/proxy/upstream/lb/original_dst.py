"""ORIGINAL_DST (CLUSTER_PROVIDED): the upstream is where the client meant to go.

The destination comes from the request header (``use_http_header``; default
``x-envoy-original-dst-host``, first value, ``ip:port``), else from the downstream socket's
SO_ORIGINAL_DST (set when iptables REDIRECT brought the connection here). A host is made on
first use and kept while it is chosen or has requests or connections; the cluster's cleanup
timer drops the rest (Envoy's OriginalDstCluster).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from typing import Any, Callable

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h; IP6T_SO_ORIGINAL_DST has the same value
DEFAULT_HEADER = b"x-envoy-original-dst-host"


def parse_host_port(value: bytes) -> tuple[str, int] | None:
    """``1.2.3.4:80`` or ``[::1]:80`` (Envoy's parseInternetAddressAndPortNoThrow), else None."""
    try:
        text = value.decode("ascii").strip()
    except UnicodeDecodeError:
        return None
    if text.startswith("["):
        end = text.find("]:")
        if end == -1:
            return None
        ip, port_text = text[1:end], text[end + 2:]
        version = 6
    else:
        ip, sep, port_text = text.rpartition(":")
        if not sep:
            return None
        version = 4
    if not port_text.isdigit() or int(port_text) > 65535:
        return None
    try:
        if ipaddress.ip_address(ip).version != version:
            return None
    except ValueError:
        return None
    return ip, int(port_text)


def socket_original_dst(transport: Any) -> tuple[str, int] | None:
    """SO_ORIGINAL_DST of the downstream socket, or None when nothing redirected it."""
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return None
    try:
        if sock.family == socket.AF_INET6:
            raw = sock.getsockopt(socket.IPPROTO_IPV6, SO_ORIGINAL_DST, 28)
            return socket.inet_ntop(socket.AF_INET6, raw[8:24]), struct.unpack("!H", raw[2:4])[0]
        raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
        return socket.inet_ntoa(raw[4:8]), struct.unpack("!H", raw[2:4])[0]
    except OSError:
        return None


class OriginalDst:
    __slots__ = ("hosts", "header", "port_override", "add_host", "invalid")

    def __init__(self, hosts: dict[tuple[str, int], Any], add_host: Callable[[str, int], Any],
                 header: bytes | None, port_override: int | None) -> None:
        self.hosts = hosts  # the cluster's live map, by (ip, port)
        self.add_host = add_host
        self.header = header
        self.port_override = port_override
        self.invalid = 0  # original_dst_host_invalid

    def choose_host(self, context: Any) -> Any:
        if context is None:
            return None
        dst = None
        if self.header is not None:
            for k, v in context.head.headers:
                if k == self.header:
                    dst = parse_host_port(v)
                    if dst is None:
                        self.invalid += 1
                    break
        if dst is None:
            dst = socket_original_dst(context.conn.transport)
        if dst is None:
            return None
        if self.port_override is not None:
            dst = (dst[0], self.port_override)
        host = self.hosts.get(dst)
        if host is None:
            host = self.add_host(*dst)
        host.used = True
        return host
