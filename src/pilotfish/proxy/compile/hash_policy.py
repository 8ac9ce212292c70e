"""RouteAction.hash_policy → HashPolicy."""

from __future__ import annotations

from typing import Any, Sequence

from ..common.errors import ProxyConfigError
from ..router.hash_policy import CookieHash, HashMethod, HashPolicy, HeaderHash, QueryParameterHash, SourceIpHash
from .matchers import compile_regex


def compile_hash_policy(policies: Sequence[Any], path: str) -> HashPolicy | None:
    methods: list[HashMethod] = []
    for i, hp in enumerate(policies):
        p = f"{path}[{i}]"
        which = hp.WhichOneof("policy_specifier")
        terminal = hp.terminal
        if which == "header":
            name = hp.header.header_name.lower()
            if not name:
                raise ProxyConfigError("header_name is required", f"{p}.header.header_name")
            rewrite = None
            if hp.header.HasField("regex_rewrite"):
                rr = hp.header.regex_rewrite
                rewrite = (compile_regex(rr.pattern.regex, f"{p}.header.regex_rewrite.pattern.regex"),
                           rr.substitution)
            methods.append(HeaderHash(name.encode(), rewrite, terminal))
        elif which == "cookie":
            ck = hp.cookie
            if not ck.name:
                raise ProxyConfigError("cookie name is required", f"{p}.cookie.name")
            ttl = ck.ttl.seconds if ck.HasField("ttl") else None
            attrs = tuple((a.name.encode(), a.value.encode()) for a in ck.attributes)
            methods.append(CookieHash(ck.name.encode(), ttl, ck.path.encode(), attrs, terminal))
        elif which == "connection_properties":
            if hp.connection_properties.source_ip:
                methods.append(SourceIpHash(terminal))
        elif which == "query_parameter":
            if not hp.query_parameter.name:
                raise ProxyConfigError("query parameter name is required", f"{p}.query_parameter.name")
            methods.append(QueryParameterHash(hp.query_parameter.name.encode(), terminal))
        else:
            raise ProxyConfigError(f"hash policy {which or '(none)'} is not supported "
                                   "(header, cookie, connection_properties, query_parameter are)", p)
    return HashPolicy(tuple(methods)) if methods else None
