"""AuthorizationPolicy, PeerAuthentication and RequestAuthentication validation.

Two layers, in the order an apply meets them: the CRD's CEL rules (and the schema limits a
shared model cannot carry), then Istio's webhook (ValidateAuthorizationPolicy & co. in
pkg/config/validation/validation.go). Schema errors stop there, as the API server stops.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..base import Resource
from ..errors import FieldError, FieldPath, Verdict, at, crd_error, field_path, format_path
from ..models.security import (
    Action,
    AuthorizationPolicy,
    Condition,
    JWTRule,
    Operation,
    PeerAuthentication,
    RequestAuthentication,
    Rule,
    Source,
)
from .attachment import attachment_errors, attachment_schema_errors, crd_selector_errors, validate_policy_workload_selector
from .durations import cel_duration, validate_duration
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
_CAPITAL = re.compile(r"(?<!^)([A-Z])")
_TRUE_FALSE = {"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"}


# ---------------------------------------------------------------- AuthorizationPolicy


def _yaml_name(go_name: str) -> str:
    """The field's YAML name from the Go name Istio's messages use: ``NotIpBlocks`` → ``notIpBlocks``."""
    return go_name[0].lower() + go_name[1:]


def _lists(obj: Source | Operation, go_names: str) -> list[tuple[str, list[str] | None]]:
    """(Go name, value) of the named list fields: ``NotIpBlocks`` reads ``obj.not_ip_blocks``."""
    return [(name, getattr(obj, _CAPITAL.sub(r"_\1", name).lower())) for name in go_names.split()]


def _field_checks(check: Callable[[str, list[str] | None], str | None], fields: list[tuple[str, list[str] | None]]) -> list[str]:
    """``check(GoName, values)`` on each field, each problem placed at its field (and value)."""
    return [FieldError(err, (_yaml_name(name), *field_path(err))) for name, values in fields if (err := check(name, values))]


def _dry_run_errors(resource: Resource, action: Action) -> list[str]:
    value = resource.annotations.get(DRY_RUN_ANNOTATION)
    if value is None:
        return []
    ref = f"{resource.namespace}/{resource.name}"
    if action not in (Action.ALLOW, Action.DENY):
        errs = [f"the annotation {DRY_RUN_ANNOTATION} currently only supports action ALLOW/DENY, found action {action} in {ref}"]
    elif value not in _TRUE_FALSE:
        errs = [f'{ref} has annotation {DRY_RUN_ANNOTATION} with invalid value ({value}): strconv.ParseBool: parsing "{value}": invalid syntax']
    else:
        errs = []
    return at(("metadata", "annotations", DRY_RUN_ANNOTATION), errs)


def _source_schema_errors(spec: AuthorizationPolicy) -> list[str]:
    errs: list[str] = []
    for i, rule in enumerate(spec.rules or []):
        for j, item in enumerate(rule.from_ or []):
            src = item.source
            if src is None or (src.service_accounts is None and src.not_service_accounts is None):
                continue
            if any(x is not None for x in (src.principals, src.not_principals, src.namespaces, src.not_namespaces)):
                errs.append(crd_error(("spec", "rules", i, "from", j, "source"),
                                         'Invalid value: "object": Cannot set serviceAccounts with namespaces or principals'))
    return errs


def _custom_rule_errors(rule: Rule) -> list[str]:
    """CUSTOM (ext-authz) policies cannot match on identities: the check happens before authn."""
    errs: list[str] = []
    for j, item in enumerate(rule.from_ or []):
        src = item.source
        if src is None:
            continue
        for name, values in _lists(src, "Namespaces NotNamespaces ServiceAccounts NotServiceAccounts TrustDomains NotTrustDomains "
                                        "Principals NotPrincipals RequestPrincipals NotRequestPrincipals"):
            if values:
                errs.append(FieldError(f"From.{name} is currently not supported with CUSTOM action",
                                       ("from", j, "source", _yaml_name(name))))
    for k, cond in enumerate(rule.when or []):
        key = cond.key
        if key in ("source.namespace", "source.serviceAccount", "source.trustDomain", "source.principal") or key.startswith("request.auth."):
            errs.append(FieldError(f"{key} is currently not supported with CUSTOM action", ("when", k, "key")))
    return errs


def _source_errors(src: Source, i: int) -> list[str]:
    errs: list[str] = []
    identity = [src.principals, src.not_principals, src.namespaces, src.not_namespaces]
    accounts = [src.service_accounts, src.not_service_accounts]
    if any(identity) and any(accounts):
        errs.append(f"cannot set serviceAccounts with namespaces or principals, found at rule {i}")
    lists = identity + accounts + [src.request_principals, src.not_request_principals, src.ip_blocks, src.not_ip_blocks, src.remote_ip_blocks, src.not_remote_ip_blocks, src.trust_domains, src.not_trust_domains]
    if not any(lists):
        errs.append(f"`from.source` must not be empty, found at rule {i}")
    for name, blocks in _lists(src, "IpBlocks NotIpBlocks RemoteIpBlocks NotRemoteIpBlocks"):
        errs += at((_yaml_name(name),), validate_ips(blocks))
    return errs + _field_checks(_source_check, _lists(
        src, "Principals RequestPrincipals Namespaces ServiceAccounts IpBlocks RemoteIpBlocks NotPrincipals "
             "NotRequestPrincipals NotNamespaces NotServiceAccounts NotIpBlocks NotRemoteIpBlocks TrustDomains NotTrustDomains"))


def _source_check(name: str, values: list[str] | None) -> str | None:
    return check_service_account(name, values) if name.endswith("ServiceAccounts") else check_empty_values(name, values)


def _operation_errors(op: Operation, i: int) -> list[str]:
    errs: list[str] = []
    fields = _lists(op, "Ports Methods Paths Hosts NotPorts NotMethods NotPaths NotHosts")
    if not any(values for _, values in fields):
        errs.append(f"`to.operation` must not be empty, found at rule {i}")
    errs += at(("ports",), validate_ports(op.ports)) + at(("notPorts",), validate_ports(op.not_ports))
    errs += _field_checks(check_empty_values, fields)
    return errs + _field_checks(check_valid_path_template, _lists(op, "Paths NotPaths"))


def _condition_errors(cond: Condition) -> list[str]:
    if not cond.key:
        return [FieldError("`key` must not be empty", ("key",))]
    if not cond.values and not cond.not_values:
        return [f"at least one of `values` or `notValues` must be set for key {cond.key}"]
    errs: list[str] = []
    for field, label, values in (("values", "value", cond.values), ("notValues", "notValue", cond.not_values)):
        if err := validate_attribute(cond.key, values, field):
            errs.append(FieldError(f"invalid `{label}` for `key` {cond.key}: {err}", field_path(err)))
    return errs


def _check_rule(v: Verdict, rule: Rule, i: int, action: Action) -> None:
    """One rule's errors and its DENY warning, with paths below the rule."""
    if rule.from_ is not None and not rule.from_:
        v.errors.append(FieldError(f"`from` must not be empty, found at rule {i}", ("from",)))
    tcp_in_from = tcp_in_to = from_exists = to_exists = False
    for j, item in enumerate(rule.from_ or []):
        src = item.source
        if src is None:
            v.errors.append(FieldError(f"`from.source` must not be nil, found at rule {i}", ("from", j)))
            continue
        from_exists = True
        v.errors += at(("from", j, "source"), _source_errors(src, i))
        tcp_fields = (src.principals, src.not_principals, src.ip_blocks, src.not_ip_blocks, src.namespaces, src.not_namespaces,
                      src.remote_ip_blocks, src.not_remote_ip_blocks, src.service_accounts, src.not_service_accounts,
                      src.trust_domains, src.not_trust_domains)
        tcp_in_from = tcp_in_from or any(f is not None for f in tcp_fields)
    if rule.to is not None and not rule.to:
        v.errors.append(FieldError(f"`to` must not be empty, found at rule {i}", ("to",)))
    for j, to in enumerate(rule.to or []):
        op = to.operation
        if op is None:
            v.errors.append(FieldError(f"`to.operation` must not be nil, found at rule {i}", ("to", j)))
            continue
        to_exists = True
        v.errors += at(("to", j, "operation"), _operation_errors(op, i))
        tcp_in_to = tcp_in_to or op.ports is not None or op.not_ports is not None
    for k, cond in enumerate(rule.when or []):
        v.errors += at(("when", k), _condition_errors(cond))
    http_only = (from_exists and not to_exists and not tcp_in_from) or (to_exists and not tcp_in_to)
    if http_only and action == Action.DENY:
        v.warnings.append(_DENY_HTTP_ONLY)


