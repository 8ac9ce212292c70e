"""The request to replay: where the connection goes and what the HTTP head says, parsed once
at the edge, and the proxy's own RequestHead built from it (what its codec would produce)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from ..proxy.http.head import RequestHead
from .errors import ExplainError


class Protocol(StrEnum):
    HTTP = "http"
    HTTP2 = "http2"
    GRPC = "grpc"
    TCP = "tcp"
    TLS = "tls"

    @property
    def is_http(self) -> bool:
        return self in (Protocol.HTTP, Protocol.HTTP2, Protocol.GRPC)

    @property
    def application_protocols(self) -> tuple[str, ...]:
        """What Envoy's http_inspector detects on a plaintext connection."""
        if self is Protocol.HTTP:
            return ("http/1.1",)
        if self in (Protocol.HTTP2, Protocol.GRPC):
            return ("h2c",)
        return ()

    @property
    def transport_protocol(self) -> str:
        """What Envoy's tls_inspector detects (``raw_buffer`` without one)."""
        return "tls" if self is Protocol.TLS else "raw_buffer"


@dataclass(frozen=True)
class Request:
    """``host`` is the Host header exactly as sent (a port included when written); ``port`` the
    destination port of the connection; ``address`` its destination IP, None to let explain
    choose (the service's VIP or first endpoint, or a NONE-mode sidecar's HTTP proxy)."""

    host: str
    path: str = "/"
    port: int = 80
    address: str | None = None
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    protocol: Protocol = Protocol.HTTP
    sni: str = ""

    @property
    def bare_host(self) -> str:
        host = self.host
        if host.startswith("["):
            return host.split("]", 1)[0] + "]"
        return host.rsplit(":", 1)[0] if host.count(":") == 1 else host

    @property
    def server_name(self) -> str:
        return self.sni or (self.bare_host if self.protocol is Protocol.TLS else "")

    def head(self) -> RequestHead:
        """The head the proxy's HTTP/1.1 codec would hand its router: lower-cased names, the
        Host header in the list, the path split from its query."""
        head = RequestHead()
        head.method = self.method.upper().encode()
        head.authority = self.host.encode()
        head.set_path(self.path.encode())
        headers = [(b"host", head.authority)]
        if self.protocol is Protocol.GRPC and not any(k.lower() == "content-type" for k, _ in self.headers):
            headers.append((b"content-type", b"application/grpc"))
        headers += [(k.lower().encode(), v.encode()) for k, v in self.headers]
        head.headers = headers
        return head


def parse_header(text: str) -> tuple[str, str]:
    """``'end-user: jason'`` → (name, value)."""
    name, sep, value = text.partition(":")
    if not sep and "=" in text:
        name, _, value = text.partition("=")
    name = name.strip()
    if not name:
        raise ExplainError(f"a header needs 'name: value', got {text!r}")
    return name, value.strip()


def build_request(*, url: str | None, host: str | None, path: str | None, port: int | None,
                  address: str | None, method: str | None, headers: tuple[str, ...],
                  protocol: str, sni: str | None) -> Request:
    """A Request from the command line's options: ``url`` or ``host`` (+ ``path``); ``port``
    defaults to the URL's, else 80 (443 for https or TLS)."""
    proto = Protocol(protocol)
    url_port = None
    if url is not None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if not parts.hostname:
            raise ExplainError(f"no host in {url!r}")
        host = host or parts.netloc.rsplit("@", 1)[-1]
        path = path or ((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        try:
            url_port = parts.port
        except ValueError as exc:
            raise ExplainError(f"bad port in {url!r}") from exc
        if url_port is None and parts.scheme == "https":
            url_port = 443
    if not host:
        raise ExplainError("say which request: --url http://host[:port]/path, or --host (and --path)")
    if port is None:
        port = url_port
    if port is None:
        _, sep, written = host.rpartition(":")
        port = int(written) if sep and written.isdigit() else (443 if proto is Protocol.TLS else 80)
    path = path or "/"
    if not path.startswith("/"):
        path = "/" + path
    parsed = tuple(parse_header(h) for h in headers)
    if method is None:
        method = "POST" if proto is Protocol.GRPC else "GET"
    return Request(host=host, path=path, port=port, address=address, method=method, headers=parsed,
                   protocol=proto, sni=sni or "")
