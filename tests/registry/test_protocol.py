"""A port's protocol is what Istio would detect from its name, appProtocol or declared protocol."""

from __future__ import annotations

import pytest

from pilotfish.registry.model import Protocol
from pilotfish.registry.protocol import from_kube_port, parse


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("http", Protocol.HTTP),
        ("http-web", Protocol.HTTP),
        ("HTTP-Web", Protocol.HTTP),
        ("http2", Protocol.HTTP2),
        ("http2-api", Protocol.HTTP2),
        ("grpc", Protocol.GRPC),
        ("grpc-api", Protocol.GRPC),
        ("grpc-web", Protocol.GRPC_WEB),
        ("GRPC-Web-ui", Protocol.GRPC_WEB),
        ("https", Protocol.HTTPS),
        ("tls-passthrough", Protocol.TLS),
        ("tcp", Protocol.TCP),
        ("tcp-db", Protocol.TCP),
        ("mongo", Protocol.MONGO),
        ("redis-cache", Protocol.REDIS),
        ("mysql", Protocol.MYSQL),
        ("udp-dns", Protocol.UDP),
        ("web", Protocol.UNSUPPORTED),
        ("httpx", Protocol.UNSUPPORTED),
        ("web-http", Protocol.UNSUPPORTED),  # only the prefix counts
        ("", Protocol.UNSUPPORTED),
        (None, Protocol.UNSUPPORTED),
    ],
)
def test_port_name_prefix_names_the_protocol(name: str | None, expected: Protocol) -> None:
    assert from_kube_port(8080, name) is expected


def test_app_protocol_wins_over_the_name() -> None:
    assert from_kube_port(8080, "tcp-legacy", app_protocol="http") is Protocol.HTTP
    assert from_kube_port(8080, "http", app_protocol="grpc") is Protocol.GRPC
    assert from_kube_port(8080, "http", app_protocol="mystery") is Protocol.UNSUPPORTED


@pytest.mark.parametrize(
    ("app_protocol", "expected"),
    [("kubernetes.io/h2c", Protocol.HTTP2), ("kubernetes.io/ws", Protocol.HTTP), ("kubernetes.io/wss", Protocol.HTTPS)],
)
def test_kubernetes_standard_app_protocols(app_protocol: str, expected: Protocol) -> None:
    assert from_kube_port(80, "", app_protocol=app_protocol) is expected


def test_kubernetes_udp_port_is_udp_whatever_its_name() -> None:
    assert from_kube_port(53, "http-dns", protocol="UDP") is Protocol.UDP
    assert from_kube_port(80, "http", protocol="TCP") is Protocol.HTTP


@pytest.mark.parametrize("number", [25, 53, 3306, 27017])
def test_server_first_ports_are_tcp_not_sniffed(number: int) -> None:
    assert from_kube_port(number, "db") is Protocol.TCP
    assert from_kube_port(number, "http") is Protocol.HTTP


def test_unnamed_port_is_sniffed() -> None:
    assert from_kube_port(9080, None) is Protocol.UNSUPPORTED


@pytest.mark.parametrize(
    ("text", "expected"),
    [("HTTP", Protocol.HTTP), ("http", Protocol.HTTP), ("Grpc", Protocol.GRPC), ("GRPC-WEB", Protocol.GRPC_WEB),
     ("TLS", Protocol.TLS), ("tcp", Protocol.TCP), ("MongO", Protocol.MONGO), ("bogus", Protocol.UNSUPPORTED),
     (None, Protocol.UNSUPPORTED), ("http-web", Protocol.UNSUPPORTED)],
)
def test_service_entry_protocol_is_case_insensitive(text: str | None, expected: Protocol) -> None:
    assert parse(text) is expected
