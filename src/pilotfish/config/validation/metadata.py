"""What every Istio kind shares around its spec: reserved annotations, a required spec,
``exportTo`` and the label maps Istio calls tags (subset labels, sourceLabels).

Ports of Istio's validateMetadata, validateExportTo and labels.Instance.Validate, with
their messages.
"""

from __future__ import annotations

import re

from ..base import Resource
from ..errors import FieldError
from .domains import DNS1123_LABEL_MAX, is_dns1123_label_any_case
from .golang import go_quote

DRY_RUN_ANNOTATION = "istio.io/dry-run"
_REJECTED_ANNOTATIONS = {
    "internal.istio.io/webhook-always-reject": "rejecting",
    "internal.istio.io/parents": "this may not be set by users",
}


def validate_reserved_annotations(namespace: str, name: str, annotations: dict[str, str], *, dry_run_allowed: bool = False) -> list[str]:
    """Istio's validateMetadata: annotations the webhook refuses before looking at the spec
    (each message at its annotation)."""
    if DRY_RUN_ANNOTATION in annotations and not dry_run_allowed:
        return [FieldError(f"{namespace}/{name} has unsupported annotation {DRY_RUN_ANNOTATION}, please remove the annotation",
                           ("metadata", "annotations", DRY_RUN_ANNOTATION))]
    for key, message in _REJECTED_ANNOTATIONS.items():
        if key in annotations:
            return [FieldError(f'"{key}" annotation found, {message}', ("metadata", "annotations", key))]
    return []


def metadata_errors(resource: Resource, *, spec_required: bool = False) -> list[str]:
    """What every Istio kind checks before its spec: reserved annotations, and a required spec."""
    errs = validate_reserved_annotations(resource.namespace, resource.name, resource.annotations)
    if spec_required and resource.raw and "spec" not in resource.raw:
        errs.append(FieldError("spec: Required value", ("spec",)))
    return errs


def validate_tag_labels(labels: dict[str, str] | None) -> list[str]:
    """Istio's labels.Instance.Validate (subset labels, sourceLabels), with its messages."""
    errs: list[str] = []
    for key, value in (labels or {}).items():
        m = TAG_KEY.match(key)
        if m is None:
            errs.append(f"invalid tag key: {go_quote(key)}")
        elif m.group(1) and len(m.group(1)) - 1 > 253:
            errs.append(f"invalid tag key: {go_quote(key)} (DNS prefix is too long)")
        elif len(m.group(2)) > DNS1123_LABEL_MAX:
            errs.append(f"invalid tag key: {go_quote(key)} (name is too long)")
        if not TAG_VALUE.match(value):
            errs.append(f"invalid tag value: {go_quote(value)}")
    return errs


_LABEL_FMT = r"[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?"
_QUALIFIED_FMT = r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
TAG_KEY = re.compile(rf"^({_LABEL_FMT}(?:\.{_LABEL_FMT})*/)?({_QUALIFIED_FMT})$")
TAG_VALUE = re.compile(rf"^({_QUALIFIED_FMT})?$")


def validate_export_to(namespace: str, export_to: list[str] | None, *, service_entry: bool = False, dr_with_selector: bool = False) -> list[str]:
    """Istio's validateExportTo: ``.``, ``*``, ``~`` (ServiceEntry only) or namespaces, no duplicates."""
    errs: list[str] = []
    if not export_to:
        return errs
    seen: list[str] = []
    for entry in export_to:
        key = namespace if entry == "." else entry
        if key in seen:
            if key != entry:
                errs.append(f"duplicate entries in exportTo: . and current namespace {namespace}")
            else:
                errs.append(f"duplicate entries in exportTo for entry {entry}")
            continue
        if service_entry and entry == "~":
            seen.append(key)
        elif key == "~":
            errs.append("exportTo ~ (none) is not allowed for Istio configuration objects")
        elif key in ("*", ".") or is_dns1123_label_any_case(key):
            seen.append(key)
        else:
            errs.append("only .,*, or a valid DNS 1123 label is allowed as exportTo entry")
    if dr_with_selector and seen:
        if namespace in seen:
            if len(seen) > 1:
                errs.append("destination rule with workload selector cannot have multiple entries in exportTo")
        else:
            errs.append("destination rule with workload selector cannot have exportTo beyond current namespace")
    if "*" in seen and len(export_to) > 1:
        errs.append("cannot have both public (*) and non-public exportTo values for a resource")
    if "~" in seen and len(export_to) > 1:
        errs.append("cannot export service entry to no one (~) and someone")
    return errs