def authorization_policy_errors(spec: AuthorizationPolicy) -> Verdict:
    """Istio's ValidateAuthorizationPolicy, before the "invalid policy" prefix (paths from the root)."""
    v = Verdict(*attachment_errors(spec))
    action = spec.action or Action.ALLOW
    if action == Action.CUSTOM:
        if spec.rules is None:
            v.errors.append(FieldError(_NO_RULES.format("CUSTOM"), ("spec", "action")))
        elif spec.provider is None or not spec.provider.name:
            v.errors.append(FieldError("`provider.name` must not be empty", ("spec", "provider", "name")))
        for i, rule in enumerate(spec.rules or []):
            v.errors += at(("spec", "rules", i), _custom_rule_errors(rule))
    if spec.provider is not None and action != Action.CUSTOM:
        v.errors.append(FieldError(f"`provider` must not be with non CUSTOM action, found {action}", ("spec", "provider")))
    if action == Action.DENY and spec.rules is None:
        v.errors.append(FieldError(_NO_RULES.format("DENY"), ("spec", "action")))
    for i, rule in enumerate(spec.rules or []):
        v.under(("spec", "rules", i), lambda one, rule=rule, i=i: _check_rule(one, rule, i, action))
    return v


def validate_authorization_policy(resource: Resource) -> Verdict:
    spec: AuthorizationPolicy = resource.spec
    schema = attachment_schema_errors(spec) + _source_schema_errors(spec)
    if schema:
        return Verdict(errors=schema)
    meta = validate_reserved_annotations(resource.namespace, resource.name, resource.annotations, dry_run_allowed=True)
    meta = _dry_run_errors(resource, spec.action or Action.ALLOW) + meta
    if meta:
        return Verdict(errors=meta[:1])
    v = authorization_policy_errors(spec)
    prefix = f"invalid policy {resource.name}.{resource.namespace}: "
    return Verdict(errors=[FieldError(prefix + e, field_path(e)) for e in v.errors], warnings=v.warnings)


