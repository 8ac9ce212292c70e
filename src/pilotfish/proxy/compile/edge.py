"""The connection manager's edge settings → runtime objects: path normalization, the
health_check filter, ``local_reply_config`` and access-log ``log_format``/``filter``.

What is not configured compiles to None on the HcmConfig, so requests pay nothing for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from envoy.extensions.filters.http.health_check.v3 import health_check_pb2  # noqa: F401  (registers the type)
from google.protobuf import json_format

from ..common.response_flags import FLAG_BITS
from ..filters.access_log import AccessLogSink, FormattedLog, format_default
from ..common.substitution_format import (
    NEED_ADDRESSES,
    NEED_RESPONSE,
    NEED_STREAM,
    Format,
    FormatError,
    ResponseHeaderCapture,
    text_format,
)
from ..common.substitution_format import json_format as json_template
from ..common.errors import ProxyConfigError
from ..filters.health_check import HealthCheckFilter
from ..router.local_reply_config import (
    LocalReplyRewriter,
    Mapper,
    Predicate,
    all_of,
    any_of,
    duration_filter,
    header_filter,
    never,
    not_health_check,
    response_flag_filter,
    status_filter,
)
from ..http.path_normalization import KEEP_UNCHANGED, PathNormalizer
from ..router.route_table import APPEND_OR_ADD, OVERWRITE_OR_ADD, HeaderMutation
from .matchers import header_matcher



def compile_path_normalizer(m: Any, path: str) -> PathNormalizer | None:
    """HCM normalize_path / merge_slashes / path_with_escaped_slashes_action, or None."""
    if m.HasField("path_normalization_options"):
        raise ProxyConfigError("not supported yet (normalize_path, merge_slashes and "
                               "path_with_escaped_slashes_action are)", f"{path}.path_normalization_options")
    escaped = m.path_with_escaped_slashes_action or KEEP_UNCHANGED  # IMPLEMENTATION_SPECIFIC_DEFAULT
    normalize = m.normalize_path.value
    if not normalize and not m.merge_slashes and escaped == KEEP_UNCHANGED:
        return None
    return PathNormalizer(normalize, m.merge_slashes, escaped)


def compile_health_check(cfg: Any, path: str, local_cluster: str) -> HealthCheckFilter:
    if not cfg.HasField("pass_through_mode"):
        raise ProxyConfigError("pass_through_mode is required", f"{path}.pass_through_mode")
    pass_through = cfg.pass_through_mode.value
    if pass_through and cfg.HasField("cache_time") and (cfg.cache_time.seconds or cfg.cache_time.nanos):
        raise ProxyConfigError("caching pass-through health check answers is not supported", f"{path}.cache_time")
    matchers = tuple(header_matcher(h, f"{path}.headers[{i}]") for i, h in enumerate(cfg.headers))
    minimums = tuple(sorted((name, pct.value) for name, pct in cfg.cluster_min_healthy_percentages.items()))
    for name, value in minimums:
        if not 0.0 <= value <= 100.0:
            raise ProxyConfigError("a percentage must be in [0, 100]",
                                   f"{path}.cluster_min_healthy_percentages[{name!r}]")
    return HealthCheckFilter(matchers, pass_through, minimums, local_cluster)


def chain(hooks: list[Callable[[Any], bool]]) -> Callable[[Any], bool] | None:
    """The HCM's pre-route hook: each in order until one answers."""
    if not hooks:
        return None
    if len(hooks) == 1:
        return hooks[0]
    first = tuple(hooks)
    return lambda stream: any(h(stream) for h in first)


