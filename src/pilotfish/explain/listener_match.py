"""Which listener takes a connection and which of its filter chains serves it.

Our proxy binds one filter chain per listener and has no listener filters, so this step is
Envoy's, on the same messages: a bound listener on the destination (exact address, then the
wildcard), else a ``use_original_dst`` listener (``virtualOutbound``) handing the connection
to the listener of its original destination, bound or not, or keeping it for its own chains.
Filter chains are chosen as Envoy's FilterChainManager does: criterion by criterion
(destination port, destination IP, server name, transport protocol, application protocols),
the chains naming a matching value win over those leaving it unset; none left: the
default_filter_chain.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .request import Request
from .snapshot import ProxySnapshot

HCM_TYPE = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
TCP_PROXY_TYPE = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
_WILDCARDS = ("0.0.0.0", "::")


def _type_name(packed: Any) -> str:
    return str(packed.type_url).rsplit("/", 1)[-1]


def connection_manager(f: Any) -> Any | None:
    """The HttpConnectionManager a network filter holds, or None."""
    if not f.HasField("typed_config") or _type_name(f.typed_config) != HCM_TYPE:
        return None
    from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2

    hcm = hcm_pb2.HttpConnectionManager()
    f.typed_config.Unpack(hcm)
    return hcm


def tcp_proxy(f: Any) -> Any | None:
    if not f.HasField("typed_config") or _type_name(f.typed_config) != TCP_PROXY_TYPE:
        return None
    from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

    msg = tcp_proxy_pb2.TcpProxy()
    f.typed_config.Unpack(msg)
    return msg


def chains_of(listener: Any) -> Iterator[tuple[str, Any]]:
    """(label, FilterChain) in order, the default chain last."""
    for i, chain in enumerate(listener.filter_chains):
        yield chain.name or f"filter_chains[{i}]", chain
    if listener.HasField("default_filter_chain"):
        yield listener.default_filter_chain.name or "default_filter_chain", listener.default_filter_chain


def route_config_names(listeners: Iterable[Any]) -> set[str]:
    """The RDS names the listeners' connection managers subscribe to."""
    from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2

    names = set()
    for lst in listeners:
        if lst.HasField("api_listener"):
            hcm = hcm_pb2.HttpConnectionManager()
            if lst.api_listener.api_listener.Unpack(hcm) and hcm.HasField("rds"):
                names.add(hcm.rds.route_config_name)
        for _, chain in chains_of(lst):
            for f in chain.filters:
                hcm = connection_manager(f)
                if hcm is not None and hcm.HasField("rds"):
                    names.add(hcm.rds.route_config_name)
    return names


def socket_of(listener: Any) -> tuple[str, int] | None:
    if listener.HasField("api_listener") or listener.address.WhichOneof("address") != "socket_address":
        return None
    sa = listener.address.socket_address
    return sa.address, sa.port_value


def binds(listener: Any) -> bool:
    return not listener.HasField("bind_to_port") or listener.bind_to_port.value


@dataclass
class ListenerHit:
    listener: Any
    address: str
    port: int
    via: str = ""  # the use_original_dst listener that handed the connection over
    why: str = ""


def find_listener(snap: ProxySnapshot, address: str | None, port: int) -> ListenerHit | None:
    """The listener a connection to ``address:port`` reaches (``address`` None: any address
    on the port, the wildcard first), or None (nothing listens: connection refused)."""
    real = [(lst, s) for lst in snap.listeners.values() if (s := socket_of(lst)) is not None]

    def on_port(candidates: list[tuple[Any, tuple[str, int]]], any_address: bool) -> Any | None:
        same = [c for c in candidates if c[1][1] == port]
        exact = [c for c in same if address is not None and c[1][0] == address]
        wild = [c for c in same if c[1][0] in _WILDCARDS]
        rest = same if address is None and any_address else []
        for group in (exact, wild, rest):
            if group:
                return group[0]
        return None

    hit = on_port([c for c in real if binds(c[0])], any_address=True)
    if hit is not None:
        lst, (a, p) = hit
        return ListenerHit(lst, a, p, why=f"bound on {a}:{p}")
    redirect = [c for c in real if binds(c[0]) and c[0].use_original_dst.value]
    if not redirect:
        return None
    vo, (va, vp) = redirect[0]
    target = on_port([c for c in real if c[0] is not vo], any_address=False)
    name = vo.name or f"{va}_{vp}"
    if target is not None:
        lst, (a, p) = target
        return ListenerHit(lst, a, p, via=name,
                           why=f"{name} hands the connection to the listener of its original destination {a}:{p}")
    return ListenerHit(vo, va, vp, why=f"no listener for {address or '*'}:{port}: {name} keeps the connection")