# ---------------------------------------------------------------- PeerAuthentication


def peer_authentication_errors(spec: PeerAuthentication) -> tuple[list[str], list[str]]:
    """Istio's ValidatePeerAuthentication: (errors, warnings), paths from the root."""
    errs: list[str] = []
    ports = spec.port_level_mtls
    here = ("spec", "portLevelMtls")
    if (spec.selector is None or not spec.selector.match_labels) and ports:
        errs.append(FieldError("mesh/namespace peer authentication cannot have port level mTLS", here))
    if ports is not None and not ports:
        errs.append(FieldError("port level mTLS, if defined, must have at least one element", here))
    # (the YAML keys are strings; the loader records them so)
    errs += [FieldError("port must be in range 1..65535", (*here, str(port))) for port in ports or {} if not 0 < port <= 65535]
    sel_errs, warnings = validate_policy_workload_selector(spec.selector)
    return errs + at(("spec", "selector"), sel_errs), at(("spec", "selector"), warnings)


def _peer_authentication_schema_errors(spec: PeerAuthentication) -> list[str]:
    errs = crd_selector_errors(("spec", "selector"), spec.selector)
    if spec.port_level_mtls is not None:
        if any(not 0 < port <= 65535 for port in spec.port_level_mtls):
            errs.append(crd_error(("spec", "portLevelMtls"), 'Invalid value: "object": port must be between 1-65535'))
        if not (spec.selector and spec.selector.match_labels):
            errs.append(crd_error(("spec",), 'Invalid value: "object": portLevelMtls requires selector'))
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


