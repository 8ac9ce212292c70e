"""What Istio's checks inherit from Go's standard library: %q quoting and net/url parsing.

Istio's messages quote values with Go's ``%q`` and its URL fields (JWKS URIs, Wasm module
URLs) are parsed with ``url.Parse``/``url.ParseRequestURI``, as are the CRDs' CEL ``url()``
rules; these reproduce what those accept and how they print.
"""

from __future__ import annotations


def go_quote(value: str) -> str:
    """Go's %q for the plain strings in Istio's messages: double quotes, backslash escapes."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class GoURLError(ValueError):
    """A URL Go's net/url refuses; Istio (and the CRDs' CEL url()) parse with it."""


_USERINFO_OK = set("-._:~!$&'()*+,;=%@")
_HOST_OK = set("!$&'()*+,;=:[]<>\"-_.~")


def _unescape(s: str, host: bool) -> None:
    i = 0
    while i < len(s):
        c = s[i]
        if c == "%":
            esc = s[i : i + 3]
            if len(esc) < 3 or not all(ch in "0123456789abcdefABCDEF" for ch in esc[1:]):
                raise GoURLError(f"invalid URL escape {esc!r}")
            if host and int(esc[1], 16) < 8 and esc != "%25":
                raise GoURLError(f"invalid URL escape {esc!r}")
            i += 3
            continue
        if host and ord(c) < 0x80 and not c.isalnum() and c not in _HOST_OK:
            raise GoURLError(f"invalid character {c!r} in host name")
        i += 1


def _parse_host(host: str) -> str:
    if host.startswith("["):
        end = host.rfind("]")
        if end < 0:
            raise GoURLError("missing ']' in host")
        port = host[end + 1 :]
    else:
        colon = host.rfind(":")
        port = host[colon:] if colon >= 0 else ""
    if port and not (port[0] == ":" and port[1:].isdigit() or port == ":"):
        raise GoURLError(f"invalid port {port!r} after host")
    _unescape(host, host=True)
    return host


def parse_go_url(raw: str, *, request_uri: bool = False) -> tuple[str, str, str]:
    """(scheme, host, port) as Go's url.Parse / url.ParseRequestURI see them, or GoURLError."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise GoURLError(f"parse {raw!r}: net/url: invalid control character in URL")
    if not request_uri:
        raw, _, fragment = raw.partition("#")
        _unescape(fragment, host=False)
    if raw == "" and request_uri:
        raise GoURLError('parse "": empty url')
    if raw == "*":
        return "", "", ""
    scheme, rest = "", raw
    for i, c in enumerate(raw):
        if c.isascii() and c.isalpha():
            continue
        if c.isascii() and (c.isdigit() or c in "+-.") and i > 0:
            continue
        if c == ":":
            if i == 0:
                raise GoURLError(f"parse {raw!r}: missing protocol scheme")
            scheme, rest = raw[:i].lower(), raw[i + 1 :]
        break
    if rest.endswith("?") and rest.count("?") == 1:
        rest = rest[:-1]
    else:
        rest = rest.partition("?")[0]
    if not rest.startswith("/"):
        if scheme:
            return scheme, "", ""
        if request_uri:
            raise GoURLError(f"parse {raw!r}: invalid URI for request")
        if ":" in rest.partition("/")[0]:
            raise GoURLError(f"parse {raw!r}: first path segment in URL cannot contain colon")
    host = ""
    if (scheme or (not request_uri and not rest.startswith("///"))) and rest.startswith("//"):
        authority, slash, tail = rest[2:].partition("/")
        rest = slash + tail
        user, at, hostport = authority.rpartition("@")
        host = _parse_host(hostport)
        if at:
            if not all(c.isascii() and c.isalnum() or c in _USERINFO_OK for c in user):
                raise GoURLError(f"parse {raw!r}: net/url: invalid userinfo")
            _unescape(user, host=False)
    _unescape(rest, host=False)
    hostname, port = host, ""
    if host.startswith("["):
        hostname, _, after = host[1:].partition("]")
        port = after[1:]
    elif ":" in host:
        hostname, _, port = host.rpartition(":")
    return scheme, hostname, port
