"""RouteConfiguration → RouteTable."""

from __future__ import annotations

import random
from typing import Any

from ..upstream.circuit_breaker import DEFAULT_PRIORITY, HIGH_PRIORITY
from ..common.errors import ProxyConfigError
from ..router.route_table import (
    DIRECT, FORWARD, PATH, PREFIX, REDIRECT, REGEX, SEPARATED_PREFIX, APPEND_OR_ADD,
    OVERWRITE_OR_ADD, DirectAction, ForwardAction, HeaderMutation, RedirectAction, Route,
    RouteTable, VirtualHost, WeightedEntry,
)
from .matchers import compile_regex, header_matcher, query_matcher
from .durations import seconds
from .hash_policy import compile_hash_policy
from .resilience import compile_retry_policy
from ..router import retry_state as rs
from .mirror import compile_mirror_policies
from .per_filter import compile_per_filter, merged
from .layered_runtime import EMPTY as EMPTY_RUNTIME, FractionMatch, Runtime
from .resilience import fraction

_REDIRECT_CODES = (301, 302, 303, 307, 308)
_NOT_FOUND_CODES = (503, 404, 500)
_PSEUDO_OK = {b":authority": b"host"}


def header_mutation(msg: Any, path: str, request: bool) -> HeaderMutation | None:
    """The *_headers_to_add/remove of one level, or None when it has none."""
    prefix = "request" if request else "response"
    to_add = getattr(msg, f"{prefix}_headers_to_add")
    to_remove = getattr(msg, f"{prefix}_headers_to_remove")
    if not to_add and not to_remove:
        return None
    remove = []
    for i, name in enumerate(to_remove):
        n = name.lower().encode()
        if n.startswith(b":") or n == b"host":
            raise ProxyConfigError("pseudo-headers and host cannot be removed",
                                   f"{path}.{prefix}_headers_to_remove[{i}]")
        remove.append(n)
    add = []
    for i, opt in enumerate(to_add):
        p = f"{path}.{prefix}_headers_to_add[{i}]"
        key = opt.header.key.lower().encode()
        key = _PSEUDO_OK.get(key, key)
        if not key or key.startswith(b":"):
            raise ProxyConfigError("a header to add needs a (non-pseudo) key", f"{p}.header.key")
        value = opt.header.value
        if "%" in value:
            raise ProxyConfigError("header value formatters (%...%) are not supported yet", f"{p}.header.value")
        if opt.HasField("append"):
            if opt.append_action:
                raise ProxyConfigError("append and append_action are mutually exclusive", p)
            action = APPEND_OR_ADD if opt.append.value else OVERWRITE_OR_ADD
        else:
            action = opt.append_action
        if not value and not opt.keep_empty_value:
            continue
        add.append((key, value.encode(), action))
    return HeaderMutation(tuple(remove), tuple(add))


def _levels(*levels: HeaderMutation | None) -> tuple[HeaderMutation, ...]:
    return tuple(m for m in levels if m is not None)