@dataclass
class ChainHit:
    label: str
    chain: Any
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (label, why) of chains passed over


def _sni_matches(names: Iterable[str], sni: str) -> bool:
    for n in names:
        if n == sni or (n.startswith("*.") and sni.endswith(n[1:]) and len(sni) > len(n) - 1):
            return True
    return False


def _in_ranges(ranges: Iterable[Any], ip: str | None) -> bool:
    if ip is None:
        return False
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for r in ranges:
        try:
            if addr in ipaddress.ip_network(f"{r.address_prefix}/{r.prefix_len.value if r.HasField('prefix_len') else addr.max_prefixlen}", strict=False):
                return True
        except ValueError:
            continue
    return False


def select_filter_chain(listener: Any, request: Request, dest_ip: str | None, dest_port: int) -> ChainHit | None:
    """The chain serving the connection, or None (Envoy closes it: no matching filter chain)."""
    filters = {lf.name.rsplit(".", 1)[-1] for lf in listener.listener_filters}
    tls_inspector = "tls_inspector" in filters
    transport = request.protocol.transport_protocol if tls_inspector else "raw_buffer"
    sni = request.server_name if tls_inspector else ""
    alpn = set(request.protocol.application_protocols) if "http_inspector" in filters else set()
    criteria = (
        ("destination port", lambda m: m.HasField("destination_port"),
         lambda m: m.destination_port.value == dest_port, lambda m: f"destination port {m.destination_port.value} "
                                                                     f"(the connection's is {dest_port})"),
        ("destination IP", lambda m: bool(m.prefix_ranges), lambda m: _in_ranges(m.prefix_ranges, dest_ip),
         lambda m: f"destination IP not in {', '.join(f'{r.address_prefix}/{r.prefix_len.value}' for r in m.prefix_ranges)}"),
        ("server name", lambda m: bool(m.server_names), lambda m: _sni_matches(m.server_names, sni),
         lambda m: f"server names {', '.join(m.server_names)} (SNI {sni or 'none'})"),
        ("transport protocol", lambda m: bool(m.transport_protocol), lambda m: m.transport_protocol == transport,
         lambda m: f"transport protocol {m.transport_protocol} (the connection's is {transport})"),
        ("application protocols", lambda m: bool(m.application_protocols),
         lambda m: bool(alpn & set(m.application_protocols)),
         lambda m: f"application protocols {', '.join(m.application_protocols)} "
                   f"(detected: {', '.join(sorted(alpn)) or 'none'})"),
    )
    candidates = [(f"{c.name or f'filter_chains[{i}]'}", c) for i, c in enumerate(listener.filter_chains)]
    rejected: list[tuple[str, str]] = []
    for what, is_set, matches, describe in criteria:
        specific = [(label, c) for label, c in candidates if is_set(c.filter_chain_match)]
        winners = [(label, c) for label, c in specific if matches(c.filter_chain_match)]
        for label, c in specific:
            if (label, c) not in winners:
                rejected.append((label, f"wants {describe(c.filter_chain_match)}"))
        if winners:
            for label, c in candidates:
                if not is_set(c.filter_chain_match):
                    rejected.append((label, f"a chain matching the {what} exactly is preferred"))
            candidates = winners
        else:
            candidates = [(label, c) for label, c in candidates if not is_set(c.filter_chain_match)]
    if candidates:
        return ChainHit(candidates[0][0], candidates[0][1], rejected)
    if listener.HasField("default_filter_chain"):
        chain = listener.default_filter_chain
        return ChainHit(chain.name or "default_filter_chain", chain, rejected)
    return None
