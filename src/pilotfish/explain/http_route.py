"""An HTTP connection manager's routing, done by the proxy's own code: the HCM and its route
configuration compiled by pilotfish.proxy.compile, the route chosen by the router's
select_route. Why an earlier route did not match is told by asking the same compiled matchers
one at a time (the path alone, then each header and query matcher)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format

from ..proxy.common.errors import ProxyConfigError
from ..proxy.common.stats import StatsStore
from ..proxy.compile.listeners import RouteWarming, compile_hcm
from ..proxy.compile.routes import compile_route_config
from ..proxy.http.head import RequestHead
from ..proxy.router.route_table import Route, RouteTable, VirtualHost, header_value, strip_port
from ..proxy.router.routing import request_headers, select_route


@dataclass
class Routing:
    """``table`` None: the proxy cannot route with this connection manager (``error`` says why)."""

    route_config: str
    inline: bool
    messages: Any = None  # the RouteConfiguration message
    table: RouteTable | None = None
    authority: bytes = b""
    error: str = ""
    warnings: list[str] = field(default_factory=list)


def compile_routing(hcm: Any, listener: Any, listener_port: int, routes: Mapping[str, Any],
                    cluster_names: set[str], authority: bytes) -> Routing:
    """Compile the connection manager as the proxy would; where the proxy refuses something
    outside routing (a filter, an option), route with its route configuration alone and warn."""
    if hcm.HasField("rds"):
        name, inline = hcm.rds.route_config_name, False
        rc = routes.get(name)
    else:
        name, inline = hcm.route_config.name, True
        rc = hcm.route_config
    out = Routing(name, inline, rc)
    if rc is None:
        out.error = f"route configuration {name!r} has not arrived (the listener is warming, not serving)"
        return out
    clusters: dict[str, Any] = dict.fromkeys(cluster_names)
    try:
        compiled = compile_hcm(hcm, "http_connection_manager", StatsStore(), clusters, {}, routes, listener=listener)
        out.table = compiled.route_table
        if compiled.strip_any_host_port:
            authority = strip_port(authority)
        elif compiled.strip_matching_host_port and authority.endswith(b":%d" % listener_port):
            authority = strip_port(authority)
    except RouteWarming as exc:
        out.error = f"route configuration {exc.name!r} has not arrived (the listener is warming, not serving)"
        return out
    except ProxyConfigError as exc:
        out.warnings.append(f"pilotfish proxy refuses this connection manager: {exc}")
        try:
            out.table = compile_route_config(rc, f"RouteConfiguration[{name}]", cluster_names, inline)
        except ProxyConfigError as inner:
            out.error = f"pilotfish proxy refuses route configuration {name!r}: {inner}"
            return out
    out.authority = authority
    return out


def vhost_message(rc: Any, vh: VirtualHost) -> Any:
    for msg in rc.virtual_hosts:
        if msg.name == vh.name:
            return msg
    return None


def matched_domain(table: RouteTable, vh_msg: Any, authority: bytes) -> str:
    """Which of the virtual host's domains took ``authority`` (the table's precedence: exact,
    longest suffix, longest prefix, ``*``)."""
    host = authority.decode("latin-1").lower()
    if table.ignore_port:
        host = strip_port(host.encode()).decode("latin-1")
    domains = [d.lower() for d in vh_msg.domains]
    if host in domains:
        return host
    suffixes = sorted((d for d in domains if d.startswith("*") and d != "*"), key=len, reverse=True)
    for d in suffixes:
        if host.endswith(d[1:]) and len(host) > len(d) - 1:
            return d
    for d in sorted((d for d in domains if d.endswith("*") and d != "*"), key=len, reverse=True):
        if host.startswith(d[:-1]) and len(host) > len(d) - 1:
            return d
    return "*"


def choose(table: RouteTable, head: RequestHead, authority: bytes) -> tuple[VirtualHost | None, Route | None]:
    """The router's decision: the virtual host for ``authority`` and the route select_route picks."""
    vh = table.default if table.default_only else table.find_virtual_host(authority)
    return vh, select_route(table, head, authority)


# ---------------------------------------------------------------- why a route did not match