# ---- substitution format strings ---------------------------------------------------------
def compile_format(sf: Any, path: str) -> Format:
    """envoy.config.core.v3.SubstitutionFormatString → Format."""
    if sf.formatters:
        raise ProxyConfigError("formatter extensions are not supported", f"{path}.formatters")
    if sf.HasField("json_format_options"):
        raise ProxyConfigError("json_format_options are not supported", f"{path}.json_format_options")
    which = sf.WhichOneof("format")
    omit = sf.omit_empty_values
    try:
        if which == "json_format":
            struct = json_format.MessageToDict(sf.json_format)
            return json_template(struct, omit, sf.content_type or "application/json")
        if which == "text_format_source":
            text = _data_source(sf.text_format_source, f"{path}.text_format_source").decode("utf-8", "replace")
            return text_format(text, omit, sf.content_type or "text/plain")
        if which == "text_format":
            return text_format(sf.text_format, omit, sf.content_type or "text/plain")
    except FormatError as exc:
        raise ProxyConfigError(str(exc), f"{path}.{which}") from None
    raise ProxyConfigError("one of text_format, text_format_source, json_format is required", path)


def _data_source(src: Any, path: str) -> bytes:
    which = src.WhichOneof("specifier")
    if which == "inline_string":
        return src.inline_string.encode()
    if which == "inline_bytes":
        return bytes(src.inline_bytes)
    if which == "filename":  # read when the config is loaded (data_sources.py), never here
        raise ProxyConfigError(f"{src.filename} was not read when the config was loaded", f"{path}.filename")
    raise ProxyConfigError("a data source needs inline_string, inline_bytes or filename", path)


# ---- access-log filters --------------------------------------------------------------------
def compile_filter(f: Any, path: str) -> tuple[Predicate, int]:
    """envoy.config.accesslog.v3.AccessLogFilter → (predicate over an entry, what it reads)."""
    which = f.WhichOneof("filter_specifier")
    if which == "status_code_filter":
        c = f.status_code_filter.comparison
        return status_filter(c.op, _runtime_value(c.value, f"{path}.status_code_filter.comparison.value")), 0
    if which == "duration_filter":
        c = f.duration_filter.comparison
        return duration_filter(c.op, _runtime_value(c.value, f"{path}.duration_filter.comparison.value")), 0
    if which == "header_filter":
        return header_filter(header_matcher(f.header_filter.header, f"{path}.header_filter.header")), NEED_STREAM
    if which == "response_flag_filter":
        names = tuple(f.response_flag_filter.flags)
        for i, n in enumerate(names):
            if n not in FLAG_BITS:
                raise ProxyConfigError(f"response flag {n!r} is never set by this proxy (it sets "
                                       f"{', '.join(FLAG_BITS)})", f"{path}.response_flag_filter.flags[{i}]")
        return response_flag_filter(names), 0
    if which == "not_health_check_filter":
        return not_health_check, NEED_STREAM
    if which == "traceable_filter":
        return never, 0  # no tracing: no request is traceable
    if which in ("and_filter", "or_filter"):
        sub = getattr(f, which).filters
        if len(sub) < 2:
            raise ProxyConfigError("at least two filters are required", f"{path}.{which}.filters")
        parts = [compile_filter(s, f"{path}.{which}.filters[{i}]") for i, s in enumerate(sub)]
        preds = tuple(p for p, _ in parts)
        needs = 0
        for _, n in parts:
            needs |= n
        return (all_of(preds) if which == "and_filter" else any_of(preds)), needs
    raise ProxyConfigError(f"{which or 'an empty'} filter is not supported", f"{path}.{which}" if which else path)


def _runtime_value(v: Any, path: str) -> int:
    """Envoy requires a runtime_key and reads it from the runtime, default_value when unset (no
    runtime layer of this proxy sets these keys)."""
    return v.default_value


