"""Locality load balancing: which localities a proxy prefers (priorities) or how it splits
traffic between them (weights), relative to the proxy's own locality.

Istio's rules (pilot/pkg/networking/core/loadbalancer): failover only applies with outlier
detection (without it a client never notices a locality going bad, so it would never move down a
priority); ``distribute`` and failover exclude each other; the DestinationRule's setting wins over
the mesh's, and ``enabled: false`` at the level that decides turns it off.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2

from ..config.models.destinationrule import LoadBalancerSettings, LocalityLoadBalancerSetting
from ..registry.model import Endpoint, Locality

REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"
SUBZONE_LABEL = "topology.istio.io/subzone"
NETWORK_LABEL = "topology.istio.io/network"

#: (a locality's LocalityLbEndpoints, the registry endpoints behind its lb_endpoints, in order)
Group = tuple[endpoint_components_pb2.LocalityLbEndpoints, Sequence[Endpoint]]


def effective_setting(mesh_setting: LocalityLoadBalancerSetting | None,
                      lb: LoadBalancerSettings | None) -> LocalityLoadBalancerSetting | None:
    """The DestinationRule's localityLbSetting, else the mesh's; None when the deciding one is
    disabled. (zoneAwareLbSetting is left out: it needs Envoy's zone-aware routing and a local
    cluster, which our proxy ignores.)"""
    setting = lb.locality_lb_setting if lb is not None and lb.locality_lb_setting is not None else mesh_setting
    if setting is None or setting.enabled is False:
        return None
    return setting


def wants_locality_weighted_config(setting: LocalityLoadBalancerSetting | None, failover_enabled: bool) -> bool:
    """Whether the cluster needs ``common_lb_config.locality_weighted_lb_config``: only when
    weights are distributed or failover is explicitly configured, since it changes how other
    policies (least request) pick hosts."""
    if setting is None:
        return False
    return bool(setting.distribute) or (failover_enabled and bool(setting.failover or setting.failover_priority))


def topology_labels(labels: Mapping[str, str], locality: Locality, network: str = "") -> dict[str, str]:
    """``labels`` plus the topology labels Istio adds to endpoints and proxies, so that
    ``failoverPriority`` can name them."""
    out = dict(labels)
    for key, value in ((REGION_LABEL, locality.region), (ZONE_LABEL, locality.zone),
                       (SUBZONE_LABEL, locality.subzone), (NETWORK_LABEL, network)):
        if value and key not in out:
            out[key] = value
    return out


def apply(cla: endpoint_pb2.ClusterLoadAssignment, groups: Sequence[Group], proxy_locality: Locality,
          proxy_labels: Mapping[str, str], setting: LocalityLoadBalancerSetting | None,
          failover_enabled: bool) -> None:
    """Set priorities or weights on ``cla`` (whose endpoints are ``groups``' in order) for a proxy
    in ``proxy_locality`` (Istio's ApplyLocalityLoadBalancer)."""
    if setting is None:
        return
    if setting.distribute:
        _apply_weights(cla, proxy_locality, setting)
    elif failover_enabled:
        if setting.failover_priority:
            _apply_failover_priorities(cla, groups, proxy_labels, setting.failover_priority)
            if setting.failover:
                _apply_failover(cla, proxy_locality, setting)
        else:
            _apply_failover(cla, proxy_locality, setting)


def _split(rule: str) -> tuple[str, str, str]:
    parts = (rule.split("/", 2) + ["", ""])[:3]
    return parts[0], parts[1], parts[2]


def locality_match(locality: Locality, rule: str) -> bool:
    """Does ``locality`` fall under ``rule`` (``region/zone/subzone``, ``*`` and trailing parts
    matching anything)?"""
    region, zone, subzone = _split(rule)
    return ((region == "*" or locality.region == region)
            and (zone in ("*", "") or locality.zone == zone)
            and (subzone in ("*", "") or locality.subzone == subzone))


def _of(group: endpoint_components_pb2.LocalityLbEndpoints) -> Locality:
    loc = group.locality
    return Locality(loc.region, loc.zone, loc.sub_zone)


def _apply_weights(cla: endpoint_pb2.ClusterLoadAssignment, proxy_locality: Locality,
                   setting: LocalityLoadBalancerSetting) -> None:
    """``distribute``: the first rule whose ``from`` matches the proxy splits its ``to`` weights
    among the matching localities (in proportion to their own weights); localities no ``to``
    names lose their endpoints."""
    for rule in setting.distribute or ():
        if not locality_match(proxy_locality, rule.from_ or ""):
            continue
        unmatched = set(range(len(cla.endpoints)))
        for target, weight in (rule.to or {}).items():
            originals: dict[int, int] = {}
            for i in sorted(unmatched):
                group = cla.endpoints[i]
                if locality_match(_of(group), target):
                    originals[i] = group.load_balancing_weight.value if group.HasField("load_balancing_weight") else 1
            unmatched -= set(originals)
            total = sum(originals.values())
            for i, original in originals.items():
                share = original * weight / total
                if share > 0:
                    cla.endpoints[i].load_balancing_weight.value = math.ceil(share)
        for i in unmatched:
            del cla.endpoints[i].lb_endpoints[:]
        return


def priority_of(proxy: Locality, endpoint: Locality) -> int:
    """0: same subzone, 1: same zone, 2: same region, 3: elsewhere."""
    if proxy.region != endpoint.region:
        return 3
    if proxy.zone != endpoint.zone:
        return 2
    return 0 if proxy.subzone == endpoint.subzone else 1


def _compact(priorities: Sequence[int]) -> list[int]:
    """Priorities renumbered 0..N in order, without gaps (Envoy requires no skipped levels)."""
    rank = {p: i for i, p in enumerate(sorted(set(priorities)))}
    return [rank[p] for p in priorities]


def _apply_failover(cla: endpoint_pb2.ClusterLoadAssignment, proxy_locality: Locality,
                    setting: LocalityLoadBalancerSetting) -> None:
    """Priorities by closeness to the proxy; a region other than the proxy's is the failover
    target (priority 3) only if a ``failover`` rule from the proxy's region names it, the rest
    come after (4). Composes with priorities already set by failoverPriority."""
    raw = []
    for group in cla.endpoints:
        loc = _of(group)
        p = priority_of(proxy_locality, loc)
        if p == 3:
            for rule in setting.failover or ():
                if rule.from_ == proxy_locality.region:
                    if loc.region != rule.to:
                        p = 4
                    break
        raw.append(group.priority * 5 + p)
    for group, p in zip(cla.endpoints, _compact(raw)):
        group.priority = p


def _failover_labels(names: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """``label`` or ``label=value`` (a value overriding the proxy's own)."""
    keys, overrides = [], {}
    for item in names:
        key, sep, value = item.partition("=")
        keys.append(key)
        if sep:
            overrides[key] = value
    return keys, overrides


def _apply_failover_priorities(cla: endpoint_pb2.ClusterLoadAssignment, groups: Sequence[Group],
                               proxy_labels: Mapping[str, str], names: Sequence[str]) -> None:
    """``failoverPriority``: endpoints matching the proxy on every listed label come first, then
    those matching all but the last, and so on; each locality splits into one group per level.
    A mismatching network label (listed first) does not demote by itself."""
    if not proxy_labels or not groups:
        return
    keys, overrides = _failover_labels(names)
    lowest = len(names)
    includes_network = bool(keys) and keys[0] == NETWORK_LABEL
    split: list[endpoint_components_pb2.LocalityLbEndpoints] = []
    for group, endpoints in groups:
        by_priority: dict[int, list[int]] = {}
        for i, ep in enumerate(endpoints):
            labels = topology_labels(ep.labels, ep.locality, ep.network)
            priority = adjust = 0
            for j, key in enumerate(keys):
                wanted = overrides.get(key, proxy_labels.get(key, ""))
                if wanted != labels.get(key, ""):
                    if j == 0 and includes_network:
                        adjust = lowest
                        continue
                    priority = lowest - j
                    break
            by_priority.setdefault(priority + adjust, []).append(i)
        for priority in sorted(by_priority):
            part = endpoint_components_pb2.LocalityLbEndpoints()
            part.CopyFrom(group)
            del part.lb_endpoints[:]
            part.priority = priority
            for i in by_priority[priority]:
                part.lb_endpoints.append(group.lb_endpoints[i])
            part.load_balancing_weight.value = sum(e.load_balancing_weight.value for e in part.lb_endpoints)
            split.append(part)
    for part, p in zip(split, _compact([s.priority for s in split])):
        part.priority = p
    del cla.endpoints[:]
    cla.endpoints.extend(split)
