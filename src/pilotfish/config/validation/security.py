"""AuthorizationPolicy, PeerAuthentication and RequestAuthentication validation.

Two layers, in the order an apply meets them: the CRD's CEL rules (and the schema limits a
shared model cannot carry), then Istio's webhook (ValidateAuthorizationPolicy & co. in
pkg/config/validation/validation.go). Schema errors stop there, as the API server stops.
"""

from __future__ import annotations

import re

from ..base import Resource
from ..errors import Verdict
from ..models.security import (
    Action,
    AuthorizationPolicy,
    JWTRule,
    Operation,
    PeerAuthentication,
    RequestAuthentication,
    Rule,
    Source,
)
from .attachment import attachment_errors, attachment_schema_errors, crd_selector_errors, validate_policy_workload_selector
from .durations import validate_duration
from .golang import GoURLError, parse_go_url
from .jwks import jwks_errors_and_warnings
from .metadata import DRY_RUN_ANNOTATION, validate_reserved_annotations
from .security_rules import (
    check_empty_values,
    check_service_account,
    check_valid_path_template,
    validate_attribute,
    validate_ips,
    validate_ports,
)

_NO_RULES = "{} action without `rules` is meaningless as it will never be triggered, add an empty rule `{{}}` if you want it be triggered for every request"
_DENY_HTTP_ONLY = (
    "configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use of only HTTP "
    "attributes in a DENY rule; it is recommended to explicitly specify the port"
)
# Istio's validStrictHeaderNameRegex (stricter than the CRD's pattern, which allows "_").
_STRICT_HEADER_NAME = re.compile(r"^[-A-Za-z0-9]+$")
_TRUE_FALSE = {"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"}


# ---------------------------------------------------------------- AuthorizationPolicy


def _dry_run_errors(resource: Resource, action: Action) -> list[str]:
    value = resource.annotations.get(DRY_RUN_ANNOTATION)
    if value is None:
        return []
    ref = f"{resource.namespace}/{resource.name}"
    if action not in (Action.ALLOW, Action.DENY):
        return [f"the annotation {DRY_RUN_ANNOTATION} currently only supports action ALLOW/DENY, found action {action} in {ref}"]
    if value not in _TRUE_FALSE:
        return [f'{ref} has annotation {DRY_RUN_ANNOTATION} with invalid value ({value}): strconv.ParseBool: parsing "{value}": invalid syntax']
    return []


def _source_schema_errors(spec: AuthorizationPolicy) -> list[str]:
    errs = []
    for i, rule in enumerate(spec.rules or []):
        for j, item in enumerate(rule.from_ or []):
            src = item.source
            if src is None or (src.service_accounts is None and src.not_service_accounts is None):
                continue
            if any(x is not None for x in (src.principals, src.not_principals, src.namespaces, src.not_namespaces)):
                errs.append(f"spec.rules[{i}].from[{j}].source: Invalid value: \"object\": Cannot set serviceAccounts with namespaces or principals")
    return errs


def _custom_rule_errors(rule: Rule) -> list[str]:
    """CUSTOM (ext-authz) policies cannot match on identities: the check happens before authn."""
    errs = []
    for item in rule.from_ or []:
        src = item.source
        if src is None:
            continue
        for field, values in (
            ("From.Namespaces", src.namespaces),
            ("From.NotNamespaces", src.not_namespaces),
            ("From.ServiceAccounts", src.service_accounts),
            ("From.NotServiceAccounts", src.not_service_accounts),
            ("From.TrustDomains", src.trust_domains),
            ("From.NotTrustDomains", src.not_trust_domains),
            ("From.Principals", src.principals),
            ("From.NotPrincipals", src.not_principals),
            ("From.RequestPrincipals", src.request_principals),
            ("From.NotRequestPrincipals", src.not_request_principals),
        ):
            if values:
                errs.append(f"{field} is currently not supported with CUSTOM action")
    for cond in rule.when or []:
        key = cond.key
        if key in ("source.namespace", "source.serviceAccount", "source.trustDomain", "source.principal") or key.startswith("request.auth."):
            errs.append(f"{key} is currently not supported with CUSTOM action")
    return errs


