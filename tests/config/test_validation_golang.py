"""Go's standard-library behaviour the validators inherit: net/url parsing and %q quoting."""

from __future__ import annotations

import pytest

from pilotfish.config.validation.golang import GoURLError, go_quote, parse_go_url


@pytest.mark.parametrize("raw,expected", [
    ("https://foo.com:8443/x", ("https", "foo.com", "8443")),
    ("HTTP://h/", ("http", "h", "")),
    ("http://[::1]:80/", ("http", "::1", "80")),
])
def test_go_url_parse(raw: str, expected: tuple[str, str, str]) -> None:
    assert parse_go_url(raw) == expected


@pytest.mark.parametrize("raw,request_uri", [
    ("https://foo.com:not-a-number", False), ("foo.com", True), ("http://a b/", False), ("http://h/%zz", False),
    ("ht\ttp://x", False), (":x", False), ("http://#a@b", True),
])
def test_go_url_rejects(raw: str, request_uri: bool) -> None:
    with pytest.raises(GoURLError):
        parse_go_url(raw, request_uri=request_uri)


def test_go_quote_escapes_quotes_and_backslashes() -> None:
    assert go_quote('a"b\\c') == '"a\\"b\\\\c"'
