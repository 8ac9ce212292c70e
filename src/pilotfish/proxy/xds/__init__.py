"""The proxy's xDS client: ADS state of the world over gRPC, compiled into runtime snapshots."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .settings import AdsSettings, ads_settings

if TYPE_CHECKING:
    from ..server import ProxyServer
    from .client import AdsClient

__all__ = ["AdsSettings", "ads_settings", "start_xds"]


def start_xds(server: ProxyServer) -> AdsClient | None:
    """Start the ADS client when the bootstrap has dynamic_resources; None otherwise."""
    settings = ads_settings(server.config.bootstrap)
    if settings is None:
        return None
    from .client import AdsClient
    from .dynamic_config import DynamicConfig

    node = type(server.config.bootstrap.node)()
    node.CopyFrom(server.config.bootstrap.node)
    if not node.user_agent_name:
        node.user_agent_name = "pilotfish"
    client = AdsClient(settings, node, DynamicConfig(server), server.rng)
    client.start()
    return client