def _source_errors(src: Source, i: int) -> list[str]:
    errs = []
    identity = [src.principals, src.not_principals, src.namespaces, src.not_namespaces]
    accounts = [src.service_accounts, src.not_service_accounts]
    if any(identity) and any(accounts):
        errs.append(f"cannot set serviceAccounts with namespaces or principals, found at rule {i}")
    lists = identity + accounts + [src.request_principals, src.not_request_principals, src.ip_blocks, src.not_ip_blocks, src.remote_ip_blocks, src.not_remote_ip_blocks, src.trust_domains, src.not_trust_domains]
    if not any(lists):
        errs.append(f"`from.source` must not be empty, found at rule {i}")
    for blocks in (src.ip_blocks, src.not_ip_blocks, src.remote_ip_blocks, src.not_remote_ip_blocks):
        errs += validate_ips(blocks)
    checks = [
        check_empty_values("Principals", src.principals),
        check_empty_values("RequestPrincipals", src.request_principals),
        check_empty_values("Namespaces", src.namespaces),
        check_service_account("ServiceAccounts", src.service_accounts),
        check_empty_values("IpBlocks", src.ip_blocks),
        check_empty_values("RemoteIpBlocks", src.remote_ip_blocks),
        check_empty_values("NotPrincipals", src.not_principals),
        check_empty_values("NotRequestPrincipals", src.not_request_principals),
        check_empty_values("NotNamespaces", src.not_namespaces),
        check_service_account("NotServiceAccounts", src.not_service_accounts),
        check_empty_values("NotIpBlocks", src.not_ip_blocks),
        check_empty_values("NotRemoteIpBlocks", src.not_remote_ip_blocks),
        check_empty_values("TrustDomains", src.trust_domains),
        check_empty_values("NotTrustDomains", src.not_trust_domains),
    ]
    return errs + [c for c in checks if c]


def _operation_errors(op: Operation, i: int) -> list[str]:
    errs = []
    fields = {
        "Ports": op.ports,
        "Methods": op.methods,
        "Paths": op.paths,
        "Hosts": op.hosts,
        "NotPorts": op.not_ports,
        "NotMethods": op.not_methods,
        "NotPaths": op.not_paths,
        "NotHosts": op.not_hosts,
    }
    if not any(fields.values()):
        errs.append(f"`to.operation` must not be empty, found at rule {i}")
    errs += validate_ports(op.ports) + validate_ports(op.not_ports)
    checks = [check_empty_values(name, values) for name, values in fields.items()]
    checks += [check_valid_path_template("Paths", op.paths), check_valid_path_template("NotPaths", op.not_paths)]
    return errs + [c for c in checks if c]


def _rule_errors(rule: Rule, i: int, action: Action) -> tuple[list[str], list[str]]:
    errs: list[str] = []
    if rule.from_ is not None and not rule.from_:
        errs.append(f"`from` must not be empty, found at rule {i}")
    tcp_in_from = tcp_in_to = from_exists = to_exists = False
    for item in rule.from_ or []:
        src = item.source
        if src is None:
            errs.append(f"`from.source` must not be nil, found at rule {i}")
            continue
        from_exists = True
        errs += _source_errors(src, i)
        tcp_fields = (src.principals, src.not_principals, src.ip_blocks, src.not_ip_blocks, src.namespaces, src.not_namespaces,
                      src.remote_ip_blocks, src.not_remote_ip_blocks, src.service_accounts, src.not_service_accounts,
                      src.trust_domains, src.not_trust_domains)
        tcp_in_from = tcp_in_from or any(f is not None for f in tcp_fields)
    if rule.to is not None and not rule.to:
        errs.append(f"`to` must not be empty, found at rule {i}")
    for item in rule.to or []:
        op = item.operation
        if op is None:
            errs.append(f"`to.operation` must not be nil, found at rule {i}")
            continue
        to_exists = True
        errs += _operation_errors(op, i)
        tcp_in_to = tcp_in_to or op.ports is not None or op.not_ports is not None
    for cond in rule.when or []:
        if not cond.key:
            errs.append("`key` must not be empty")
        elif not cond.values and not cond.not_values:
            errs.append(f"at least one of `values` or `notValues` must be set for key {cond.key}")
        else:
            if err := validate_attribute(cond.key, cond.values):
                errs.append(f"invalid `value` for `key` {cond.key}: {err}")
            if err := validate_attribute(cond.key, cond.not_values):
                errs.append(f"invalid `notValue` for `key` {cond.key}: {err}")
    http_only = (from_exists and not to_exists and not tcp_in_from) or (to_exists and not tcp_in_to)
    warnings = [_DENY_HTTP_ONLY] if http_only and action == Action.DENY else []
    return errs, warnings


