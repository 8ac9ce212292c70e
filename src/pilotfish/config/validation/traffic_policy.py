"""TrafficPolicy validation (DestinationRule and its subsets): a port of Istio's
validateTrafficPolicy, validateConnectionPool, validateLoadBalancer, validateOutlierDetection,
ValidateTLS and ValidateLocalityLbSetting.

Functions append to a Verdict so that warnings (deprecated fields, failover without outlier
detection) travel with the errors. ``namespace`` is the DestinationRule's, which a
``configmap://`` credential must live in.
"""

from __future__ import annotations

from ..errors import Verdict
from ..models.destinationrule import (
    ClientTLSSettings,
    ConnectionPoolSettings,
    H2UpgradePolicy,
    HTTP2KeepAlive,
    LoadBalancerSettings,
    LocalityLoadBalancerSetting,
    OutlierDetection,
    PortTrafficPolicy,
    TLSmode,
    TrafficPolicy,
    TunnelSettings,
)
from .domains import validate_fqdn
from .durations import cel_duration, check_duration
from .network import validate_ip, validate_port

MAGLEV_MAX_TABLE_SIZE = 5000011
TOPOLOGY_LABELS = ("topology.kubernetes.io/region", "topology.kubernetes.io/zone", "topology.istio.io/subzone")
CONFIGMAP_PREFIX = "configmap://"


def validate_traffic_policy(v: Verdict, namespace: str, policy: TrafficPolicy | None) -> None:
    if policy is None:
        return
    fields = (
        policy.outlier_detection, policy.connection_pool, policy.load_balancer, policy.tls,
        policy.port_level_settings, policy.tunnel, policy.proxy_protocol, policy.retry_budget,
    )
    if all(f is None for f in fields):
        v.errors.append("traffic policy must have at least one field")
        return
    if policy.tunnel is not None and policy.proxy_protocol is not None:
        v.errors.append("tunnel and proxyProtocol must not be set together")
        return
    validate_outlier_detection(v, policy.outlier_detection)
    v.errors += connection_pool_errors(policy.connection_pool)
    validate_load_balancer(v, policy.load_balancer, policy.outlier_detection)
    v.errors += client_tls_errors(namespace, policy.tls)
    for port_policy in policy.port_level_settings or []:
        validate_port_traffic_policy(v, namespace, port_policy)
    v.errors += tunnel_errors(policy.tunnel)
    if policy.retry_budget is not None:
        v.errors += cel_duration(policy.retry_budget.budget_interval, "trafficPolicy.retryBudget.budgetInterval")


def validate_port_traffic_policy(v: Verdict, namespace: str, policy: PortTrafficPolicy) -> None:
    if policy.port is None:
        v.errors.append("portTrafficPolicy must have valid port")
    if all(f is None for f in (policy.outlier_detection, policy.connection_pool, policy.load_balancer, policy.tls)):
        v.errors.append("port traffic policy must have at least one field")
        return
    validate_outlier_detection(v, policy.outlier_detection)
    v.errors += connection_pool_errors(policy.connection_pool)
    validate_load_balancer(v, policy.load_balancer, policy.outlier_detection)
    v.errors += client_tls_errors(namespace, policy.tls)


def tunnel_errors(tunnel: TunnelSettings | None) -> list[str]:
    if tunnel is None:
        return []
    errs: list[str] = []
    if tunnel.protocol and tunnel.protocol not in ("CONNECT", "POST"):
        errs.append('tunnel protocol must be "CONNECT" or "POST"')
    fqdn_errs, ip_errs = validate_fqdn(tunnel.target_host), validate_ip(tunnel.target_host)
    if fqdn_errs and ip_errs:
        errs.append(f"tunnel target host must be valid FQDN or IP address: {fqdn_errs[0]}; {ip_errs[0]}")
    port_errs = validate_port(tunnel.target_port)
    if port_errs:
        errs.append(f"tunnel target port is invalid: {port_errs[0]}")
    return errs


def validate_outlier_detection(v: Verdict, outlier: OutlierDetection | None) -> None:
    if outlier is None:
        return
    path = "outlierDetection"
    v.errors += check_duration(outlier.base_ejection_time, f"{path}.baseEjectionTime")
    if outlier.consecutive_errors:
        v.warnings.append(
            "outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or consecutive5xxErrors instead"
        )
    if not outlier.split_external_local_origin_errors and (outlier.consecutive_local_origin_failures or 0) > 0:
        v.errors.append(
            "outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false"
        )
    v.errors += check_duration(outlier.interval, f"{path}.interval")
    for percent in (outlier.max_ejection_percent, outlier.min_health_percent):
        if percent is not None and not 0 <= percent <= 100:
            v.errors.append(f"percentage {percent} is not in range 0..100")


