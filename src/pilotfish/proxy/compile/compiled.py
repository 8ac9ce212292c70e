"""The compiled configuration of a whole proxy: listeners, clusters, admin, and what a config
swap needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..http.config import ListenerConfig
    from ..upstream.cluster import Cluster


@dataclass(slots=True)
class AdminConfig:
    address: str
    port: int


@dataclass(slots=True)
class RuntimeConfig:
    listeners: list[ListenerConfig]
    clusters: dict[str, Cluster]
    admin: AdminConfig | None
    bootstrap: Any  # the parsed Bootstrap message, for /config_dump only
    warnings: list[str] = field(default_factory=list)
    # What a config swap needs beyond the above (filled by compile.dynamic):
    cluster_keys: dict[str, bytes] = field(default_factory=dict)  # serialized Cluster, by name
    host_updates: list[tuple[Cluster, Any]] = field(default_factory=list)  # kept clusters' new settings
    dynamic: Any = None  # xds.resources.Resources and warming names, for /config_dump