def authorization_policy_errors(spec: AuthorizationPolicy) -> tuple[list[str], list[str]]:
    """Istio's ValidateAuthorizationPolicy, before the "invalid policy" prefix: (errors, warnings)."""
    errs, warnings = attachment_errors(spec)
    action = spec.action or Action.ALLOW
    if action == Action.CUSTOM:
        if spec.rules is None:
            errs.append(_NO_RULES.format("CUSTOM"))
        elif spec.provider is None or not spec.provider.name:
            errs.append("`provider.name` must not be empty")
        for rule in spec.rules or []:
            errs += _custom_rule_errors(rule)
    if spec.provider is not None and action != Action.CUSTOM:
        errs.append(f"`provider` must not be with non CUSTOM action, found {action}")
    if action == Action.DENY and spec.rules is None:
        errs.append(_NO_RULES.format("DENY"))
    for i, rule in enumerate(spec.rules or []):
        rule_errs, rule_warnings = _rule_errors(rule, i, action)
        errs += rule_errs
        warnings += rule_warnings
    return errs, warnings


def validate_authorization_policy(resource: Resource) -> Verdict:
    spec: AuthorizationPolicy = resource.spec
    schema = attachment_schema_errors(spec) + _source_schema_errors(spec)
    if schema:
        return Verdict(errors=schema)
    meta = validate_reserved_annotations(resource.namespace, resource.name, resource.annotations, dry_run_allowed=True)
    meta = _dry_run_errors(resource, spec.action or Action.ALLOW) + meta
    if meta:
        return Verdict(errors=meta[:1])
    errs, warnings = authorization_policy_errors(spec)
    prefix = f"invalid policy {resource.name}.{resource.namespace}: "
    return Verdict(errors=[prefix + e for e in errs], warnings=warnings)


# ---------------------------------------------------------------- PeerAuthentication


def peer_authentication_errors(spec: PeerAuthentication) -> tuple[list[str], list[str]]:
    """Istio's ValidatePeerAuthentication: (errors, warnings)."""
    errs = []
    ports = spec.port_level_mtls
    if (spec.selector is None or not spec.selector.match_labels) and ports:
        errs.append("mesh/namespace peer authentication cannot have port level mTLS")
    if ports is not None and not ports:
        errs.append("port level mTLS, if defined, must have at least one element")
    errs += ["port must be in range 1..65535" for port in ports or {} if not 0 < port <= 65535]
    sel_errs, warnings = validate_policy_workload_selector(spec.selector)
    return errs + sel_errs, warnings


def _peer_authentication_schema_errors(spec: PeerAuthentication) -> list[str]:
    errs = crd_selector_errors("spec.selector", spec.selector)
    if spec.port_level_mtls is not None:
        if any(not 0 < port <= 65535 for port in spec.port_level_mtls):
            errs.append("spec.portLevelMtls: Invalid value: \"object\": port must be between 1-65535")
        if not (spec.selector and spec.selector.match_labels):
            errs.append("spec: Invalid value: \"object\": portLevelMtls requires selector")
    return errs


