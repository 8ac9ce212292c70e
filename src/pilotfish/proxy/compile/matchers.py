"""String, regex and header matchers → plain callables over bytes."""

from __future__ import annotations

from typing import Any

import re2

from ..common.errors import ProxyConfigError
from ..router.route_table import HeaderMatcher, QueryMatcher, StringMatch

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


def compile_regex(pattern: str, path: str) -> Any:
    """Compile with RE2 semantics, as Envoy's safe_regex does."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        raise ProxyConfigError(f"invalid RE2 regex {pattern!r}: {exc}", path) from exc


def _regex_match(regex: Any) -> StringMatch:
    fullmatch = regex.fullmatch
    return lambda v: fullmatch(v.decode("latin-1")) is not None


def string_matcher(m: Any, path: str) -> StringMatch:
    """envoy.type.matcher.v3.StringMatcher → callable(bytes) -> bool."""
    which = m.WhichOneof("match_pattern")
    if which is None:
        raise ProxyConfigError("a string matcher needs one of exact/prefix/suffix/safe_regex/contains", path)
    if which == "safe_regex":
        return _regex_match(compile_regex(m.safe_regex.regex, f"{path}.safe_regex.regex"))
    if which == "custom":  # an extension (TypedExtensionConfig), not a string
        raise ProxyConfigError("custom string matchers are not supported", f"{path}.custom")
    value = getattr(m, which).encode()
    return _literal(which, value, m.ignore_case)


def _literal(kind: str, value: bytes, ignore_case: bool) -> StringMatch:
    if ignore_case:
        value = value.lower()
        if kind == "exact":
            return lambda v: v.lower() == value
        if kind == "prefix":
            return lambda v: v.lower().startswith(value)
        if kind == "suffix":
            return lambda v: v.lower().endswith(value)
        return lambda v: value in v.lower()
    if kind == "exact":
        return value.__eq__
    if kind == "prefix":
        return lambda v: v.startswith(value)
    if kind == "suffix":
        return lambda v: v.endswith(value)
    return lambda v: value in v


def header_matcher(m: Any, path: str) -> HeaderMatcher:
    """envoy.config.route.v3.HeaderMatcher → HeaderMatcher."""
    name = m.name.lower().encode()
    if not name:
        raise ProxyConfigError("a header matcher needs a name", f"{path}.name")
    if name == b":authority":
        name = b"host"
    which = m.WhichOneof("header_match_specifier")
    present = None
    match: StringMatch | None
    if which is None:
        match, present = None, True  # no specifier: the header must be present
    elif which == "present_match":
        match, present = None, m.present_match
    elif which == "string_match":
        match = string_matcher(m.string_match, f"{path}.string_match")
    elif which == "safe_regex_match":
        match = _regex_match(compile_regex(m.safe_regex_match.regex, f"{path}.safe_regex_match.regex"))
    elif which == "range_match":
        start, end = m.range_match.start, m.range_match.end
        match = lambda v: _in_range(v, start, end)  # noqa: E731
    else:
        kind = which.removesuffix("_match")
        match = _literal(kind, getattr(m, which).encode(), False)
    return HeaderMatcher(name, match, present, m.invert_match, m.treat_missing_header_as_empty)


def _in_range(value: bytes, start: int, end: int) -> bool:
    try:
        n = int(value)
    except ValueError:
        return False
    return start <= n < end


def query_matcher(m: Any, path: str) -> QueryMatcher:
    name = m.name.encode()
    if m.HasField("string_match"):
        return QueryMatcher(name, string_matcher(m.string_match, f"{path}.string_match"))
    if m.HasField("present_match") and not m.present_match:
        raise ProxyConfigError("present_match: false is not supported", f"{path}.present_match")
    return QueryMatcher(name, None)
