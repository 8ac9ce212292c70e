"""TrafficPolicy validation (DestinationRule and its subsets): a port of Istio's
validateTrafficPolicy, validateConnectionPool, validateLoadBalancer, validateOutlierDetection,
ValidateTLS and ValidateLocalityLbSetting.

Functions append to a Verdict so that warnings (deprecated fields, failover without outlier
detection) travel with the errors. ``namespace`` is the DestinationRule's, which a
``configmap://`` credential must live in. Each message carries its field's path below the
message it was handed (the traffic policy, the connection pool, ...).
"""

from __future__ import annotations

from pydantic.alias_generators import to_camel

from ..duration import Duration
from ..errors import FieldError, FieldPath, Verdict, at
from ..models.destinationrule import (
    ClientTLSSettings,
    ConsistentHashLB,
    ConnectionPoolSettings,
    H2UpgradePolicy,
    HTTP2KeepAlive,
    HTTPSettings,
    LoadBalancerSettings,
    LocalityDistribute,
    LocalityLoadBalancerSetting,
    OutlierDetection,
    PortTrafficPolicy,
    TCPSettings,
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
        v.errors.append(FieldError("tunnel and proxyProtocol must not be set together", ("tunnel",)))
        return
    _validate_policy_fields(v, namespace, policy)
    for i, port_policy in enumerate(policy.port_level_settings or []):
        v.under(("portLevelSettings", i), lambda one, p=port_policy: validate_port_traffic_policy(one, namespace, p))
    v.errors += at(("tunnel",), tunnel_errors(policy.tunnel))
    if policy.retry_budget is not None:
        v.errors += at(("retryBudget", "budgetInterval"),
                       cel_duration(policy.retry_budget.budget_interval, "trafficPolicy.retryBudget.budgetInterval"))


def validate_port_traffic_policy(v: Verdict, namespace: str, policy: PortTrafficPolicy) -> None:
    if policy.port is None:
        v.errors.append(FieldError("portTrafficPolicy must have valid port", ("port",)))
    if all(f is None for f in (policy.outlier_detection, policy.connection_pool, policy.load_balancer, policy.tls)):
        v.errors.append("port traffic policy must have at least one field")
        return
    _validate_policy_fields(v, namespace, policy)


def _validate_policy_fields(v: Verdict, namespace: str, policy: TrafficPolicy | PortTrafficPolicy) -> None:
    """What a traffic policy and a port-level one share: outlier detection, pool, balancer, TLS."""
    v.under(("outlierDetection",), lambda one: validate_outlier_detection(one, policy.outlier_detection))
    v.errors += at(("connectionPool",), connection_pool_errors(policy.connection_pool))
    v.under(("loadBalancer",), lambda one: validate_load_balancer(one, policy.load_balancer, policy.outlier_detection))
    v.errors += at(("tls",), client_tls_errors(namespace, policy.tls))


def _duration(d: Duration | None, parent: str, *path: str) -> list[str]:
    """check_duration for the field at ``path`` (below ``parent``, which the CEL text names too)."""
    return at(path, check_duration(d, ".".join((parent, *path))))


def tunnel_errors(tunnel: TunnelSettings | None) -> list[str]:
    if tunnel is None:
        return []
    errs: list[str] = []
    if tunnel.protocol and tunnel.protocol not in ("CONNECT", "POST"):
        errs.append(FieldError('tunnel protocol must be "CONNECT" or "POST"', ("protocol",)))
    fqdn_errs, ip_errs = validate_fqdn(tunnel.target_host), validate_ip(tunnel.target_host)
    if fqdn_errs and ip_errs:
        errs.append(FieldError(f"tunnel target host must be valid FQDN or IP address: {fqdn_errs[0]}; {ip_errs[0]}",
                               ("targetHost",)))
    port_errs = validate_port(tunnel.target_port)
    if port_errs:
        errs.append(FieldError(f"tunnel target port is invalid: {port_errs[0]}", ("targetPort",)))
    return errs


def validate_outlier_detection(v: Verdict, outlier: OutlierDetection | None) -> None:
    if outlier is None:
        return
    v.errors += _duration(outlier.base_ejection_time, "outlierDetection", "baseEjectionTime")
    if outlier.consecutive_errors:
        v.warnings.append(FieldError(
            "outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or consecutive5xxErrors instead",
            ("consecutiveErrors",)))
    if not outlier.split_external_local_origin_errors and (outlier.consecutive_local_origin_failures or 0) > 0:
        v.errors.append(FieldError(
            "outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false",
            ("consecutiveLocalOriginFailures",)))
    v.errors += _duration(outlier.interval, "outlierDetection", "interval")
    for percent, name in ((outlier.max_ejection_percent, "maxEjectionPercent"), (outlier.min_health_percent, "minHealthPercent")):
        if percent is not None and not 0 <= percent <= 100:
            v.errors.append(FieldError(f"percentage {percent} is not in range 0..100", (name,)))


def connection_pool_errors(settings: ConnectionPoolSettings | None) -> list[str]:
    """Istio's validateConnectionPool, paths below the pool (its CEL texts name ``connectionPool.…``)."""
    if settings is None:
        return []
    if settings.http is None and settings.tcp is None:
        return ["connection pool must have at least one field"]
    return at(("http",), _http_pool_errors(settings.http)) + at(("tcp",), _tcp_pool_errors(settings.tcp))


def _http_pool_errors(http: HTTPSettings | None) -> list[str]:
    if http is None:
        return []
    errs: list[str] = []
    for value, name, what in (
        (http.http1_max_pending_requests, "http1MaxPendingRequests", "http1 max pending requests"),
        (http.http2_max_requests, "http2MaxRequests", "http2 max requests"),
        (http.max_requests_per_connection, "maxRequestsPerConnection", "max requests per connection"),
        (http.max_retries, "maxRetries", "max retries"),
    ):
        if (value or 0) < 0:
            errs.append(FieldError(f"{what} must be non-negative", (name,)))
    errs += _duration(http.idle_timeout, "connectionPool.http", "idleTimeout")
    if http.h2_upgrade_policy == H2UpgradePolicy.UPGRADE and http.use_client_protocol:
        errs.append(FieldError("use client protocol must not be true when H2UpgradePolicy is UPGRADE", ("useClientProtocol",)))
    if (http.max_concurrent_streams or 0) < 0:
        errs.append(FieldError("max concurrent streams must be non-negative", ("maxConcurrentStreams",)))
    return errs + at(("http2KeepAlive",), http2_keepalive_errors(http.http2_keep_alive))


def _tcp_pool_errors(tcp: TCPSettings | None) -> list[str]:
    if tcp is None:
        return []
    errs: list[str] = []
    if (tcp.max_connections or 0) < 0:
        errs.append(FieldError("max connections must be non-negative", ("maxConnections",)))
    errs += _duration(tcp.connect_timeout, "connectionPool.tcp", "connectTimeout")
    errs += _duration(tcp.max_connection_duration, "connectionPool.tcp", "maxConnectionDuration")
    # 0s disables the idle timeout, so only other values must be whole milliseconds >= 1ms.
    if tcp.idle_timeout is not None and abs(tcp.idle_timeout.nanos) // 1_000_000 != 0:
        errs += _duration(tcp.idle_timeout, "connectionPool.tcp", "idleTimeout")
    keepalive = tcp.tcp_keepalive
    if keepalive is not None:
        errs += _duration(keepalive.time, "connectionPool.tcp", "tcpKeepalive", "time")
        errs += _duration(keepalive.interval, "connectionPool.tcp", "tcpKeepalive", "interval")
    return errs


def http2_keepalive_errors(keepalive: HTTP2KeepAlive | None) -> list[str]:
    """HTTP/2 PINGs need both a period and a timeout, each whole milliseconds >= 1ms."""
    if keepalive is None:
        return []
    errs: list[str] = []
    for value, name in ((keepalive.interval, "interval"), (keepalive.timeout, "timeout")):
        if value is None:
            errs.append(FieldError(f"http2KeepAlive.{name} must be set", (name,)))
        else:
            errs += _duration(value, "connectionPool.http.http2KeepAlive", name)
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
    if settings.consistent_hash is not None:
        v.under(("consistentHash",), lambda one: _validate_consistent_hash(one, settings.consistent_hash))
    if settings.locality_lb_setting is not None and settings.zone_aware_lb_setting is not None:
        v.errors.append(FieldError("only one of localityLbSetting or zoneAwareLbSetting can be set", ("zoneAwareLbSetting",)))
    v.under(("localityLbSetting",), lambda one: validate_locality_lb_setting(one, settings.locality_lb_setting, outlier))
    v.errors += _duration(settings.warmup_duration_secs, "loadBalancer", "warmupDurationSecs")
    warmup = settings.warmup
    if warmup is not None:
        v.errors += _duration(warmup.duration, "loadBalancer", "warmup", "duration")
        if (warmup.minimum_percent or 0) > 100:
            v.errors.append(FieldError("minimumPercent value should be less than or equal to 100", ("warmup", "minimumPercent")))
        if warmup.aggression is not None and warmup.aggression < 1:
            v.errors.append(FieldError("aggression should be greater than or equal to 1", ("warmup", "aggression")))


def _validate_consistent_hash(v: Verdict, ch: ConsistentHashLB) -> None:
    if ch.http_cookie is not None:
        if not ch.http_cookie.name:
            v.errors.append(FieldError("name required for HttpCookie", ("httpCookie", "name")))
        names = [a.name for a in ch.http_cookie.attributes or []]
        for name in sorted({n for n in names if names.count(n) > 1}):
            again = names.index(name, names.index(name) + 1)
            v.errors.append(FieldError(f"cookie attribute name {name} is duplicated", ("httpCookie", "attributes", again)))
    if ch.minimum_ring_size:
        v.warnings.append(FieldError(
            "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash configuration instead",
            ("minimumRingSize",)))
        if ch.hash_algorithm is not None:
            v.errors.append(FieldError("only one of MinimumRingSize or Maglev/Ringhash can be specified", ("minimumRingSize",)))
    if ch.maglev is not None:
        size = ch.maglev.table_size or 0
        for wrong, text in (
            (size == 0, "tableSize must be set for maglev"),
            (size >= MAGLEV_MAX_TABLE_SIZE, "tableSize must be less than 5000011 for maglev"),
            (not is_prime(size), "tableSize must be a prime number for maglev"),
        ):
            if wrong:
                v.errors.append(FieldError(text, ("maglev", "tableSize")))


def client_tls_errors(namespace: str, tls: ClientTLSSettings | None) -> list[str]:
    """Istio's ValidateTLS for client (origination) TLS settings."""
    if tls is None:
        return []
    errs = at(("credentialName",), _configmap_credential_errors(namespace, tls.credential_name or ""))
    mode = tls.mode or TLSmode.DISABLE
    if tls.insecure_skip_verify:
        if mode == TLSmode.SIMPLE and (tls.ca_certificates or tls.credential_name or tls.subject_alt_names is not None):
            errs.append(FieldError(
                "cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true",
                _first_set(tls, "ca_certificates", "credential_name", "subject_alt_names")))
        if mode == TLSmode.MUTUAL and (tls.ca_certificates or tls.subject_alt_names is not None):
            errs.append(FieldError("cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set true",
                                   _first_set(tls, "ca_certificates", "subject_alt_names")))
    if mode in (TLSmode.SIMPLE, TLSmode.MUTUAL) and tls.credential_name:
        if tls.client_certificate or tls.ca_certificates or tls.private_key or tls.ca_crl:
            errs.append(FieldError("cannot specify client certificates or CA certificate or CA CRL If credentialName is set",
                                   _first_set(tls, "client_certificate", "ca_certificates", "private_key", "ca_crl")))
        return errs
    if mode == TLSmode.MUTUAL:
        if not tls.client_certificate:
            errs.append(FieldError("client certificate required for mutual tls", ("clientCertificate",)))
        if not tls.private_key:
            errs.append(FieldError("private key required for mutual tls", ("privateKey",)))
    return errs


def _first_set(tls: ClientTLSSettings, *fields: str) -> FieldPath:
    """The first of ``fields`` a conflict rule found set, as its YAML name."""
    name = next(f for f in fields if getattr(tls, f) not in (None, ""))
    return (to_camel(name),)


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
        v.errors.append(FieldError("can not simultaneously specify 'distribute' and 'failover'", ("failover",)))
        return
    if failover and priority:
        for i, label in enumerate(priority):
            if label in TOPOLOGY_LABELS:
                v.errors.append(FieldError(
                    f"can not simultaneously set 'failover' and topology label '{label}' in 'failover_priority'",
                    ("failoverPriority", i)))
                return
    if not _distribute_ok(v, distribute):
        return
    if (failover or priority) and outlier is None:
        v.warnings.append(FieldError("outlier detection policy must be provided for failover",
                                     ("failover" if failover else "failoverPriority",)))
    for i, rule in enumerate(failover):
        src, dst = rule.from_ or "", rule.to or ""
        if src == dst:
            v.errors.append(FieldError("locality lb failover settings must specify different regions", ("failover", i)))
        for bad, text in (("/", "locality lb failover only specify region"),
                          ("*", "locality lb failover region should not contain '*' wildcard")):
            if bad in src or bad in dst:
                v.errors.append(FieldError(text, ("failover", i, "from" if bad in src else "to")))


def _distribute_ok(v: Verdict, distribute: list[LocalityDistribute]) -> bool:
    """Weights and localities of ``distribute``; False when Istio stops checking the setting."""
    for i, rule in enumerate(distribute):
        weights = rule.to or {}
        bad = next((k for k, w in weights.items() if w <= 0 or w > 100), None)
        if bad is not None:
            v.errors.append(FieldError("locality weight must be in range [1, 100]", ("distribute", i, "to", bad)))
            return False
        total = sum(weights.values())
        if total != 100:
            v.errors.append(FieldError(f"total locality weight {total} != 100", ("distribute", i, "to")))
            return False
        keys = list(weights)
        v.errors += [FieldError(text, ("distribute", i, "to", keys[j])) for j, text in _locality_problems(keys)]
    v.errors += [FieldError(text, ("distribute", j, "from")) for j, text in _locality_problems([r.from_ or "" for r in distribute])]
    return True


def locality_errors(localities: list[str]) -> list[str]:
    """Localities ``region[/zone[/subzone]]`` with at most a trailing ``*``, none overlapping."""
    return [text for _, text in _locality_problems(localities)]


def _locality_problems(localities: list[str]) -> list[tuple[int, str]]:
    """Istio's first locality problem, with the index of the locality it is about."""
    tree: dict[str, dict[str, dict[str, bool]]] = {}
    for i, locality in enumerate(localities):
        problem = _add_locality(tree, locality)
        if problem:
            return [(i, problem)]
    return []


def _add_locality(tree: dict[str, dict[str, dict[str, bool]]], locality: str) -> str | None:  # noqa: C901 - mirrors Istio's nested map walk
    """Add one locality to the tree of those seen; Istio's message when it cannot be."""
    stars = locality.count("*")
    if stars and (stars > 1 or not locality.endswith("*")):
        return f"locality {locality} wildcard '*' number can not exceed 1 and must be in the end"
    overlap = f"locality {locality} overlap with previous specified ones"
    if "*" in tree:
        return overlap
    items = locality.split("/", 2)
    if any(item == "" for item in items):
        return f"locality {locality} must not contain empty region/zone/subzone info"
    region = items[0]
    if len(items) == 1:
        if region in tree:
            return overlap
        tree[region] = {"*": {"*": True}}
        return None
    zone = items[1]
    zones = tree.get(region)
    if len(items) == 2:
        if zones is not None:
            if "*" in zones or zone in zones:
                return overlap
            zones[zone] = {"*": True}
        else:
            tree[region] = {zone: {"*": True}}
        return None
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
    return None
