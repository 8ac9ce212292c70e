"""What the accepted config references: the RDS and EDS names to subscribe to, and the stats
scopes that count for them (``http.<stat_prefix>.rds.<name>``, ``cluster.<name>``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ..compile.subset import connection_managers


def _rds_refs(listeners: Iterable[Any]) -> Iterator[tuple[str, str]]:
    """(RDS name, stat_prefix) of each HttpConnectionManager of the listeners that uses RDS."""
    for _, hcm in connection_managers(listeners):
        if hcm.HasField("rds") and hcm.rds.route_config_name:
            yield hcm.rds.route_config_name, hcm.stat_prefix


def route_names(listeners: Iterable[Any]) -> set[str]:
    """RDS names the listeners' HttpConnectionManagers ask for."""
    return {name for name, _ in _rds_refs(listeners)}


def eds_name(cluster: Any) -> str | None:
    """The ClusterLoadAssignment name an EDS cluster asks for (service_name, else its name)."""
    if cluster.WhichOneof("cluster_discovery_type") != "type" or cluster.type != 3:  # EDS
        return None
    return cluster.eds_cluster_config.service_name or cluster.name  # type: ignore[no-any-return]


def route_stat_prefixes(listeners: Iterable[Any]) -> dict[str, set[str]]:
    """RDS name → the stat_prefixes of the HttpConnectionManagers asking for it (its stats live
    under ``http.<stat_prefix>.rds.<name>``)."""
    out: dict[str, set[str]] = {}
    for name, prefix in _rds_refs(listeners):
        out.setdefault(name, set()).add(prefix)
    return out


def eds_stat_names(clusters: Iterable[Any]) -> dict[str, set[str]]:
    """ClusterLoadAssignment name → the stat names of the EDS clusters asking for it."""
    out: dict[str, set[str]] = {}
    for c in clusters:
        service = eds_name(c)
        if service is not None:
            out.setdefault(service, set()).add(c.alt_stat_name or c.name)
    return out


def eds_names(clusters: Iterable[Any]) -> set[str]:
    return {n for n in map(eds_name, clusters) if n is not None}