def compile_route_config(rc: Any, path: str, cluster_names: set[str],
                         validate_default: bool = True, runtime: Runtime = EMPTY_RUNTIME) -> RouteTable:
    """``validate_default``: Envoy checks cluster names by default for inline route configs only,
    not for ones delivered by RDS (whose clusters may arrive later). ``runtime``: the values of
    the runtime keys routes name (layered_runtime.py)."""
    g_req = header_mutation(rc, path, True)
    g_pf = compile_per_filter(rc.typed_per_filter_config, f"{path}.typed_per_filter_config", runtime=runtime)
    g_resp = header_mutation(rc, path, False)
    exact: dict[bytes, VirtualHost] = {}
    suffixes: dict[int, dict[bytes, VirtualHost]] = {}
    prefixes: dict[int, dict[bytes, VirtualHost]] = {}
    default: VirtualHost | None = None
    seen: set[bytes] = set()
    errors: list[ProxyConfigError] = []
    for vi, vh_msg in enumerate(rc.virtual_hosts):
        vpath = f"{path}.virtual_hosts[{vi}]"
        if vh_msg.require_tls:
            raise ProxyConfigError("require_tls is not supported yet (no TLS)", f"{vpath}.require_tls")
        v_req = header_mutation(vh_msg, vpath, True)
        v_resp = header_mutation(vh_msg, vpath, False)
        validate = rc.validate_clusters.value if rc.HasField("validate_clusters") else validate_default
        built, failed = [], []
        for ri, r in enumerate(vh_msg.routes):
            try:
                built.append(_route(r, f"{vpath}.routes[{ri}]", (v_req, g_req), (v_resp, g_resp), cluster_names,
                                    validate, runtime))
            except ProxyConfigError as exc:
                failed.extend(exc.errors)
        if failed:  # every route is compiled, so that all their problems are listed at once
            errors.extend(failed)
            continue
        routes = tuple(built)
        vh = VirtualHost(vh_msg.name, routes, 0)
        _resilience(routes, vh_msg, vpath)
        v_pf = merged(g_pf, compile_per_filter(vh_msg.typed_per_filter_config, f"{vpath}.typed_per_filter_config",
                                               runtime=runtime))
        for ri, r in enumerate(routes):
            r.vhost = vh
            r_pf = vh_msg.routes[ri].typed_per_filter_config
            if v_pf or r_pf:  # the most specific level wins, per filter name
                r.typed_per_filter = merged(v_pf, compile_per_filter(
                    r_pf, f"{vpath}.routes[{ri}].typed_per_filter_config", runtime=runtime))
        if not vh_msg.domains:
            raise ProxyConfigError("a virtual host needs at least one domain", f"{vpath}.domains")
        for di, domain in enumerate(vh_msg.domains):
            d = domain.lower().encode()
            if d in seen:
                raise ProxyConfigError(f"domain {domain!r} appears in more than one virtual host",
                                       f"{vpath}.domains[{di}]")
            seen.add(d)
            if d == b"*":
                default = vh
            elif d.startswith(b"*"):
                suffixes.setdefault(len(d) - 1, {})[d[1:]] = vh
            elif d.endswith(b"*"):
                prefixes.setdefault(len(d) - 1, {})[d[:-1]] = vh
            elif b"*" in d:
                raise ProxyConfigError(f"wildcard only at the start or end of a domain: {domain!r}",
                                       f"{vpath}.domains[{di}]")
            else:
                exact[d] = vh
    if errors:
        raise ProxyConfigError.collected(errors)
    return RouteTable(
        rc.name, exact,
        sorted(suffixes.items(), reverse=True),
        sorted(prefixes.items(), reverse=True),
        default, rc.ignore_port_in_host_matching,
    )


def _route(r: Any, path: str, parent_req: tuple, parent_resp: tuple, cluster_names: set[str],
           validate: bool, runtime: Runtime) -> Route:
    m = r.match
    mpath = f"{path}.match"
    which = m.WhichOneof("path_specifier")
    regex = None
    value = b""
    if which == "prefix":
        kind, value = PREFIX, m.prefix.encode()
    elif which == "path":
        kind, value = PATH, m.path.encode()
    elif which == "safe_regex":
        kind, regex = REGEX, compile_regex(m.safe_regex.regex, f"{mpath}.safe_regex.regex")
    elif which == "connect_matcher":  # only CONNECT requests have an empty path
        kind, value = PATH, b""
    elif which == "path_separated_prefix":
        kind, value = SEPARATED_PREFIX, m.path_separated_prefix.encode()
        if b"?" in value or b"#" in value or value.endswith(b"/"):
            raise ProxyConfigError("path_separated_prefix must not contain ?/# nor end in '/'",
                                   f"{mpath}.path_separated_prefix")
    else:
        raise ProxyConfigError("a route match needs prefix, path, safe_regex or path_separated_prefix", mpath)
    case_sensitive = m.case_sensitive.value if m.HasField("case_sensitive") else True
    headers = tuple(header_matcher(h, f"{mpath}.headers[{i}]") for i, h in enumerate(m.headers))
    if m.HasField("runtime_fraction"):
        headers += (_fraction_match(m.runtime_fraction, f"{mpath}.runtime_fraction", runtime),)
    query = tuple(query_matcher(q, f"{mpath}.query_parameters[{i}]") for i, q in enumerate(m.query_parameters))
    req = _levels(header_mutation(r, path, True), *parent_req)
    resp = _levels(header_mutation(r, path, False), *parent_resp)
    action_name = r.WhichOneof("action")
    action: ForwardAction | RedirectAction | DirectAction
    if action_name == "route":
        action_kind = FORWARD
        action = _forward(r.route, f"{path}.route", cluster_names, validate, runtime)
    elif action_name == "redirect":
        action_kind = REDIRECT
        action = _redirect(r.redirect, f"{path}.redirect")
    elif action_name == "direct_response":
        action_kind = DIRECT
        action = _direct(r.direct_response, f"{path}.direct_response")
    else:
        raise ProxyConfigError("a route needs an action: route, redirect or direct_response", path)
    return Route(r.name, kind, value, case_sensitive, regex, headers, query, action_kind, action,
                 req, resp)


