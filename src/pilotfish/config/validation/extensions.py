"""WasmPlugin and TrafficExtension validation: CRD rules, then Istio's ValidateWasmPlugin."""

from __future__ import annotations

from ..base import Resource
from ..errors import FieldError, FieldPath, Verdict, at, crd_error
from ..models.extensions import EnvValueSource, EnvVar, TrafficExtension, TrafficSelector, VmConfig, WasmConfig, WasmPlugin
from .attachment import attachment_errors, attachment_schema_errors
from .golang import GoURLError, parse_go_url
from .metadata import validate_reserved_annotations

_URL_SCHEMES = ("", "file", "http", "https", "oci")


# ---------------------------------------------------------------- CRD rules


def _cel_url_ok(url: str) -> bool:
    """``isURL(self) ? scheme in [...] : isURL("http://" + self) && ...`` from the CRD."""
    for candidate in (url, "http://" + url):
        try:
            scheme, _, _ = parse_go_url(candidate, request_uri=True)
        except GoURLError:
            continue
        return scheme in _URL_SCHEMES
    return False


def _vm_config_schema_errors(vm: VmConfig | None, path: FieldPath) -> list[str]:
    errs: list[str] = []
    seen: set[str] = set()
    for i, env in enumerate((vm.env if vm else None) or []):
        if env.name in seen:
            errs.append(crd_error((*path, "env", i), f'Duplicate value: map[string]interface {{}}{{"name":"{env.name}"}}'))
        seen.add(env.name)
        if env.value_from == EnvValueSource.HOST and env.value is not None:
            errs.append(crd_error((*path, "env", i), 'Invalid value: "object": value may only be set when valueFrom is INLINE'))
    return errs


def _match_schema_errors(match: list[TrafficSelector] | None) -> list[str]:
    errs: list[str] = []
    for i, sel in enumerate(match or []):
        seen: set[int] = set()
        for j, port in enumerate(sel.ports or []):
            if port.number in seen:
                errs.append(crd_error(("spec", "match", i, "ports", j), f'Duplicate value: map[string]interface {{}}{{"number":{port.number}}}'))
            seen.add(port.number)
    return errs


def _module_schema_errors(module: WasmPlugin | WasmConfig, path: FieldPath) -> list[str]:
    errs: list[str] = []
    if not _cel_url_ok(module.url):
        errs.append(crd_error((*path, "url"), 'Invalid value: "string": url must have schema one of [http, https, file, oci]'))
    return errs + _vm_config_schema_errors(module.vm_config, (*path, "vmConfig"))


def wasm_plugin_schema_errors(spec: WasmPlugin) -> list[str]:
    return attachment_schema_errors(spec) + _module_schema_errors(spec, ("spec",)) + _match_schema_errors(spec.match)


def traffic_extension_schema_errors(spec: TrafficExtension) -> list[str]:
    errs = attachment_schema_errors(spec)
    if (spec.wasm is None) == (spec.lua is None):
        errs.append(crd_error(("spec",), 'Invalid value: "object": exactly one of wasm or lua must be set'))
    if spec.wasm is not None:
        errs += _module_schema_errors(spec.wasm, ("spec", "wasm"))
    return errs + _match_schema_errors(spec.match)


# ---------------------------------------------------------------- Istio's webhook


def _strict_parse_url_error(url: str) -> str | None:
    """Istio's strictParseURL: a request URI, or one once ``http://`` is put in front."""
    try:
        scheme, _, _ = parse_go_url(url, request_uri=True)
        parse_go_url(url)
        return None if scheme in _URL_SCHEMES else f"url contains unsupported scheme: {scheme}"
    except GoURLError as first:
        try:
            parse_go_url("http://" + url, request_uri=True)
        except GoURLError:
            return f"failed to parse url: {first}"
        try:
            parse_go_url("http://" + url)
        except GoURLError as exc:
            return f"failed to strict parse url: {exc}"
    return None


def _url_errors(url: str) -> list[str]:
    if not url:
        return ["url field needs to be set"]
    err = _strict_parse_url_error(url)
    return [err] if err else []


def _sha_errors(sha: str | None) -> list[str]:
    if not sha:
        return []
    if len(sha) != 64:
        return ["sha256 field must be 64 characters long"]
    if any(c not in "0123456789abcdef" for c in sha):
        return ["sha256 field must match [a-f0-9]{64} pattern"]
    return []


def _env_error(env: EnvVar, seen: set[str]) -> list[str]:
    if env.name == "":
        return at(("name",), ["spec.vmConfig.env invalid"])
    if len(env.name) > 256:
        return at(("name",), ["env.name field must be less than 255 characters long"])
    if env.name in seen:
        return at(("name",), ["duplicate env"])
    seen.add(env.name)
    if env.value_from not in (None, EnvValueSource.INLINE) and env.value:
        return at(("value",), ["value may only be set when valueFrom is INLINE"])
    return []


def _vm_config_errors(vm: VmConfig | None) -> list[str]:
    """Istio's validateWasmPluginVMConfig: stops at the first bad env entry."""
    seen: set[str] = set()
    for i, env in enumerate((vm.env if vm else None) or []):
        if err := _env_error(env, seen):
            return at(("vmConfig", "env", i), err)
    return []


def _match_errors(match: list[TrafficSelector] | None) -> list[str]:
    for i, sel in enumerate(match or []):
        for j, port in enumerate(sel.ports or []):
            if not 0 < port.number <= 65535:
                return [FieldError(f"spec.Match[{i}].Ports[{j}] is out of range: {port.number}", ("spec", "match", i, "ports", j, "number"))]
    return []


def _module_errors(module: WasmPlugin | WasmConfig) -> list[str]:
    """The module's rules, at fields below the module."""
    errs = at(("url",), _url_errors(module.url)) + at(("sha256",), _sha_errors(module.sha256))
    if len(module.image_pull_secret or "") > 253:
        errs += at(("imagePullSecret",), ["imagePullSecret field must be less than 253 characters long"])
    if len(module.plugin_name or "") > 256:
        errs += at(("pluginName",), ["pluginName field must be less than 255 characters long"])
    return errs + _vm_config_errors(module.vm_config)


def wasm_plugin_errors(spec: WasmPlugin) -> tuple[list[str], list[str]]:
    """Istio's ValidateWasmPlugin: (errors, warnings), each at its field from the root."""
    errs, warnings = attachment_errors(spec)
    return errs + at(("spec",), _module_errors(spec)) + _match_errors(spec.match), warnings


def traffic_extension_errors(spec: TrafficExtension) -> tuple[list[str], list[str]]:
    """WasmPlugin's rules applied to TrafficExtension's placement and its Wasm module."""
    errs, warnings = attachment_errors(spec)
    if spec.wasm is not None:
        errs += at(("spec", "wasm"), _module_errors(spec.wasm))
    return errs + _match_errors(spec.match), warnings


def _validate(resource: Resource, schema: list[str], checked: tuple[list[str], list[str]]) -> Verdict:
    if schema:
        return Verdict(errors=schema)
    if meta := validate_reserved_annotations(resource.namespace, resource.name, resource.annotations):
        return Verdict(errors=meta)
    errs, warnings = checked
    return Verdict(errors=errs, warnings=warnings)


def validate_wasm_plugin(resource: Resource) -> Verdict:
    spec: WasmPlugin = resource.spec
    return _validate(resource, wasm_plugin_schema_errors(spec), wasm_plugin_errors(spec))


def validate_traffic_extension(resource: Resource) -> Verdict:
    spec: TrafficExtension = resource.spec
    return _validate(resource, traffic_extension_schema_errors(spec), traffic_extension_errors(spec))
