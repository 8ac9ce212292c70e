"""DestinationRule (networking.istio.io): policies applied to traffic after routing.

Load balancing, connection pools, outlier detection, client TLS, tunnelling and subsets
for one host. Every served version (v1alpha3, v1beta1, v1) has the same schema.
"""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field, model_validator

from ..base import IstioModel
from ..duration import GoDuration
from ..kind_info import KindInfo
from .common import PortSelector, WorkloadSelector
from .virtualservice import Int32, UInt32, check_one_of


class H2UpgradePolicy(enum.StrEnum):
    DEFAULT = "DEFAULT"
    DO_NOT_UPGRADE = "DO_NOT_UPGRADE"
    UPGRADE = "UPGRADE"


class TcpKeepalive(IstioModel):
    probes: UInt32 | None = None
    time: GoDuration | None = None
    interval: GoDuration | None = None


class TCPSettings(IstioModel):
    max_connections: Int32 | None = None
    connect_timeout: GoDuration | None = None
    tcp_keepalive: TcpKeepalive | None = None
    max_connection_duration: GoDuration | None = None
    idle_timeout: GoDuration | None = None


class HTTP2KeepAlive(IstioModel):
    interval: GoDuration | None = None
    timeout: GoDuration | None = None


class HTTPSettings(IstioModel):
    http1_max_pending_requests: Int32 | None = None
    http2_max_requests: Int32 | None = None
    max_requests_per_connection: Int32 | None = None
    max_retries: Int32 | None = None
    idle_timeout: GoDuration | None = None
    h2_upgrade_policy: H2UpgradePolicy | None = None
    use_client_protocol: bool | None = None
    max_concurrent_streams: Int32 | None = None
    http2_keep_alive: HTTP2KeepAlive | None = None


class ConnectionPoolSettings(IstioModel):
    """Circuit-breaker budgets for connections to an upstream host."""

    tcp: TCPSettings | None = None
    http: HTTPSettings | None = None


class SimpleLB(enum.StrEnum):
    UNSPECIFIED = "UNSPECIFIED"
    LEAST_CONN = "LEAST_CONN"
    RANDOM = "RANDOM"
    PASSTHROUGH = "PASSTHROUGH"
    ROUND_ROBIN = "ROUND_ROBIN"
    LEAST_REQUEST = "LEAST_REQUEST"


class CookieAttribute(IstioModel):
    name: str
    value: str | None = None


class HTTPCookie(IstioModel):
    name: str
    path: str | None = None
    ttl: GoDuration | None = None
    attributes: list[CookieAttribute] | None = None


class RingHash(IstioModel):
    minimum_ring_size: int | None = Field(default=None, ge=0)


class MagLev(IstioModel):
    table_size: int | None = Field(default=None, ge=0)


class ConsistentHashLB(IstioModel):
    """Session affinity: hash on a header, cookie, source IP or query parameter."""

    http_header_name: str | None = None
    http_cookie: HTTPCookie | None = None
    use_source_ip: bool | None = None
    http_query_parameter_name: str | None = None
    ring_hash: RingHash | None = None
    maglev: MagLev | None = None
    minimum_ring_size: int | None = Field(default=None, ge=0)  # deprecated: use ringHash

    @model_validator(mode="after")
    def _one_key_one_algorithm(self) -> ConsistentHashLB:
        check_one_of(self, "http_header_name", "http_cookie", "use_source_ip", "http_query_parameter_name")
        check_one_of(self, "ring_hash", "maglev")
        return self

    @property
    def hash_algorithm(self) -> RingHash | MagLev | None:
        return self.ring_hash if self.ring_hash is not None else self.maglev


class LocalityDistribute(IstioModel):
    from_: str | None = None
    to: dict[str, UInt32] | None = None


class LocalityFailover(IstioModel):
    from_: str | None = None
    to: str | None = None


class LocalityLoadBalancerSetting(IstioModel):
    distribute: list[LocalityDistribute] | None = None
    failover: list[LocalityFailover] | None = None
    failover_priority: list[str] | None = None
    enabled: bool | None = None


class ZoneAwareLbSetting(IstioModel):
    enabled: bool | None = None
    failover: list[LocalityFailover] | None = None
    failover_priority: list[str] | None = None
    min_cluster_size: int | None = Field(default=None, ge=1, le=4_294_967_295)


