"""ProxyConfig validation (Istio's ValidateProxyConfig) plus the CRD's selector rules."""

from __future__ import annotations

from ..base import Resource
from ..errors import Verdict, at
from ..models.proxyconfig import ProxyConfig
from .attachment import crd_selector_errors, validate_policy_workload_selector
from .metadata import metadata_errors


def validate_proxy_config(resource: Resource) -> Verdict:
    errs = metadata_errors(resource)
    if errs:
        return Verdict(errors=errs)
    spec: ProxyConfig = resource.spec
    errors, warnings = validate_policy_workload_selector(spec.selector)
    selector = ("spec", "selector")
    v = Verdict(at(selector, errors) + crd_selector_errors(selector, spec.selector), at(selector, warnings))
    if (spec.concurrency or 0) < 0:
        v.errors += at(("spec", "concurrency"), ["concurrency must be greater than or equal to 0"])
    return v