def _check_jwt_rule(v: Verdict, rule: JWTRule) -> None:
    """Istio's validateJwtRule, with paths below the rule."""
    v.errors += [FieldError("audience must be non-empty string", ("audiences", k)) for k, a in enumerate(rule.audiences or []) if not a]
    uri = rule.effective_jwks_uri
    if not rule.issuer and not uri:
        v.errors.append("issuer or jwksUri must be non-empty string")
    if uri:
        v.errors += at(("jwksUri" if rule.jwks_uri else "jwks_uri",), _jwks_uri_errors(uri))
    if rule.jwks:
        jwks_errs, jwks_warnings = jwks_errors_and_warnings(rule.jwks)
        v.errors += at(("jwks",), jwks_errs)
        v.warnings += at(("jwks",), jwks_warnings)
    v.errors += [FieldError("location header name must be non-empty string", ("fromHeaders", k, "name"))
                 for k, h in enumerate(rule.from_headers or []) if not h.name]
    v.errors += [FieldError("location query must be non-empty string", ("fromParams", k)) for k, p in enumerate(rule.from_params or []) if not p]
    v.errors += [FieldError("cookie name must be non-empty string", ("fromCookies", k)) for k, c in enumerate(rule.from_cookies or []) if not c]
    for k, item in enumerate(rule.output_claim_to_headers or []):
        if not item.claim or not item.header:
            v.errors.append(FieldError("outputClaimToHeaders header and claim value must be non-empty string", ("outputClaimToHeaders", k)))
        elif not _STRICT_HEADER_NAME.match(item.header):
            v.errors.append(FieldError(f"header name {item.header} is not a valid header name", ("outputClaimToHeaders", k, "header")))
    v.errors += at(("timeout",), validate_duration(rule.timeout))


def _jwt_rule_schema_errors(rule: JWTRule, here: FieldPath) -> list[str]:
    errs: list[str] = []
    if sum(x is not None for x in (rule.jwks_uri, rule.jwks_uri_legacy, rule.jwks)) > 1:
        errs.append(crd_error(here, 'Invalid value: "object": only one of jwks or jwksUri can be set'))
    for name, uri in (("jwksUri", rule.jwks_uri), ("jwks_uri", rule.jwks_uri_legacy)):
        if uri is not None and not _cel_http_url(uri):
            errs.append(crd_error((*here, name), 'Invalid value: "string": url must have scheme http:// or https://'))
    timeout = (*here, "timeout")
    return errs + at(timeout, cel_duration(rule.timeout, format_path(timeout)))


def validate_request_authentication(resource: Resource) -> Verdict:
    spec: RequestAuthentication = resource.spec
    schema = attachment_schema_errors(spec)
    for i, rule in enumerate(spec.jwt_rules or []):
        schema += _jwt_rule_schema_errors(rule, ("spec", "jwtRules", i))
    if schema:
        return Verdict(errors=schema)
    if meta := validate_reserved_annotations(resource.namespace, resource.name, resource.annotations):
        return Verdict(errors=meta)
    v = Verdict(*attachment_errors(spec))
    for i, rule in enumerate(spec.jwt_rules or []):
        v.under(("spec", "jwtRules", i), lambda one, rule=rule: _check_jwt_rule(one, rule))
    return v