# ---- local_reply_config --------------------------------------------------------------------
def compile_local_reply(m: Any, path: str) -> tuple[tuple[Mapper, ...], Format | None, int]:
    """HCM local_reply_config → (mappers, body format, what their formats and filters read)."""
    if not m.HasField("local_reply_config"):
        return (), None, 0
    lrc = m.local_reply_config
    lpath = f"{path}.local_reply_config"
    needs = 0
    mappers = []
    for i, rm in enumerate(lrc.mappers):
        mp = f"{lpath}.mappers[{i}]"
        if not rm.HasField("filter"):
            raise ProxyConfigError("a mapper needs a filter", f"{mp}.filter")
        pred, n = compile_filter(rm.filter, f"{mp}.filter")
        needs |= n
        status = None
        if rm.HasField("status_code"):
            status = rm.status_code.value
            if not 200 <= status < 600:
                raise ProxyConfigError("status_code must be in [200, 600)", f"{mp}.status_code")
        body = _data_source(rm.body, f"{mp}.body") if rm.HasField("body") else None
        fmt = None
        if rm.HasField("body_format_override"):
            fmt = compile_format(rm.body_format_override, f"{mp}.body_format_override")
            needs |= fmt.needs
        mappers.append(Mapper(pred, status, body, fmt, _headers_to_add(rm.headers_to_add, f"{mp}.headers_to_add")))
    body_format = None
    if lrc.HasField("body_format"):
        body_format = compile_format(lrc.body_format, f"{lpath}.body_format")
        needs |= body_format.needs
    return tuple(mappers), body_format, needs


def _headers_to_add(options: Any, path: str) -> tuple[HeaderMutation, ...]:
    add = []
    for i, opt in enumerate(options):
        key = opt.header.key.lower().encode()
        if not key or key.startswith(b":"):
            raise ProxyConfigError("a header to add needs a (non-pseudo) key", f"{path}[{i}].header.key")
        if "%" in opt.header.value:
            raise ProxyConfigError("header value formatters (%...%) are not supported yet", f"{path}[{i}].header.value")
        if opt.HasField("append"):
            action = APPEND_OR_ADD if opt.append.value else OVERWRITE_OR_ADD
        else:
            action = opt.append_action
        add.append((key, opt.header.value.encode(), action))
    return (HeaderMutation((), tuple(add)),) if add else ()


# ---- access logs -----------------------------------------------------------------------------
def compile_access_log(al: Any, cfg: Any, lp: str, sink: AccessLogSink) -> tuple[Any, int]:
    """One access_log entry: the sink itself (default format, no filter) or a FormattedLog."""
    fmt: Format | None = None
    if cfg.HasField("log_format"):
        fmt = compile_format(cfg.log_format, f"{lp}.typed_config.log_format")
    needs = fmt.needs if fmt is not None else 0
    pred = None
    if al.HasField("filter"):
        pred, n = compile_filter(al.filter, f"{lp}.filter")
        needs |= n
    if fmt is None and pred is None:
        return sink, 0
    formatter = fmt.format if fmt is not None else (lambda e: format_default(e[:15]))
    return FormattedLog(sink, formatter, pred), needs


def log_capture(needs: int) -> Callable[[Any], tuple] | None:
    """What an entry carries beyond the default fields: the stream, and the socket addresses."""
    if not needs:
        return None
    if needs & NEED_ADDRESSES:
        def with_addresses(stream: Any) -> tuple:
            t = stream.conn.transport
            if t is None:
                return (stream, None, None)
            return (stream, t.get_extra_info("peername"), t.get_extra_info("sockname"))
        return with_addresses
    return lambda stream: (stream, None, None)


def response_capture_hook(stream: Any) -> bool:
    """Pre-route: keep the response head of upstream answers for ``%RESP(X)%``."""
    stream.response_extras = (ResponseHeaderCapture(),)
    return False


def local_reply_entry(capture: Callable[[Any], tuple] | None) -> Callable[[Any, bytes], tuple]:
    """How a local reply builds the entry its formats and filters read."""
    def entry(stream: Any, body: bytes) -> tuple:
        e = stream._log_entry()
        if capture is None:
            e += (stream, None, None)
        return e + (body.decode("utf-8", "replace"),)
    return entry


def rewriter(mappers: tuple[Mapper, ...], body_format: Format | None, capture: Any,
             log_needs: int) -> LocalReplyRewriter | None:
    """The HCM's local-reply rewriter, when local_reply_config or a log format needs one."""
    keep_headers = bool(log_needs & NEED_RESPONSE)
    if not mappers and body_format is None and not log_needs & NEED_STREAM:
        return None
    return LocalReplyRewriter(mappers, body_format, local_reply_entry(capture), keep_headers)