class WarmupConfiguration(IstioModel):
    """Slow start: ramp traffic to new endpoints over ``duration``."""

    duration: GoDuration
    minimum_percent: float | None = Field(default=None, ge=0, le=100)
    aggression: float | None = Field(default=None, ge=0)


class BackendUtilization(IstioModel):
    """Client-side weighted round robin from backend-reported utilization (ORCA)."""

    weight_expiration_period: GoDuration | None = None
    weight_update_period: GoDuration | None = None
    weight_stabilization_period: GoDuration | None = None
    error_utilization_penalty_percent: UInt32 | None = None
    metric_names_for_computing_utilization: list[str] | None = None


class LoadBalancerSettings(IstioModel):
    simple: SimpleLB | None = None
    consistent_hash: ConsistentHashLB | None = None
    backend_utilization: BackendUtilization | None = None
    locality_lb_setting: LocalityLoadBalancerSetting | None = None
    zone_aware_lb_setting: ZoneAwareLbSetting | None = None
    warmup_duration_secs: GoDuration | None = None  # deprecated: use warmup
    warmup: WarmupConfiguration | None = None

    @model_validator(mode="after")
    def _one_policy(self) -> LoadBalancerSettings:
        check_one_of(self, "simple", "consistent_hash", "backend_utilization")
        return self


class OutlierDetection(IstioModel):
    """Passive health checking: eject hosts that keep failing."""

    consecutive_errors: Int32 | None = None  # deprecated
    split_external_local_origin_errors: bool | None = None
    consecutive_local_origin_failures: UInt32 | None = None
    consecutive_gateway_errors: UInt32 | None = None
    consecutive_5xx_errors: UInt32 | None = Field(default=None, alias="consecutive5xxErrors")
    interval: GoDuration | None = None
    base_ejection_time: GoDuration | None = None
    max_ejection_percent: Int32 | None = None
    min_health_percent: Int32 | None = None
    outlier_detection_http_error_codes: list[Annotated[int, Field(ge=100, le=599)]] | None = None


class TLSmode(enum.StrEnum):
    DISABLE = "DISABLE"
    SIMPLE = "SIMPLE"
    MUTUAL = "MUTUAL"
    ISTIO_MUTUAL = "ISTIO_MUTUAL"


class ClientTLSSettings(IstioModel):
    """TLS towards the upstream (origination)."""

    mode: TLSmode | None = None
    client_certificate: str | None = None
    private_key: str | None = None
    ca_certificates: str | None = None
    credential_name: str | None = None
    subject_alt_names: list[str] | None = None
    sni: str | None = None
    insecure_skip_verify: bool | None = None
    ca_crl: str | None = None


class PortTrafficPolicy(IstioModel):
    port: PortSelector | None = None
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None


class TunnelSettings(IstioModel):
    """Tunnel TCP over HTTP CONNECT/POST to ``targetHost:targetPort``."""

    protocol: str | None = None
    target_host: str
    target_port: UInt32


class ProxyProtocolVersion(enum.StrEnum):
    V1 = "V1"
    V2 = "V2"


class ProxyProtocol(IstioModel):
    version: ProxyProtocolVersion | None = None


class RetryBudget(IstioModel):
    percent: float | None = Field(default=None, ge=0, le=100)
    min_retry_concurrency: UInt32 | None = None
    budget_interval: GoDuration | None = None


class TrafficPolicy(IstioModel):
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None
    port_level_settings: list[PortTrafficPolicy] | None = Field(default=None, max_length=4096)
    tunnel: TunnelSettings | None = None
    proxy_protocol: ProxyProtocol | None = None
    retry_budget: RetryBudget | None = None


class Subset(IstioModel):
    """A named version of the service, selected by endpoint labels."""

    name: str
    labels: dict[str, str] | None = None
    traffic_policy: TrafficPolicy | None = None


class DestinationRule(IstioModel):
    """networking.istio.io DestinationRule spec."""

    host: str
    traffic_policy: TrafficPolicy | None = None
    subsets: list[Subset] | None = None
    export_to: list[str] | None = None
    workload_selector: WorkloadSelector | None = None


KINDS = [
    KindInfo(
        group="networking.istio.io",
        kind="DestinationRule",
        versions=("v1", "v1beta1", "v1alpha3"),
        model=DestinationRule,
        plural="destinationrules",
    )
]