def _string_match(sm: Any) -> str:
    which = sm.WhichOneof("match_pattern")
    if which == "safe_regex":
        text = f"regex {sm.safe_regex.regex!r}"
    elif which is None:
        text = "anything"
    else:
        text = f"{which} {getattr(sm, which)!r}"
    return text + (" (ignoring case)" if sm.ignore_case else "")


def describe_header(m: Any) -> str:
    which = m.WhichOneof("header_match_specifier")
    if which is None:
        text = "present"
    elif which == "present_match":
        text = "present" if m.present_match else "absent"
    elif which == "string_match":
        text = _string_match(m.string_match)
    elif which == "safe_regex_match":
        text = f"regex {m.safe_regex_match.regex!r}"
    elif which == "range_match":
        text = f"in [{m.range_match.start}, {m.range_match.end})"
    else:
        text = f"{which.removesuffix('_match')} {getattr(m, which)!r}"
    return f"{m.name} {'not ' if m.invert_match else ''}{text}"


def describe_path(match: Any) -> str:
    which = match.WhichOneof("path_specifier")
    if which == "safe_regex":
        text = f"regex {match.safe_regex.regex!r}"
    elif which == "connect_matcher":
        text = "CONNECT"
    elif which is None:
        text = "none"
    else:
        text = f"{which.replace('_', ' ')} {getattr(match, which)!r}"
    if match.HasField("case_sensitive") and not match.case_sensitive.value:
        text += " (ignoring case)"
    return text


def describe_match(match: Any) -> str:
    parts = [describe_path(match)]
    parts += [f"header {describe_header(h)}" for h in match.headers]
    parts += [f"query {q.name} {_string_match(q.string_match) if q.HasField('string_match') else 'present'}"
              for q in match.query_parameters]
    if match.HasField("runtime_fraction"):
        parts.append("runtime fraction")
    return ", ".join(parts)


def miss_reasons(route: Route, msg: Any, head: RequestHead) -> list[str]:
    """Each part of ``route``'s match the request fails, asked of the compiled matchers."""
    out = []
    path_only = Route(route.name, route.kind, route.value, route.case_sensitive, route.regex, (), (),
                      route.action_kind, route.action, (), ())
    if not path_only.matches(head.path, head.path_only, head.headers, head.query):
        out.append(f"path {head.path_only.decode('latin-1')!r} does not match {describe_path(msg.match)}")
    header_msgs = list(msg.match.headers)
    headers = request_headers(head)  # what the router's header matchers see, pseudo-headers too
    for i, h in enumerate(route.headers):
        if h.matches(headers):
            continue
        if i >= len(header_msgs):
            out.append("the runtime fraction did not select this request")
            continue
        value = header_value(headers, h.name)
        got = "absent" if value is None else repr(value.decode("latin-1"))
        out.append(f"header {describe_header(header_msgs[i])}: the request's is {got}")
    params = head.query()
    for q, q_msg in zip(route.query, msg.match.query_parameters):
        if not q.matches(params):
            value = params.get(q.name)
            got = "absent" if value is None else repr(value.decode("latin-1"))
            want = _string_match(q_msg.string_match) if q_msg.HasField("string_match") else "present"
            out.append(f"query parameter {q_msg.name} {want}: the request's is {got}")
    if not out and not route.matches(head.path, head.path_only, headers, head.query):
        out.append("the match as a whole fails")
    return out


def route_info(route: Route, msg: Any) -> dict[str, Any]:
    """Name, match (Envoy's JSON and in words) and the VirtualService it came from."""
    info: dict[str, Any] = {"name": msg.name, "match": json_format.MessageToDict(msg.match),
                            "match_text": describe_match(msg.match)}
    istio = msg.metadata.filter_metadata.get("istio") if msg.HasField("metadata") else None
    if istio is not None and "config" in istio.fields:
        info["virtual_service"] = _config_ref(istio.fields["config"].string_value)
    return info


def _config_ref(path: str) -> str:
    """``/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews`` → ``reviews.default``."""
    parts = path.strip("/").split("/")
    if len(parts) >= 6 and parts[3] == "namespaces":
        return f"{parts[-1]}.{parts[4]}"
    return path