def connection_pool_errors(settings: ConnectionPoolSettings | None) -> list[str]:
    if settings is None:
        return []
    if settings.http is None and settings.tcp is None:
        return ["connection pool must have at least one field"]
    errs: list[str] = []
    http = settings.http
    if http is not None:
        for value, what in (
            (http.http1_max_pending_requests, "http1 max pending requests"),
            (http.http2_max_requests, "http2 max requests"),
            (http.max_requests_per_connection, "max requests per connection"),
            (http.max_retries, "max retries"),
        ):
            if (value or 0) < 0:
                errs.append(f"{what} must be non-negative")
        errs += check_duration(http.idle_timeout, "connectionPool.http.idleTimeout")
        if http.h2_upgrade_policy == H2UpgradePolicy.UPGRADE and http.use_client_protocol:
            errs.append("use client protocol must not be true when H2UpgradePolicy is UPGRADE")
        if (http.max_concurrent_streams or 0) < 0:
            errs.append("max concurrent streams must be non-negative")
        errs += http2_keepalive_errors(http.http2_keep_alive)
    tcp = settings.tcp
    if tcp is not None:
        if (tcp.max_connections or 0) < 0:
            errs.append("max connections must be non-negative")
        errs += check_duration(tcp.connect_timeout, "connectionPool.tcp.connectTimeout")
        errs += check_duration(tcp.max_connection_duration, "connectionPool.tcp.maxConnectionDuration")
        # 0s disables the idle timeout, so only other values must be whole milliseconds >= 1ms.
        if tcp.idle_timeout is not None and abs(tcp.idle_timeout.nanos) // 1_000_000 != 0:
            errs += check_duration(tcp.idle_timeout, "connectionPool.tcp.idleTimeout")
        keepalive = tcp.tcp_keepalive
        if keepalive is not None:
            errs += check_duration(keepalive.time, "connectionPool.tcp.tcpKeepalive.time")
            errs += check_duration(keepalive.interval, "connectionPool.tcp.tcpKeepalive.interval")
    return errs


def http2_keepalive_errors(keepalive: HTTP2KeepAlive | None) -> list[str]:
    """HTTP/2 PINGs need both a period and a timeout, each whole milliseconds >= 1ms."""
    if keepalive is None:
        return []
    errs: list[str] = []
    for value, name in ((keepalive.interval, "interval"), (keepalive.timeout, "timeout")):
        if value is None:
            errs.append(f"http2KeepAlive.{name} must be set")
        else:
            errs += check_duration(value, f"connectionPool.http.http2KeepAlive.{name}")
    return errs


def is_prime(x: int) -> bool:
    """Envoy's (and Istio's) primality test for maglev table sizes."""
    if x != 0 and x < 4:
        return True
    if x & 1 == 0:
        return False
    factor = 3
    while factor * factor <= x:
        if x % factor == 0:
            return False
        factor += 2
    return True


def validate_load_balancer(v: Verdict, settings: LoadBalancerSettings | None, outlier: OutlierDetection | None) -> None:
    if settings is None:
        return
    ch = settings.consistent_hash
    if ch is not None:
        if ch.http_cookie is not None:
            if not ch.http_cookie.name:
                v.errors.append("name required for HttpCookie")
            names = [a.name for a in ch.http_cookie.attributes or []]
            for name in sorted({n for n in names if names.count(n) > 1}):
                v.errors.append(f"cookie attribute name {name} is duplicated")
        if ch.minimum_ring_size:
            v.warnings.append("consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash configuration instead")
            if ch.hash_algorithm is not None:
                v.errors.append("only one of MinimumRingSize or Maglev/Ringhash can be specified")
        if ch.maglev is not None:
            size = ch.maglev.table_size or 0
            if size == 0:
                v.errors.append("tableSize must be set for maglev")
            if size >= MAGLEV_MAX_TABLE_SIZE:
                v.errors.append("tableSize must be less than 5000011 for maglev")
            if not is_prime(size):
                v.errors.append("tableSize must be a prime number for maglev")
    if settings.locality_lb_setting is not None and settings.zone_aware_lb_setting is not None:
        v.errors.append("only one of localityLbSetting or zoneAwareLbSetting can be set")
    validate_locality_lb_setting(v, settings.locality_lb_setting, outlier)
    v.errors += check_duration(settings.warmup_duration_secs, "loadBalancer.warmupDurationSecs")
    warmup = settings.warmup
    if warmup is not None:
        v.errors += check_duration(warmup.duration, "loadBalancer.warmup.duration")
        if (warmup.minimum_percent or 0) > 100:
            v.errors.append("minimumPercent value should be less than or equal to 100")
        if warmup.aggression is not None and warmup.aggression < 1:
            v.errors.append("aggression should be greater than or equal to 1")