def _rewrite(msg: Any, path: str) -> tuple[object, str] | None:
    if not msg.HasField("regex_rewrite"):
        return None
    rr = msg.regex_rewrite
    # RE2's substitution syntax (\1 for groups) is what google-re2's sub() takes.
    return (compile_regex(rr.pattern.regex, f"{path}.regex_rewrite.pattern.regex"), rr.substitution)


def _fraction_match(rf: Any, path: str, runtime: Runtime) -> Any:
    """RouteMatch.runtime_fraction: the runtime key's value, else default_value, of requests."""
    default = fraction(rf.default_value, f"{path}.default_value")
    numerator, denominator = runtime.fraction(rf.runtime_key, (default.numerator, default.denominator))
    return FractionMatch(numerator, denominator, runtime.rng or random.Random())


def _forward(a: Any, path: str, cluster_names: set[str], validate: bool,
             runtime: Runtime = EMPTY_RUNTIME) -> ForwardAction:
    which = a.WhichOneof("cluster_specifier")
    cluster, header = "", b""
    weighted: tuple[WeightedEntry, ...] = ()
    if which == "cluster":
        cluster = a.cluster
        if validate and cluster not in cluster_names:
            raise ProxyConfigError(f"unknown cluster {cluster!r}", f"{path}.cluster")
    elif which == "cluster_header":
        header = a.cluster_header.lower().encode()
    elif which == "weighted_clusters":
        entries = []
        for i, cw in enumerate(a.weighted_clusters.clusters):
            cpath = f"{path}.weighted_clusters.clusters[{i}]"
            if validate and cw.name not in cluster_names:
                raise ProxyConfigError(f"unknown cluster {cw.name!r}", f"{cpath}.name")
            weight = cw.weight.value
            if a.weighted_clusters.runtime_key_prefix:  # Envoy: getInteger("<prefix>.<name>", weight)
                weight = runtime.integer(f"{a.weighted_clusters.runtime_key_prefix}.{cw.name}", weight)
            entries.append(WeightedEntry(
                cw.name, weight,
                _levels(header_mutation(cw, cpath, True)), _levels(header_mutation(cw, cpath, False))))
        weighted = tuple(entries)
        if not weighted or sum(e.weight for e in weighted) == 0:
            raise ProxyConfigError("weighted_clusters needs a positive total weight", f"{path}.weighted_clusters")
    else:
        raise ProxyConfigError("a route action needs cluster, cluster_header or weighted_clusters", path)
    cumulative, total = [], 0
    for e in weighted:
        total += e.weight
        cumulative.append(total)
    host_rewrite = a.host_rewrite_literal.encode() if a.HasField("host_rewrite_literal") else None
    if a.priority not in (DEFAULT_PRIORITY, HIGH_PRIORITY):
        raise ProxyConfigError(f"unknown routing priority {a.priority}", f"{path}.priority")
    action = ForwardAction(
        cluster=cluster, cluster_header=header, weighted=weighted, cumulative=tuple(cumulative),
        total_weight=total, not_found_status=_NOT_FOUND_CODES[a.cluster_not_found_response_code],
        prefix_rewrite=a.prefix_rewrite.encode() if a.prefix_rewrite else None,
        regex_rewrite=_rewrite(a, path), host_rewrite=host_rewrite,
        auto_host_rewrite=a.auto_host_rewrite.value,
        timeout=seconds(a.timeout) if a.HasField("timeout") else 15.0,
        hash_policy=compile_hash_policy(a.hash_policy, f"{path}.hash_policy"),
        mirrors=compile_mirror_policies(a.request_mirror_policies, f"{path}.request_mirror_policies",
                                        cluster_names, validate, runtime),
        upgrades={uc.upgrade_type.lower().encode(): uc.enabled.value if uc.HasField("enabled") else True
                  for uc in a.upgrade_configs} or None,
    )
    action.priority = a.priority  # stream.py takes cluster.resources.managers[action.priority]
    return action


def _redirect(r: Any, path: str) -> RedirectAction:
    scheme = None
    if r.https_redirect:
        scheme = b"https"
    elif r.scheme_redirect:
        scheme = r.scheme_redirect.lower().encode()
    path_redirect = None
    if r.path_redirect:
        path_redirect = r.path_redirect.encode()
    return RedirectAction(
        scheme=scheme, host=r.host_redirect.encode() or None, port=r.port_redirect or None,
        path=path_redirect, prefix_rewrite=r.prefix_rewrite.encode() if r.HasField("prefix_rewrite") else None,
        regex_rewrite=_rewrite(r, path), status=_REDIRECT_CODES[r.response_code],
        strip_query=r.strip_query,
    )


