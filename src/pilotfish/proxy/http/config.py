"""The compiled configuration the connection manager reads: plain, slotted, immutable-by-convention.

What belongs to the layers above (the route table, access logs, filters) is held as ``Any``
with its type named in a comment: this layer never imports them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..common.stats import HttpStats, ListenerStats
    from ..upstream.cluster import Cluster

# server_header_transformation
OVERWRITE, APPEND_IF_ABSENT, PASS_THROUGH = range(3)


@dataclass(slots=True)
class HcmConfig:
    """One HttpConnectionManager, resolved."""

    stat_prefix: str
    stats: HttpStats
    route_table: Any  # router.route_table.RouteTable
    filters: tuple[str, ...]  # explicit chain, router last
    # The router's Stream class (router/stream.py), called with (connection, head, this, loop time).
    new_stream: Any = None
    server_name: bytes = b"envoy"  # Envoy's default (Istio's listeners set istio-envoy)
    server_transformation: int = OVERWRITE
    use_remote_address: bool = False
    xff_num_trusted_hops: int = 0
    generate_request_id: bool = True
    preserve_external_request_id: bool = False
    always_set_request_id: bool = False
    request_headers_timeout: float = 0.0  # 0: disabled (Envoy's default)
    request_timeout: float = 0.0  # the whole request must be read within it; 0: disabled
    underscores: int = 0  # headers_with_underscores_action: 0 ALLOW, 1 REJECT_REQUEST, 2 DROP_HEADER
    idle_timeout: float = 3600.0
    stream_idle_timeout: float = 300.0  # every stream (downstream.py; tunnels: tunnel.py); 0: none
    max_requests_per_connection: int = 0
    max_header_bytes: int = 60 * 1024
    max_headers: int = 100
    max_request_bytes: int = 0  # buffer filter's max_request_bytes; 0: no limit
    strip_any_host_port: bool = False
    strip_matching_host_port: bool = False
    accept_http_10: bool = False
    default_host_http10: bytes = b""
    allow_absolute_url: bool = True
    suppress_envoy_headers: bool = False
    access_logs: tuple[Any, ...] = ()  # filters.access_log.AccessLogSink
    clusters: dict[str, Cluster] = field(default_factory=dict)
    buffer_limit: int = 1024 * 1024
    listener_port: int = 0
    peer_exchange: Any = None  # istio.metadata_exchange (peer_metadata.PeerExchange)
    istio_stats: Any = None  # istio.stats (istio_metrics.IstioStatsRecorder)
    cors: Any = None  # envoy.filters.http.cors (cors_filter.CorsFilter)
    fault: Any = None  # envoy.filters.http.fault (fault_filter.FaultFilter)
    after_route: Any = None  # callable(stream, route, cluster) -> taken: cors and fault, in order
    upgrades: dict[bytes, bool] = field(default_factory=dict)  # upgrade_configs: type -> enabled
    # Edge features (compile/edge.py); None when not configured, so a request pays nothing.
    pre_route: Any = None  # callable(stream) -> answered: path normalization, health_check filter
    local_reply: Any = None  # local_reply_config (local_reply_config.LocalReplyRewriter)
    log_capture: Any = None  # callable(stream) -> what log_format operators read beyond the entry
    # The overload manager's request-level actions while one is active (overload.RequestShed),
    # set by the server; None otherwise: the one attribute a new stream reads for them.
    overload: Any = None
    # Summaries of the fields above, set once they are (``derive``), so a request tests one flag.
    strip_port: bool = False  # strip_any_host_port or strip_matching_host_port
    edits_request: bool = False  # the upstream head is edited, not only appended to (XFF, peer metadata)
    edits_response: bool = False  # the response head too (peer metadata, always_set_request_id)
    server_header: tuple[bytes, bytes] = (b"server", b"envoy")  # the Server header it sets

    def derive(self) -> None:
        """Set the summaries from the fields they summarise (at compile time, after those)."""
        self.strip_port = self.strip_any_host_port or self.strip_matching_host_port
        self.edits_request = self.use_remote_address or self.peer_exchange is not None
        self.edits_response = self.peer_exchange is not None or self.always_set_request_id
        self.server_header = (b"server", self.server_name)


@dataclass(slots=True)
class ListenerConfig:
    name: str
    address: str
    port: int
    hcm: HcmConfig
    stats: ListenerStats
    backlog: int = 1024
    reuse_port: bool = True
    source: Any = None  # the Listener message it was compiled from
    key: bytes = b""  # its deterministic serialization: equal keys mean only routes/clusters changed
    # runtime envoy.resource_limits.listener.<name>.connection_limit (None: none), and the
    # listener's exemptions from the global limit and from overload actions
    connection_limit: int | None = None
    ignore_global_limit: bool = False
    bypass_overload: bool = False
