"""Field paths of DestinationRule traffic policies, EnvoyFilter patches, WorkloadEntry and
WorkloadGroup and ServiceEntry endpoints: each message names its field from the root, the
CLI prints it and points at its line. Istio's texts are unchanged (other tests compare them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pilotfish.cli.main import cli
from pilotfish.config.errors import Verdict, field_path, with_field
from pilotfish.config.loader import Document, documents_from_text, to_resource
from pilotfish.config.validation import validate


def verdict(text: str) -> Verdict:
    doc = next(documents_from_text(text, "test.yaml"))
    assert isinstance(doc, Document)
    return validate(to_resource(doc))


def rendered(text: str) -> tuple[list[str], list[str]]:
    v = verdict(text)
    return [with_field(m) for m in v.errors], [with_field(m) for m in v.warnings]


def validate_file(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "c.yaml").write_text(text)
    result = CliRunner().invoke(cli, ["validate", "-f", str(tmp_path / "c.yaml")])
    assert result.exit_code == 1
    return [line.replace(str(tmp_path / "c.yaml"), "c.yaml") for line in result.output.splitlines()]


def resource(kind: str, group: str, spec: str) -> str:
    """A ``kind`` named ns/r with ``spec`` (YAML indented by two) from line 5."""
    return f"apiVersion: {group}\nkind: {kind}\nmetadata: {{name: r, namespace: ns}}\nspec:\n{spec}"


DR = resource("DestinationRule", "networking.istio.io/v1", "  host: reviews\n  trafficPolicy:\n")


def test_traffic_policy_messages_name_their_field() -> None:
    errors, warnings = rendered(DR + """\
    outlierDetection: {interval: 0.5ms, maxEjectionPercent: 101, consecutiveErrors: 3}
    connectionPool:
      http: {http2KeepAlive: {timeout: 5s}, maxRetries: -1}
      tcp: {tcpKeepalive: {time: 0s}}
    loadBalancer:
      consistentHash:
        httpCookie: {name: c, attributes: [{name: a}, {name: b}, {name: a}]}
        maglev: {tableSize: 4}
      localityLbSetting:
        distribute:
        - {from: us/*, to: {"us/a/*": 100}}
        - {from: us/east, to: {"us/a/*": 100}}
      warmup: {duration: 10s, aggression: 0.5}
    tls: {mode: MUTUAL, credentialName: "configmap://other/ca", caCertificates: /ca.pem}
    portLevelSettings:
    - port: {number: 80}
      loadBalancer:
        localityLbSetting:
          distribute: [{from: us, to: {us/a: 50, us/b: 101}}]
    - port: {number: 81}
      loadBalancer:
        localityLbSetting:
          failover: [{from: us, to: us/east}]
          failoverPriority: [topology.istio.io/network]
    - tls: {mode: SIMPLE, insecureSkipVerify: true, subjectAltNames: [a]}
    tunnel: {protocol: GET, targetHost: "bad host", targetPort: 0}
    retryBudget: {budgetInterval: 0s}
""")
    tp = "spec.trafficPolicy"
    lb, port = f"{tp}.loadBalancer", f"{tp}.portLevelSettings"
    assert errors == [
        f"{tp}.outlierDetection.interval: only durations to ms precision are supported",
        f'{tp}.outlierDetection.interval: Invalid value: "string": must be a valid duration greater than 1ms',
        f"{tp}.outlierDetection.maxEjectionPercent: percentage 101 is not in range 0..100",
        f"{tp}.connectionPool.http.maxRetries: max retries must be non-negative",
        f"{tp}.connectionPool.http.http2KeepAlive.interval: http2KeepAlive.interval must be set",
        f"{tp}.connectionPool.tcp.tcpKeepalive.time: duration must be greater than 1ms",
        f'{tp}.connectionPool.tcp.tcpKeepalive.time: Invalid value: "string": must be a valid duration greater than 1ms',
        f"{lb}.consistentHash.httpCookie.attributes[2]: cookie attribute name a is duplicated",
        f"{lb}.consistentHash.maglev.tableSize: tableSize must be a prime number for maglev",
        f"{lb}.localityLbSetting.distribute[1].from: locality us/east overlap with previous specified ones",
        f"{lb}.warmup.aggression: aggression should be greater than or equal to 1",
        f'{tp}.tls.credentialName: invalid configmap:// credentialName: namespace must match the configuration namespace "ns"',
        f"{tp}.tls.caCertificates: cannot specify client certificates or CA certificate or CA CRL If credentialName is set",
        f"{port}[0].loadBalancer.localityLbSetting.distribute[0].to.us/b: locality weight must be in range [1, 100]",
        f"{port}[1].loadBalancer.localityLbSetting.failover[0].to: locality lb failover only specify region",
        f"{port}[2].port: portTrafficPolicy must have valid port",
        f"{port}[2].tls.subjectAltNames: cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true",
        f'{tp}.tunnel.protocol: tunnel protocol must be "CONNECT" or "POST"',
        f'{tp}.tunnel.targetHost: tunnel target host must be valid FQDN or IP address: domain name "bad host" invalid (label "bad host" invalid); bad host is not a valid IP',
        f"{tp}.tunnel.targetPort: tunnel target port is invalid: port number 0 must be in the range 1..65535",
        f'{tp}.retryBudget.budgetInterval: Invalid value: "string": must be a valid duration greater than 1ms',
    ]
    assert warnings == [
        f"{tp}.outlierDetection.consecutiveErrors: outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or consecutive5xxErrors instead",
        f"{port}[1].loadBalancer.localityLbSetting.failover: outlier detection policy must be provided for failover",
    ]


def test_a_subset_policy_error_points_at_its_field_line(tmp_path: Path) -> None:
    out = validate_file(tmp_path, DR.replace("  trafficPolicy:\n", """\
  subsets:
  - name: v1
    trafficPolicy:
      loadBalancer:
        localityLbSetting:
          distribute: [{from: us, to: {us/a: 100}}]
          failover: [{from: us, to: eu}]
"""))
    assert out[:2] == [
        "c.yaml:12: DestinationRule ns/r: invalid",
        "  error: spec.subsets[0].trafficPolicy.loadBalancer.localityLbSetting.failover:"
        " can not simultaneously specify 'distribute' and 'failover'"]


def envoy_filter(spec: str) -> str:
    return resource("EnvoyFilter", "networking.istio.io/v1alpha3", spec)


def test_envoy_filter_messages_name_their_patch_and_field() -> None:
    errors, warnings = rendered(envoy_filter("""\
  workloadSelector: {labels: {}}
  targetRefs: [{kind: Service}]
  configPatches:
  - applyTo: CLUSTER
    patch:
      operation: ADD
      value: {name: x, health_checks: [{timeout: 1s}, {timeout: zz}]}
  - applyTo: CLUSTER
    patch: {operation: ADD, value: {name: x, health_checks: [{timeout: 1s}, {bogus: 2}]}}
  - applyTo: CLUSTER
    patch: {operation: ADD, value: {transport_socket: {name: t, typed_config: {"@type": type.googleapis.com/nope.Foo}}}}
  - applyTo: CLUSTER
    patch: {operation: ADD, value: {name: 5}}
  - applyTo: HTTP_FILTER
    match: {proxy: {proxyVersion: "1.2(("}}
    patch: {operation: REMOVE}
  - applyTo: LISTENER
    match: {listener: {filterChain: {filter: {name: envoy.router, subFilter: {name: a}}}}}
    patch: {operation: REMOVE}
  - applyTo: HTTP_FILTER
    match: {listener: {filterChain: {filter: {name: envoy.http_connection_manager, subFilter: {name: envoy.router}}}}}
    patch: {operation: REMOVE}
  - applyTo: CLUSTER
    match: {listener: {}}
    patch: {operation: REMOVE}
  - patch: {operation: REMOVE}
  - applyTo: CLUSTER
  - {applyTo: CLUSTER, patch: {value: {}}}
  - {applyTo: CLUSTER, patch: {operation: ADD}}
  - applyTo: CLUSTER
    match: {context: WAYPOINT, waypoint: {portNumber: 0}}
    patch: {operation: REMOVE}
"""))
    patch, chain = "spec.configPatches", "match.listener.filterChain.filter"
    assert errors == [
        'spec: Invalid value: "object": only one of targetRefs or workloadSelector can be set',
        "spec.targetRefs[0].name: Required value",
        f'{patch}[12].match.waypoint.portNumber: Invalid value: "integer": port must be between 1-65535',
        f'{patch}[0].patch.value.health_checks[1].timeout: Envoy filter: Failed to parse health_checks field: Failed to parse timeout field: Duration must end with letter "s": zz. at Cluster.health_checks[1].timeout..',
        f"{patch}[2].patch.value.transport_socket.typed_config: referenced type unknown: Envoy filter: could not resolve Any message type: type.googleapis.com/nope.Foo",
        f"{patch}[3].patch.value.name: Envoy filter: Failed to parse name field: expected string or bytes-like object, got 'int'.",
        f"{patch}[4].match.proxy.proxyVersion: Envoy filter: invalid regex for proxy version, [error parsing regexp: missing closing ): `1.2((`]",
        f"{patch}[5].{chain}.subFilter: Envoy filter: subfilter match can be used with applyTo HTTP_FILTER only",
        f"{patch}[7].match: Envoy filter: applyTo for cluster class objects cannot have non cluster match",
        f"{patch}[8].applyTo: Envoy filter: missing applyTo",
        f"{patch}[9].patch: Envoy filter: missing patch",
        f"{patch}[10].patch.operation: Envoy filter: missing patch operation",
        f"{patch}[11].patch.value: Envoy filter: missing patch value for non-remove operation",
    ]
    assert warnings[1:] == [
        "spec.workloadSelector: Envoy filter: workload selector specified without labels, will be applied to all services in namespace",
        f'{patch}[1].patch.value.health_checks[1].bogus: unknown field "bogus"',
        f"{patch}[5].{chain}: Envoy filter: filter match has no effect when used with LISTENER",
        f'{patch}[6].{chain}.name: using deprecated filter name "envoy.http_connection_manager"; use "envoy.filters.network.http_connection_manager" instead',
        f'{patch}[6].{chain}.subFilter.name: using deprecated filter name "envoy.router"; use "envoy.filters.http.router" instead',
    ]


def test_an_envoy_filter_value_error_points_at_the_envoy_field_line(tmp_path: Path) -> None:
    out = validate_file(tmp_path, envoy_filter("""\
  configPatches:
  - applyTo: CLUSTER
    patch:
      operation: MERGE
      value:
        name: x
        connect_timeout: abc
"""))
    assert out[:2] == [
        "c.yaml:11: EnvoyFilter ns/r: invalid",
        "  error: spec.configPatches[0].patch.value.connect_timeout: Envoy filter: Failed to parse connect_timeout field:"
        ' Duration must end with letter "s": abc. at Cluster.connect_timeout.']


@pytest.mark.parametrize(("kind", "spec", "expected"), [
    ("WorkloadEntry", """\
  address: unix://rel/
  ports: {bad_name: 0}
  labels: {"bad key": x, ok: "bad value!"}
""", [
        "spec.address: rel/ is not an absolute path to a file",
        "spec.ports: unix endpoint unix://rel/ must not include ports",
        "spec.ports.bad_name: invalid port name: bad_name",
        "spec.ports.bad_name: port number 0 must be in the range 1..65535",
        'spec.labels.bad key: invalid tag key: "bad key"',
        'spec.labels.ok: invalid tag value: "bad value!"',
        'spec: Invalid value: "object": UDS may not include ports',
        'spec.address: Invalid value: "string": UDS must be an absolute path or abstract socket',
        'spec.address: Invalid value: "string": UDS may not be a dir',
        'spec.ports: Invalid value: "object": port name must be valid',
        'spec.ports[bad_name]: Invalid value: "integer": port must be between 1-65535',
    ]),
    ("WorkloadEntry", "  address: bad address!\n",
     ['spec.address: endpoint address "bad address!" is not a valid FQDN or an IP address']),
    ("WorkloadGroup", """\
  template: {address: unix://x}
  probe: {httpGet: {port: 0, scheme: FTP, httpHeaders: [{name: ok}, {name: a_b}]}}
""", [
        'spec.template.address: Invalid value: "string": UDS must be an absolute path or abstract socket',
        'spec.probe.httpGet.port: Invalid value: "integer": port must be between 1-65535',
        'spec.probe.httpGet.scheme: Invalid value: "string": scheme must be one of [HTTP, HTTPS]',
        "spec.probe.httpGet.port: port number 0 must be in the range 1..65535",
        'spec.probe.httpGet.scheme: httpGet.scheme must be one of "HTTPS", "HTTP"',
        "spec.probe.httpGet.httpHeaders[1].name: header name a_b is not a valid header name",
    ]),
    ("WorkloadGroup", "  metadata: {labels: {bad key: x}}\n  template: {}\n  probe: {grpc: {port: 99999}}\n", [
        'spec.probe.grpc.port: Invalid value: "integer": port must be between 1-65535',
        'spec.metadata.labels: invalid labels: invalid tag key: "bad key"',
    ]),
    ("WorkloadGroup", "  probe: {exec: {command: []}}\n", ["spec.template: template is required", "spec.template: Required value"]),
])
def test_workload_messages_name_their_field(kind: str, spec: str, expected: list[str]) -> None:
    assert rendered(resource(kind, "networking.istio.io/v1", spec))[0] == expected


def test_a_static_service_entry_endpoint_error_names_the_endpoint_field(tmp_path: Path) -> None:
    out = validate_file(tmp_path, resource("ServiceEntry", "networking.istio.io/v1", """\
  hosts: [a.example.com]
  addresses: [10.0.0.0/24]
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints:
  - address: 10.0.0.1
  - address: a.example.com
    network: n1
    labels: {"bad key": x}
  - {}
"""))
    assert out[:5] == [
        "c.yaml:11: ServiceEntry ns/r: invalid",
        '  error: spec.endpoints[1].address: endpoint address "a.example.com" is not a valid IP address',
        '  error: spec.endpoints[1].labels.bad key: invalid tag key: "bad key" (line 13)',
        "  error: spec.endpoints[2].address: address is required (line 14)",
        '  error: spec.endpoints[2]: Invalid value: "object": Address is required (line 14)']


def test_service_entry_resolution_and_crd_messages_name_their_field() -> None:
    errors = rendered(resource("ServiceEntry", "networking.istio.io/v1", """\
  hosts: ["*", bad_host]
  addresses: [10.0.0.1]
  resolution: DYNAMIC_DNS
  ports: [{number: 80, name: http, protocol: HTTP}, {number: 80, name: http, protocol: TCP, targetPort: 0}]
  endpoints: [{address: 1.1.1.1}]
"""))[0]
    assert errors == [
        "spec.hosts[0]: invalid host *",
        'spec.hosts[1]: domain name "bad_host" invalid (label "bad_host" invalid)',
        'spec.ports[1].name: service entry port name "http" already defined',
        "spec.ports[1].number: service entry port 80 already defined",
        "spec.endpoints: no endpoints should be provided for resolution type DYNAMIC_DNS",
        "spec.ports[1].protocol: protocol TCP is not supported for resolution mode DYNAMIC_DNS, use HTTP or TLS",
        "spec.hosts: multiple hosts provided with non-HTTP, non-TLS ports",
        'spec.hosts[0]: Invalid value: "string": hostname cannot be wildcard',
        'spec.ports[1]: Duplicate value: map[string]interface {}{"name":"http"}',
        'spec.ports[1].targetPort: Invalid value: "integer": port must be between 1-65535',
        'spec.ports: Invalid value: "array": port number cannot be duplicated',
    ]
    assert [field_path(m) for m in verdict(resource("ServiceEntry", "networking.istio.io/v1", """\
  hosts: [a.com, b.com]
  addresses: [10.0.0.1]
  resolution: DNS_ROUND_ROBIN
  ports: [{number: 80, name: tcp, protocol: TCP}]
  endpoints: [{address: a.com}, {address: b.com}]
""")).warnings] == [("spec", "hosts")]
