"""The proxy's xDS client: ADS state of the world over gRPC, compiled into runtime snapshots."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .settings import AdsSettings, ads_settings

if TYPE_CHECKING:
    from ..server import ProxyServer

__all__ = ["AdsSettings", "ads_settings", "start_xds"]


def start_xds(server: ProxyServer) -> Any:
    """Start the config source when the bootstrap has dynamic_resources; None otherwise.

    One ADS stream per proxy, as Envoy: a single process (or worker 0 of ``--concurrency N``)
    runs the ADS client; the other workers follow worker 0's accepted config (relay.py). Either
    object has ``ready`` (initial config in) and ``stop()``.
    """
    settings = ads_settings(server.config.bootstrap)
    if settings is None:
        return None
    from .. import workers
    from .dynamic_config import DynamicConfig

    config: Any = DynamicConfig(server)
    ctx = workers.current
    if ctx is not None and ctx.count > 1 and ctx.index != 0:
        from .relay import RelayFollower

        follower = RelayFollower(ctx.control_paths[0], config, settings.initial_fetch_timeout, server.rng)
        follower.start()
        return follower
    from .client import AdsClient

    hub = ctx.relay if ctx is not None else None
    if hub is not None:
        from .relay import RelayedConfig

        config = RelayedConfig(config, hub)
    node = type(server.config.bootstrap.node)()
    node.CopyFrom(server.config.bootstrap.node)
    if not node.user_agent_name:
        node.user_agent_name = "pilotfish"
    client = AdsClient(settings, node, config, server.rng)
    client.start()
    if hub is not None:
        hub.follow(client.ready)
    return client
