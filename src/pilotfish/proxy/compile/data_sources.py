"""DataSource files read when the config is loaded, so that compiling it does no I/O.

Envoy reads a DataSource's ``filename`` when it loads the config holding it. Here the loading
step (bootstrap_file.parse_bootstrap, and xDS decoding for each resource) calls
``resolve_data_sources``: every DataSource the proxy reads (a direct response body, a local
reply body, a log format's text_format_source) with a ``filename`` gets the file's bytes as
``inline_bytes`` instead, and an unreadable file is an error naming the field. The translation
in compile/ then only ever sees inline data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from google.protobuf import any_pb2, message, symbol_database

from ..common.errors import ProxyConfigError

#: (message type, field) of the DataSources the proxy reads; others (TLS material of fields the
#: proxy ignores) are left as they are.
READ: frozenset[tuple[str, str]] = frozenset({
    ("envoy.config.route.v3.DirectResponseAction", "body"),
    ("envoy.extensions.filters.network.http_connection_manager.v3.ResponseMapper", "body"),
    ("envoy.config.core.v3.SubstitutionFormatString", "text_format_source"),
})


def resolve_data_sources(msg: message.Message, path: str) -> list[ProxyConfigError]:
    """Inline the files of ``msg``'s DataSources (in place); the errors of unreadable ones."""
    errors: list[ProxyConfigError] = []
    _walk(msg, path, errors)
    return errors


def _walk(msg: message.Message, path: str, errors: list[ProxyConfigError]) -> bool:
    """Resolve below ``msg``; True when something changed (an Any holding it is then repacked)."""
    changed = False
    type_name = msg.DESCRIPTOR.full_name
    for fd, value in msg.ListFields():
        if fd.type != fd.TYPE_MESSAGE:
            continue
        fpath = f"{path}.{fd.name}" if path else fd.name
        if fd.message_type.GetOptions().map_entry:
            if fd.message_type.fields_by_name["value"].type == fd.TYPE_MESSAGE:
                for key, item in value.items():
                    changed |= _item(item, f"{fpath}[{key!r}]", errors)
        elif fd.is_repeated:
            for i, item in enumerate(value):
                changed |= _item(item, f"{fpath}[{i}]", errors)
        elif (type_name, fd.name) in READ:
            changed |= _inline(value, fpath, errors)
        else:
            changed |= _item(value, fpath, errors)
    return changed


def _item(value: message.Message, path: str, errors: list[ProxyConfigError]) -> bool:
    if isinstance(value, any_pb2.Any):
        inner = _unpack(value)
        if inner is not None and _walk(inner, path, errors):
            value.Pack(inner, type_url_prefix=value.type_url.rsplit("/", 1)[0] + "/")
            return True
        return False
    return _walk(value, path, errors)


def _unpack(value: any_pb2.Any) -> message.Message | None:
    """The message in an Any, when its type is known (an unknown one is the subset check's)."""
    try:
        cls = symbol_database.Default().GetSymbol(value.type_url.rsplit("/", 1)[-1])
    except KeyError:
        return None
    inner = cls()
    return inner if value.Unpack(inner) else None


def _inline(src: Any, path: str, errors: list[ProxyConfigError]) -> bool:
    if src.WhichOneof("specifier") != "filename":
        return False
    try:
        data = Path(src.filename).read_bytes()
    except OSError as exc:
        errors.append(ProxyConfigError(f"cannot read {src.filename}: {exc.strerror}", f"{path}.filename"))
        return False
    src.inline_bytes = data
    return True
