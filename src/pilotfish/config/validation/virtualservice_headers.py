"""Header checks for VirtualService routes: names, Envoy ``%VAR%`` values, authority rewrites.

Ports of Istio's ValidateHTTPHeaderWithAuthorityOperationName, ValidateHTTPHeaderOperationName,
ValidateHTTPHeaderValue (with Envoy's header_parser state machine) and validateAuthorityRewrite.
"""

from __future__ import annotations

import re

from ..models.virtualservice import Headers, HTTPRewrite

# RFC 7230 token characters: what Istio's validHeaderNameRegex accepts.
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~A-Za-z0-9]+$")
_HEADER_VALUE = re.compile(r"^[^\x00-\x08\x0a-\x1f\x7f]*$")


def header_operation_errors(headers: Headers | None) -> list[str]:
    """Request add/set may touch the authority; remove and response operations may not touch it."""
    if headers is None:
        return []
    errs: list[str] = []
    request, response = headers.request, headers.response
    if request is not None:
        for ops in (request.add or {}, request.set or {}):
            for name, value in ops.items():
                errs += _request_header_name_errors(name)
                errs += header_value_errors(value)
        for name in request.remove or []:
            errs += _header_operation_name_errors(name)
    if response is not None:
        for ops in (response.add or {}, response.set or {}):
            for name, value in ops.items():
                errs += _header_operation_name_errors(name)
                errs += header_value_errors(value)
        for name in response.remove or []:
            errs += _header_operation_name_errors(name)
    return errs


def _is_internal_header(name: str) -> bool:
    return name.startswith(":") or name.lower() == "host"


def _is_authority_header(name: str) -> bool:
    return name.lower() in (":authority", "host")


def _request_header_name_errors(name: str) -> list[str]:
    if not name:
        return ["header name cannot be empty"]
    if _is_internal_header(name) and not _is_authority_header(name):
        return [f'invalid header "{name}": header cannot have ":" prefix']
    return []


def _header_operation_name_errors(name: str) -> list[str]:
    if not name:
        return ["header name cannot be empty"]
    if name.lower() == "host":
        return [f'invalid header "{name}": cannot set Host header']
    if _is_internal_header(name):
        return [f'invalid header "{name}": header cannot have ":" prefix']
    return []


def header_value_errors(value: str) -> list[str]:
    """Istio's ValidateHTTPHeaderValue: no control characters, well-formed ``%VAR%`` expressions."""
    if not _HEADER_VALUE.match(value):
        return [f"header value configuration {value} is invalid"]
    problem = _envoy_header_format_error(value)
    return [f"header value configuration: {problem}"] if problem else []


def _envoy_header_format_error(value: str) -> str | None:  # noqa: C901 - a faithful state machine
    """Envoy's header_parser (as ported by Istio): ``%%`` escapes, ``%VAR%`` and ``%VAR(["a"])%``."""
    state, pos, n = "literal", 0, len(value)
    while pos < n:
        ch, has_next = value[pos], pos + 1 < n
        if state == "literal":
            if ch == "%":
                if not has_next:
                    return "invalid header configuration. Un-escaped %"
                if value[pos + 1] == "%":
                    pos += 1
                else:
                    state = "name"
        elif state == "name":
            if ch == "%":
                state = "literal"
            elif ch == "(":
                state = "array"
        elif state == "array":
            if ch == "[":
                state = "string_start"
            elif ch != " ":
                state = "string"
        elif state == "delim":
            if ch == ",":
                state = "string_start"
            elif ch == "]":
                state = "args_end"
            elif ch != " ":
                return "invalid header configuration. Expecting ',', ']', or whitespace"
        elif state == "string_start":
            if ch == '"':
                state = "string"
            elif ch != " ":
                return "invalid header configuration. Expecting '\"'"
        elif state == "string":
            if ch == "\\":
                if not has_next:
                    return "invalid header configuration. Un-terminated backslash in JSON string"
                pos += 1
            elif ch == ")":
                state = "var_end"
            elif ch == '"':
                state = "delim"
        elif state == "args_end":
            if ch == ")":
                state = "var_end"
            elif ch != " ":
                return "invalid header configuration. Expecting ')' or whitespace after '{}', but found '{}'"
        elif state == "var_end":
            if ch == "%":
                state = "literal"
            elif ch != " ":
                return "invalid header configuration. Expecting '%' or whitespace after"
        pos += 1
    if state != "literal":
        return f"invalid header configuration. Un-terminated variable expression '{value}'"
    return None


def authority_rewrite_errors(rewrite: HTTPRewrite | None, headers: Headers | None) -> list[str]:
    """The authority may be rewritten in one place only (rewrite.authority or a request header)."""
    current = (rewrite.authority if rewrite else None) or ""
    request = headers.request if headers else None
    if request is None:
        return []
    for ops in (request.set or {}, request.add or {}):
        for name, value in ops.items():
            if not _is_authority_header(name):
                continue
            if current:
                return [f'authority header cannot be set multiple times: have "{current}", attempting to set "{value}"']
            current = value
    return []
