"""The proxy's config source: pilotfish.xds's ADS client (or worker 0's relay) feeding DynamicConfig.

One ADS stream per proxy, as Envoy: a single process (or worker 0 of ``--concurrency N``) runs
the ADS client; the other workers follow worker 0's accepted config (relay.py). Either object
has ``ready`` (initial config in) and ``stop()``. The client is handed what is the proxy's: the
supported-subset checker, the stats sink, the wall clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ...xds.errors import ResourceRejected, XdsConfigError
from ...xds.settings import ads_settings
from ..common.errors import ProxyConfigError
from ..compile.data_sources import resolve_data_sources
from ..compile.subset import CheckResult, check_message
from .dynamic_config import DynamicConfig
from .relay import RelayedConfig, RelayFollower, RelayHub
from .workers import WorkerContext
from .xds_stats import XdsStats

if TYPE_CHECKING:
    from ...xds.client import ConfigTarget
    from .server import ConfigSource, ProxyServer


def check_resource(message: Any, path: str) -> Sequence[str]:
    """The supported-subset check of one xDS resource, in pilotfish.xds's terms: its warnings,
    or ResourceRejected naming the field. DataSource files it names are read now, inlined
    (compile/ does no I/O)."""
    result = CheckResult()
    try:
        check_message(message, path, result)
        unreadable = resolve_data_sources(message, path)
        if unreadable:
            raise ProxyConfigError.collected(unreadable)
    except ProxyConfigError as exc:
        raise ResourceRejected(str(exc)) from None
    return result.warnings


def open_config_source(server: ProxyServer, *, group: WorkerContext | None, relay: RelayHub | None,
                       clock: Callable[[], float]) -> ConfigSource | None:
    """Start the config source when the bootstrap has dynamic_resources; None otherwise.

    ``group`` is the worker group (None in a single process), ``relay`` worker 0's hub (None
    in a single process and in the other workers).
    """
    try:
        settings = ads_settings(server.config.bootstrap)
    except XdsConfigError as exc:  # load_bootstrap checked it; only a bootstrap built by hand gets here
        raise ProxyConfigError(exc.message, exc.field_path) from None
    if settings is None:
        return None
    dynamic = DynamicConfig(server, clock)
    if group is not None and group.count > 1 and group.index != 0:
        follower = RelayFollower(group.control_paths[0], dynamic, settings.initial_fetch_timeout, server.rng)
        follower.start()
        return follower
    # The ADS client's module brings grpc, about 10 MB of a proxy's memory: imported only by a
    # proxy that has an ADS source (a static bootstrap runs in 38 MB instead of 48).
    from ...xds.client import AdsClient

    config: ConfigTarget = dynamic if relay is None else RelayedConfig(dynamic, relay)
    node = type(server.config.bootstrap.node)()
    node.CopyFrom(server.config.bootstrap.node)
    if not node.user_agent_name:
        node.user_agent_name = "pilotfish"
    client = AdsClient(settings, node, config, server.rng, check=check_resource,
                       stats=XdsStats(server.stats, dynamic, clock))
    client.start()
    if relay is not None:
        relay.follow(client.ready)
    return client