def _direct(d: Any, path: str) -> DirectAction:
    if not 200 <= d.status <= 599:
        raise ProxyConfigError("status must be in [200, 599]", f"{path}.status")
    body = b""
    if d.HasField("body"):
        src = d.body
        which = src.WhichOneof("specifier")
        if which == "inline_string":
            body = src.inline_string.encode()
        elif which == "inline_bytes":
            body = src.inline_bytes
        elif which == "filename":  # read when the config is loaded (data_sources.py), never here
            raise ProxyConfigError(f"{src.filename} was not read when the config was loaded", f"{path}.body.filename")
    return DirectAction(d.status, body)


def _resilience(routes: tuple[Route, ...], vh_msg: Any, vpath: str) -> None:
    """Retry policy (the route's replaces the virtual host's whole), route timeouts, the retry
    buffer limit and attempt-count headers onto each forwarding route's action."""
    vh_policy = (compile_retry_policy(vh_msg.retry_policy, f"{vpath}.retry_policy")
                 if vh_msg.HasField("retry_policy") else None)
    vh_limit = (vh_msg.per_request_buffer_limit_bytes.value
                if vh_msg.HasField("per_request_buffer_limit_bytes") else None)
    for ri, (route, msg) in enumerate(zip(routes, vh_msg.routes)):
        if route.action_kind != FORWARD:
            continue
        a = msg.route
        apath = f"{vpath}.routes[{ri}].route"
        act = route.action
        assert isinstance(act, ForwardAction)
        act.retry_policy = (compile_retry_policy(a.retry_policy, f"{apath}.retry_policy")
                            if a.HasField("retry_policy") else vh_policy)
        act.idle_timeout_set = a.HasField("idle_timeout")
        act.idle_timeout = seconds(a.idle_timeout) if act.idle_timeout_set else 0.0
        if a.HasField("max_stream_duration"):
            msd = a.max_stream_duration
            for name in ("grpc_timeout_header_max", "grpc_timeout_header_offset"):
                if msd.HasField(name):
                    raise ProxyConfigError(f"{name} is not supported yet (no gRPC timeouts)",
                                           f"{apath}.max_stream_duration.{name}")
            if msd.HasField("max_stream_duration"):
                act.max_stream_duration = seconds(msd.max_stream_duration)
        act.retry_buffer_limit = (msg.per_request_buffer_limit_bytes.value
                                  if msg.HasField("per_request_buffer_limit_bytes") else vh_limit)
        act.attempt_count_upstream = vh_msg.include_request_attempt_count
        act.attempt_count_response = vh_msg.include_attempt_count_in_response
        if act.retry_policy is not None:
            act.retry_min_status, act.retry_gate_headers = _retry_min_status(act.retry_policy)
        act.resilient = bool(act.retry_policy is not None or act.idle_timeout or act.max_stream_duration
                             or act.attempt_count_upstream or act.attempt_count_response)
        act.eager_resilience = bool(act.idle_timeout or act.max_stream_duration or act.attempt_count_response
                                    or (act.retry_policy is not None and act.retry_policy.per_try_timers))


def _retry_min_status(p: Any) -> tuple[int, frozenset[bytes]]:
    """The lowest response status ``p`` may retry (0: any, for retriable_headers), and the
    response headers that make a lower one retriable (grpc-status for the gRPC conditions,
    x-envoy-ratelimited), so a stream makes no RetryState for responses it can never retry."""
    bits = p.retry_on
    if bits & rs.RETRY_ON_RETRIABLE_HEADERS:
        return 0, frozenset()
    gate = set()
    if bits & (rs.RETRY_ON_GRPC_CANCELLED | rs.RETRY_ON_GRPC_DEADLINE_EXCEEDED | rs.RETRY_ON_GRPC_RESOURCE_EXHAUSTED
               | rs.RETRY_ON_GRPC_UNAVAILABLE | rs.RETRY_ON_GRPC_INTERNAL):
        gate.add(b"grpc-status")
    if bits & rs.RETRY_ON_ENVOY_RATE_LIMITED:
        gate.add(b"x-envoy-ratelimited")
    low = 600
    if bits & rs.RETRY_ON_5XX:
        low = 500
    if bits & rs.RETRY_ON_GATEWAY_ERROR:
        low = min(low, 502)
    if bits & rs.RETRY_ON_RETRIABLE_4XX:
        low = min(low, 409)
    if bits & rs.RETRY_ON_RETRIABLE_STATUS_CODES and p.retriable_status_codes:
        low = min(low, *p.retriable_status_codes)
    return low, frozenset(gate)
