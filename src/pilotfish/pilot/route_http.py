"""A VirtualService's ``http`` rules → Envoy routes for one proxy and one listener port
(Istio's BuildHTTPRoutesForVirtualService and TranslateRoute), delegates merged in.

Rules are tried in order and the first match wins; a rule with several matches yields one
route per match that applies to this proxy (its gateway, source labels, namespace and port).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Set
from dataclasses import dataclass

from envoy.config.route.v3 import route_components_pb2 as rc

from ..config.base import Resource
from ..config.models.virtualservice import Destination, HTTPMatchRequest, HTTPRoute, StringMatch
from .proxy import Proxy
from .push_context import PushContext
from .route_action import (
    FAULT_FILTER,
    HeaderOps,
    destination_cluster,
    direct_response_action,
    fault_config,
    hash_policy_for,
    mesh_retry,
    mirror_fraction,
    mirror_policy,
    redirect_action,
    retry_policy,
    set_timeout,
)
from .route_cors import CORS_FILTER, cors_policy
from .route_match import is_catch_all, port_matches, source_matches, translate_match


@dataclass(frozen=True, slots=True)
class Rule:
    """One http rule with the namespace its short destination hosts resolve in (a delegate's
    rules resolve in the delegate's namespace) and the one gateway names resolve in."""

    http: HTTPRoute
    namespace: str
    gateway_namespace: str


@dataclass(frozen=True, slots=True)
class RouteContext:
    push: PushContext
    proxy: Proxy
    listen_port: int
    gateways: Set[str]
    is_tls: bool = False

    @property
    def proxyless_grpc(self) -> bool:
        return self.proxy.generator == "grpc"


def http_routes(ctx: RouteContext, vs: Resource) -> list[rc.Route]:
    """The routes of ``vs`` for this proxy and port; empty when no rule applies."""
    out: list[rc.Route] = []
    source = config_path(vs)
    for rule in flatten(ctx.push, vs):
        matches: list[HTTPMatchRequest | None] = list(rule.http.match or ()) or [None]
        catch_all = rule.http.match is None or not rule.http.match
        for match in matches:
            route = translate_route(ctx, rule, match)
            if route is None:
                continue
            # Istio's route metadata: which VirtualService made it (proxy-config, x explain).
            route.metadata.filter_metadata["istio"].fields["config"].string_value = source
            out.append(route)
            if is_catch_all(route):
                catch_all = True
                break
        if catch_all:
            break
    return out


def config_path(vs: Resource) -> str:
    """``/apis/networking.istio.io/v1/namespaces/NS/virtual-service/NAME``, as Istio writes it."""
    return f"/apis/networking.istio.io/v1/namespaces/{vs.namespace}/virtual-service/{vs.name}"


def flatten(push: PushContext, vs: Resource) -> Iterator[Rule]:
    """The rules of ``vs`` with every delegate rule replaced by the delegate's rules merged under
    it (Istio's mergeHTTPRoutes); a delegate that is missing contributes nothing."""
    for http in vs.spec.http or ():
        if http.delegate is None or not http.delegate.name:
            yield Rule(http, vs.namespace, vs.namespace)
            continue
        child = push.delegate(http.delegate.namespace or vs.namespace, http.delegate.name)
        if child is None:
            continue
        for sub in child.spec.http or ():
            if sub.delegate is not None:
                continue  # Istio supports one level of delegation
            merged = merge_rule(http, sub)
            if merged is not None:
                yield Rule(merged, child.namespace, vs.namespace)


def merge_rule(root: HTTPRoute, child: HTTPRoute) -> HTTPRoute | None:
    """The child's rule under the root's matches; the child's settings win, the root's fill in.
    None when no child match fits inside a root match."""
    matches = merge_matches(root.match, child.match)
    if matches is None:
        return None
    name = child.name or root.name
    if child.name and root.name:
        name = f"{root.name}-{child.name}"
    update = {"match": matches, "name": name, "delegate": None}
    for field in ("rewrite", "direct_response", "timeout", "retries", "fault", "mirror", "mirror_percent",
                  "mirror_percent_legacy", "mirror_percentage", "cors_policy", "mirrors", "headers"):
        if getattr(child, field) is None:
            update[field] = getattr(root, field)
    return child.model_copy(update=update)


def merge_matches(root: list[HTTPMatchRequest] | None, child: list[HTTPMatchRequest] | None) -> list[HTTPMatchRequest] | None:
    if not root:
        return child
    if not child:
        return root
    out = []
    for sub in child:
        fits = [merge_match(r, sub) for r in root if not match_conflict(r, sub)]
        if not fits:
            return None
        out.extend(fits)
    return out


def merge_match(root: HTTPMatchRequest, child: HTTPMatchRequest) -> HTTPMatchRequest:
    name = child.name or root.name
    if child.name and root.name:
        name = f"{root.name}-{child.name}"
    update: dict[str, object] = {"name": name}
    for field in ("uri", "scheme", "method", "authority", "port", "source_namespace", "gateways", "stat_prefix"):
        if not getattr(child, field):
            update[field] = getattr(root, field)
    for field in ("headers", "without_headers", "query_params", "source_labels"):
        merged = {**(getattr(root, field) or {}), **(getattr(child, field) or {})}
        update[field] = merged or None
    return child.model_copy(update=update)


def match_conflict(root: HTTPMatchRequest, leaf: HTTPMatchRequest) -> bool:
    """Istio's hasConflict: the leaf must narrow the root, never contradict it."""
    for a, b in ((root.uri, leaf.uri), (root.scheme, leaf.scheme), (root.method, leaf.method),
                 (root.authority, leaf.authority)):
        if _string_conflict(a, b):
            return True
    for field in ("headers", "without_headers", "query_params"):
        rmap = getattr(root, field) or {}
        for key, value in (getattr(leaf, field) or {}).items():
            if _string_conflict(rmap.get(key), value):
                return True
    if bool(root.ignore_uri_case) != bool(leaf.ignore_uri_case):
        return True
    if root.port and leaf.port and root.port != leaf.port:
        return True
    if root.source_namespace and leaf.source_namespace != root.source_namespace:
        return True
    for key, value in (leaf.source_labels or {}).items():
        if key in (root.source_labels or {}) and (root.source_labels or {})[key] != value:
            return True
    if root.gateways and leaf.gateways and not set(leaf.gateways) <= set(root.gateways):
        return True
    return False


def _string_conflict(root: StringMatch | None, leaf: StringMatch | None) -> bool:
    if root is None or leaf is None:
        return False
    if root.regex or leaf.regex:
        return True
    if root.exact:
        return bool(leaf.prefix) or leaf.exact != root.exact
    if root.prefix:
        return not (leaf.prefix or leaf.exact or "").startswith(root.prefix)
    return True


def translate_route(ctx: RouteContext, rule: Rule, match: HTTPMatchRequest | None) -> rc.Route | None:
    """Istio's TranslateRoute; None when the match does not apply to this proxy or port."""
    http = rule.http
    if not port_matches(match, ctx.listen_port):
        return None
    if not source_matches(match, ctx.proxy, ctx.gateways, rule.gateway_namespace):
        return None
    name = http.name or ""
    if match is not None and match.name:
        name = f"{name}.{match.name}"
    out = rc.Route(name=name, match=translate_match(match))
    authority = ""
    if http.headers is not None:
        ops = HeaderOps(http.headers)
        ops.apply(out)
        authority = ops.authority
    if http.redirect is not None:
        redirect = redirect_action(http.redirect, ctx.listen_port, ctx.is_tls)
        if redirect is None:
            return None
        out.redirect.CopyFrom(redirect)
    elif http.direct_response is not None:
        out.direct_response.CopyFrom(direct_response_action(http.direct_response))
    else:
        _forward(ctx, rule, out, authority)
    if http.fault is not None:
        fault = fault_config(http.fault)
        if fault is not None:
            out.typed_per_filter_config[FAULT_FILTER].CopyFrom(fault)
    if http.cors_policy is not None:
        out.typed_per_filter_config[CORS_FILTER].CopyFrom(cors_policy(http.cors_policy))
    return out


def _forward(ctx: RouteContext, rule: Rule, out: rc.Route, authority: str) -> None:
    """applyHTTPRouteDestination: clusters, rewrites, mirrors, retries, timeout, hash policy."""
    http = rule.http
    action = out.route
    set_timeout(action, http.timeout, ctx.proxyless_grpc)
    if http.rewrite is not None:
        rw = http.rewrite
        if rw.uri_regex_rewrite is not None:
            action.regex_rewrite.pattern.regex = rw.uri_regex_rewrite.match or ""
            action.regex_rewrite.substitution = rw.uri_regex_rewrite.rewrite or ""
        elif rw.uri:
            action.prefix_rewrite = rw.uri
        if rw.authority:
            authority = rw.authority
    if authority:
        action.host_rewrite_literal = authority
    cluster = _cluster_of(ctx, rule)
    if http.mirror is not None:
        fraction = mirror_fraction(http.mirror_percentage, http.effective_mirror_percent)
        if fraction is not None:
            action.request_mirror_policies.append(mirror_policy(cluster(http.mirror), fraction))
    for mirror in http.mirrors or ():
        fraction = mirror_fraction(mirror.percentage, None)
        if fraction is not None and mirror.destination is not None:
            action.request_mirror_policies.append(mirror_policy(cluster(mirror.destination), fraction))
    destinations = [d for d in http.route or () if d.destination is not None]
    consistent_hash = False
    weighted = [d for d in destinations if d.weight] if len(destinations) > 1 else []
    if len(destinations) == 1 or (destinations and not weighted):
        dst = destinations[0]
        assert dst.destination is not None
        action.cluster = cluster(dst.destination)
        if dst.headers is not None:
            ops = HeaderOps(dst.headers)
            ops.apply(out)
            if ops.authority and not action.host_rewrite_literal:
                action.host_rewrite_literal = ops.authority
        hp = hash_policy_for(ctx.push, ctx.proxy, dst.destination, rule.namespace, ctx.listen_port)
        if hp is not None:
            action.hash_policy.append(hp)
            consistent_hash = True
    elif weighted:
        for dst in weighted:
            assert dst.destination is not None
            cw = action.weighted_clusters.clusters.add(name=cluster(dst.destination))
            cw.weight.value = dst.weight or 0
            if dst.headers is not None:
                # a per-destination authority would be ClusterWeight.host_rewrite_literal, outside
                # our proxy's subset: only the header edits are kept.
                HeaderOps(dst.headers).apply(cw)
            hp = hash_policy_for(ctx.push, ctx.proxy, dst.destination, rule.namespace, ctx.listen_port)
            if hp is not None:
                action.hash_policy.append(hp)
    else:
        action.cluster = "UnknownService"  # a rule without destinations: nothing to reach
    policy = retry_policy(http.retries if http.retries is not None else mesh_retry(ctx.push), consistent_hash)
    if policy is not None:
        action.retry_policy.CopyFrom(policy)


def _cluster_of(ctx: RouteContext, rule: Rule) -> Callable[[Destination], str]:
    def cluster(dest: Destination) -> str:
        return destination_cluster(ctx.push, ctx.proxy, dest, rule.namespace, ctx.listen_port)
    return cluster