def client_tls_errors(namespace: str, tls: ClientTLSSettings | None) -> list[str]:
    """Istio's ValidateTLS for client (origination) TLS settings."""
    if tls is None:
        return []
    errs = _configmap_credential_errors(namespace, tls.credential_name or "")
    mode = tls.mode or TLSmode.DISABLE
    if tls.insecure_skip_verify:
        if mode == TLSmode.SIMPLE and (tls.ca_certificates or tls.credential_name or tls.subject_alt_names is not None):
            errs.append("cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true")
        if mode == TLSmode.MUTUAL and (tls.ca_certificates or tls.subject_alt_names is not None):
            errs.append("cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set true")
    if mode in (TLSmode.SIMPLE, TLSmode.MUTUAL) and tls.credential_name:
        if tls.client_certificate or tls.ca_certificates or tls.private_key or tls.ca_crl:
            errs.append("cannot specify client certificates or CA certificate or CA CRL If credentialName is set")
        return errs
    if mode == TLSmode.MUTUAL:
        if not tls.client_certificate:
            errs.append("client certificate required for mutual tls")
        if not tls.private_key:
            errs.append("private key required for mutual tls")
    return errs


def _configmap_credential_errors(namespace: str, credential: str) -> list[str]:
    """A ``configmap://[namespace/]name`` CA bundle must be in the rule's own namespace."""
    if not credential.startswith(CONFIGMAP_PREFIX):
        return []
    ref = credential[len(CONFIGMAP_PREFIX):]
    parts = ref.split("/")
    if len(parts) > 2 or not parts[-1] or (len(parts) == 2 and not parts[0]):
        return [f'invalid configmap:// credentialName: invalid resource name "{credential}". Expected <namespace>/<name>']
    ref_namespace = parts[0] if len(parts) == 2 else namespace
    if ref_namespace != namespace or not namespace:
        return [f'invalid configmap:// credentialName: namespace must match the configuration namespace "{namespace}"']
    return []


def validate_locality_lb_setting(v: Verdict, lb: LocalityLoadBalancerSetting | None, outlier: OutlierDetection | None) -> None:
    """Istio's ValidateLocalityLbSetting: distribute weights, failover regions, priorities."""
    if lb is None:
        return
    distribute, failover, priority = lb.distribute or [], lb.failover or [], lb.failover_priority or []
    if distribute and failover:
        v.errors.append("can not simultaneously specify 'distribute' and 'failover'")
        return
    if failover and priority:
        for label in priority:
            if label in TOPOLOGY_LABELS:
                v.errors.append(f"can not simultaneously set 'failover' and topology label '{label}' in 'failover_priority'")
                return
    sources: list[str] = []
    for rule in distribute:
        sources.append(rule.from_ or "")
        weights = rule.to or {}
        if any(w <= 0 or w > 100 for w in weights.values()):
            v.errors.append("locality weight must be in range [1, 100]")
            return
        total = sum(weights.values())
        if total != 100:
            v.errors.append(f"total locality weight {total} != 100")
            return
        v.errors += locality_errors(list(weights))
    v.errors += locality_errors(sources)
    if (failover or priority) and outlier is None:
        v.warnings.append("outlier detection policy must be provided for failover")
    for rule in failover:
        src, dst = rule.from_ or "", rule.to or ""
        if src == dst:
            v.errors.append("locality lb failover settings must specify different regions")
        if "/" in src or "/" in dst:
            v.errors.append("locality lb failover only specify region")
        if "*" in src or "*" in dst:
            v.errors.append("locality lb failover region should not contain '*' wildcard")


def locality_errors(localities: list[str]) -> list[str]:  # noqa: C901 - mirrors Istio's nested map walk
    """Localities ``region[/zone[/subzone]]`` with at most a trailing ``*``, none overlapping."""
    tree: dict[str, dict[str, dict[str, bool]]] = {}
    for locality in localities:
        stars = locality.count("*")
        if stars and (stars > 1 or not locality.endswith("*")):
            return [f"locality {locality} wildcard '*' number can not exceed 1 and must be in the end"]
        if "*" in tree:
            return [f"locality {locality} overlap with previous specified ones"]
        items = locality.split("/", 2)
        if any(item == "" for item in items):
            return [f"locality {locality} must not contain empty region/zone/subzone info"]
        overlap = [f"locality {locality} overlap with previous specified ones"]
        region = items[0]
        if len(items) == 1:
            if region in tree:
                return overlap
            tree[region] = {"*": {"*": True}}
            continue
        zone = items[1]
        zones = tree.get(region)
        if len(items) == 2:
            if zones is not None:
                if "*" in zones or zone in zones:
                    return overlap
                zones[zone] = {"*": True}
            else:
                tree[region] = {zone: {"*": True}}
            continue
        subzone = items[2]
        if zones is None:
            tree[region] = {zone: {subzone: True}}
        elif "*" in zones:
            return overlap
        elif zone in zones:
            if zones[zone].get("*") or zones[zone].get(subzone):
                return overlap
            zones[zone][subzone] = True
        else:
            zones[zone] = {subzone: True}
    return []