def validate_peer_authentication(resource: Resource) -> Verdict:
    spec: PeerAuthentication = resource.spec
    if schema := _peer_authentication_schema_errors(spec):
        return Verdict(errors=schema)
    if meta := validate_reserved_annotations(resource.namespace, resource.name, resource.annotations):
        return Verdict(errors=meta)
    errs, warnings = peer_authentication_errors(spec)
    return Verdict(errors=errs, warnings=warnings)


# ---------------------------------------------------------------- RequestAuthentication


def _jwks_uri_errors(uri: str) -> list[str]:
    """Istio's ParseJwksURI: an http(s) URL Go's url.Parse accepts."""
    try:
        scheme, _, _ = parse_go_url(uri)
    except GoURLError as exc:
        return [str(exc)]
    if scheme not in ("http", "https"):
        return [f'URI scheme "{scheme}" is not supported']
    return []


def _cel_http_url(uri: str) -> bool:
    """The CRD's ``url(self).getScheme() in ["http", "https"]`` (CEL parses as a request URI)."""
    try:
        scheme, _, _ = parse_go_url(uri, request_uri=True)
    except GoURLError:
        return False
    return scheme in ("http", "https")


def jwt_rule_errors(rule: JWTRule) -> tuple[list[str], list[str]]:
    """Istio's validateJwtRule: (errors, warnings)."""
    errs, warnings = [], []
    errs += ["audience must be non-empty string" for a in rule.audiences or [] if not a]
    uri = rule.effective_jwks_uri
    if not rule.issuer and not uri:
        errs.append("issuer or jwksUri must be non-empty string")
    if uri:
        errs += _jwks_uri_errors(uri)
    if rule.jwks:
        jwks_errs, warnings = jwks_errors_and_warnings(rule.jwks)
        errs += jwks_errs
    errs += ["location header name must be non-empty string" for h in rule.from_headers or [] if not h.name]
    errs += ["location query must be non-empty string" for p in rule.from_params or [] if not p]
    errs += ["cookie name must be non-empty string" for c in rule.from_cookies or [] if not c]
    for item in rule.output_claim_to_headers or []:
        if not item.claim or not item.header:
            errs.append("outputClaimToHeaders header and claim value must be non-empty string")
        elif not _STRICT_HEADER_NAME.match(item.header):
            errs.append(f"header name {item.header} is not a valid header name")
    errs += validate_duration(rule.timeout)
    return errs, warnings


def _jwt_rule_schema_errors(rule: JWTRule, path: str) -> list[str]:
    errs = []
    if sum(x is not None for x in (rule.jwks_uri, rule.jwks_uri_legacy, rule.jwks)) > 1:
        errs.append(f"{path}: Invalid value: \"object\": only one of jwks or jwksUri can be set")
    for name, uri in (("jwksUri", rule.jwks_uri), ("jwks_uri", rule.jwks_uri_legacy)):
        if uri is not None and not _cel_http_url(uri):
            errs.append(f"{path}.{name}: Invalid value: \"string\": url must have scheme http:// or https://")
    if rule.timeout is not None and rule.timeout.nanos < 1_000_000:
        errs.append(f"{path}.timeout: Invalid value: \"string\": must be a valid duration greater than 1ms")
    return errs


def validate_request_authentication(resource: Resource) -> Verdict:
    spec: RequestAuthentication = resource.spec
    schema = attachment_schema_errors(spec)
    for i, rule in enumerate(spec.jwt_rules or []):
        schema += _jwt_rule_schema_errors(rule, f"spec.jwtRules[{i}]")
    if schema:
        return Verdict(errors=schema)
    if meta := validate_reserved_annotations(resource.namespace, resource.name, resource.annotations):
        return Verdict(errors=meta)
    errs, warnings = attachment_errors(spec)
    for rule in spec.jwt_rules or []:
        rule_errs, rule_warnings = jwt_rule_errors(rule)
        errs += rule_errs
        warnings += rule_warnings
    return Verdict(errors=errs, warnings=warnings)
