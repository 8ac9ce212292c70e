"""Read a YAML/JSON document into a protobuf message as Envoy does, listing every error.

Envoy loads config with ``MessageUtil::loadFromJson``: protobuf's JSON parser with
``case_insensitive_enum_parsing`` and, since protobuf's JSON rewrite, ``allow_legacy_syntax``
(always on in ``JsonStringToMessage``). Python's ``json_format`` is strict, so ``normalize``
first rewrites what that parser accepts into the canonical form:

- enum names in any case (``codec_type: auto``);
- a single value where a repeated field is expected (it becomes a one-element list), nested
  lists flattened, ``null`` list elements as the element's default;
- well-known types written as plain messages: Duration and Timestamp as ``{seconds, nanos}``,
  wrappers as ``{value: ...}``, ListValue as ``{values: [...]}``, FieldMask as ``{paths: [...]}``;
- booleans written as strings (``"true"``, ``"yes"``, ``"1"``...: abseil's ``SimpleAtob``);
- an empty ``{}`` for an Any;
- a field given twice (``lb_policy`` and ``lbPolicy``): the last one wins (a list: both kept).

``parse`` then fills the message; where a value is still refused, it descends field by field
so that every bad field is reported with its path, not only the first.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor, json_format, message, symbol_database
from google.protobuf import duration_pb2, timestamp_pb2

from ..common.errors import ProxyConfigError

_FD = descriptor.FieldDescriptor
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})
_WRAPPERS = frozenset(f"google.protobuf.{n}Value" for n in
                      ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes"))
_TIME_TYPES = {"google.protobuf.Duration": duration_pb2.Duration,
               "google.protobuf.Timestamp": timestamp_pb2.Timestamp}
#: Parsed whole by json_format: their JSON forms are free-form.
_OPAQUE = frozenset({"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.Empty"})
_FIELD_MASK = "google.protobuf.FieldMask"
_ANY = "google.protobuf.Any"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _message_class(full_name: str) -> type[message.Message] | None:
    try:
        return symbol_database.Default().GetSymbol(full_name)  # type: ignore[no-any-return]
    except KeyError:
        return None


def normalize(doc: Any, desc: descriptor.Descriptor, path: str, errors: list[ProxyConfigError]) -> Any:
    """``doc`` (a dict for ``desc``) in json_format's canonical form; unknown fields are dropped
    and reported in ``errors``."""
    if not isinstance(doc, dict):
        return doc
    by_name = {f.name: f for f in desc.fields}
    by_json = {f.json_name: f for f in desc.fields}
    out: dict[str, Any] = {}
    for key, value in doc.items():
        f = (by_name.get(key) or by_json.get(key)) if isinstance(key, str) else None
        if f is None:
            errors.append(ProxyConfigError(f"unknown field {key!r} of {desc.full_name}", _join(path, str(key))))
            continue
        fpath = _join(path, f.name)
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            vf = f.message_type.fields_by_name["value"]
            out[f.name] = ({k: _value(vf, v, f"{fpath}[{k!r}]", errors) for k, v in value.items()}
                           if isinstance(value, dict) else value)
        elif f.is_repeated:
            if value is None:
                out.pop(f.name, None)
                continue
            items = [_value(f, v, f"{fpath}[{i}]", errors) for i, v in enumerate(_flatten(f, value))]
            out[f.name] = out.get(f.name, []) + items if isinstance(out.get(f.name), list) else items
        else:
            out[f.name] = _value(f, value, fpath, errors)
    return out


def _flatten(f: descriptor.FieldDescriptor, value: Any) -> list[Any]:
    if not isinstance(value, list):
        return [value]  # one element in place of a list
    items: list[Any] = []
    for v in value:
        if isinstance(v, list) and (f.message_type is None or f.message_type.full_name not in _OPAQUE):
            items.extend(_flatten(f, v))
        elif v is None:
            items.append(_default(f))
        else:
            items.append(v)
    return items


def _default(f: descriptor.FieldDescriptor) -> Any:
    if f.type == _FD.TYPE_MESSAGE:
        return {}
    if f.type == _FD.TYPE_BOOL:
        return False
    if f.type in (_FD.TYPE_STRING, _FD.TYPE_BYTES):
        return ""
    return 0


def _value(f: descriptor.FieldDescriptor, value: Any, path: str, errors: list[ProxyConfigError]) -> Any:
    if value is None:
        return None
    if f.type == _FD.TYPE_ENUM:
        if isinstance(value, str) and value not in f.enum_type.values_by_name:
            upper = value.upper()
            if upper in f.enum_type.values_by_name:
                return upper
        return value
    if f.type == _FD.TYPE_BOOL:
        return _bool(value)
    if f.type != _FD.TYPE_MESSAGE:
        return value
    return _message_value(f.message_type, value, path, errors)


def _bool(value: Any) -> Any:
    if isinstance(value, str):
        lower = value.lower()
        if lower in _TRUE:
            return True
        if lower in _FALSE:
            return False
    return value


def _message_value(mt: descriptor.Descriptor, value: Any, path: str, errors: list[ProxyConfigError]) -> Any:
    name = mt.full_name
    if name in _OPAQUE:
        return value
    if name in _WRAPPERS:
        inner = value.get("value") if isinstance(value, dict) and set(value) <= {"value"} else value
        return _value(mt.fields_by_name["value"], inner, path, errors)
    if name in _TIME_TYPES:
        if isinstance(value, dict):
            return _time_from_fields(_TIME_TYPES[name], value, path, errors)
        return value
    if name == _FIELD_MASK:
        if isinstance(value, dict) and set(value) <= {"paths"}:
            paths = value.get("paths") or []
            return ",".join(_camel(str(p)) for p in (paths if isinstance(paths, list) else [paths]))
        return value
    if name == "google.protobuf.ListValue":
        if isinstance(value, dict) and set(value) <= {"values"}:
            return value.get("values") or []
        return value
    if name == _ANY:
        return _any(value, path, errors)
    return normalize(value, mt, path, errors)


def _camel(path: str) -> str:
    """A FieldMask path in its JSON spelling (``a_b.c`` → ``aB.c``)."""
    return ".".join(part.split("_")[0] + "".join(w.capitalize() for w in part.split("_")[1:])
                    for part in path.split("."))


def _time_from_fields(cls: type[message.Message], value: dict[str, Any], path: str,
                      errors: list[ProxyConfigError]) -> Any:
    """A Duration or Timestamp written as ``{seconds: N, nanos: M}``, in its string form."""
    msg = cls()
    bad: list[ProxyConfigError] = []
    fields = normalize(value, msg.DESCRIPTOR, path, bad)
    if not bad:
        try:
            _set_fields(msg, fields)
            return msg.ToJsonString()  # type: ignore[attr-defined]
        except (ValueError, TypeError, OverflowError) as exc:
            bad.append(ProxyConfigError(f"invalid {cls.DESCRIPTOR.name}: {exc}", path))
    errors.extend(bad)
    return None


def _set_fields(msg: message.Message, fields: dict[str, Any]) -> None:
    for key, v in fields.items():
        if isinstance(v, bool) or not isinstance(v, (int, str, float)):
            raise ValueError(f"{key} must be an integer, got {v!r}")
        if isinstance(v, float) and not v.is_integer():
            raise ValueError(f"{key} must be an integer, got {v!r}")
        setattr(msg, key, int(v))


def _any(value: Any, path: str, errors: list[ProxyConfigError]) -> Any:
    if not isinstance(value, dict):
        return value
    if not value:
        return None  # an empty Any is accepted (left unset)
    type_url = value.get("@type")
    if not isinstance(type_url, str):
        errors.append(ProxyConfigError("an Any needs an @type", path))
        return None
    cls = _message_class(type_url.rsplit("/", 1)[-1])
    if cls is None:
        errors.append(ProxyConfigError(f"unknown @type {type_url.rsplit('/', 1)[-1]!r}", path))
        return None
    mt = cls.DESCRIPTOR
    body = {k: v for k, v in value.items() if k != "@type"}
    if mt.full_name in _OPAQUE or mt.full_name in _WRAPPERS or mt.full_name in _TIME_TYPES \
            or mt.full_name in ("google.protobuf.ListValue", _ANY, _FIELD_MASK):
        if set(body) <= {"value"} and "value" in body:
            return {"@type": type_url, "value": _message_value(mt, body["value"], path, errors)}
        return value
    return {"@type": type_url, **normalize(body, mt, path, errors)}


def parse(doc: dict[str, Any], msg: message.Message, path: str = "") -> list[ProxyConfigError]:
    """Fill ``msg`` from ``doc`` with Envoy's leniency; every error found, each with its path.
    Fields in error are left unset; the rest is filled."""
    errors: list[ProxyConfigError] = []
    canonical = normalize(doc, msg.DESCRIPTOR, path, errors)
    _fill(msg, canonical, path, errors)
    return errors


def _fill(msg: message.Message, doc: Any, path: str, errors: list[ProxyConfigError]) -> None:
    """ParseDict, and where it fails, one field (one element, one map entry) at a time."""
    try:
        json_format.ParseDict(doc, msg)
        return
    except (json_format.ParseError, TypeError, ValueError, AttributeError):
        msg.Clear()
    if not isinstance(doc, dict):
        errors.append(ProxyConfigError(f"expected an object for {msg.DESCRIPTOR.full_name}, got {_kind(doc)}", path))
        return
    desc = msg.DESCRIPTOR
    for key, value in doc.items():
        fpath = _join(path, key)
        f = desc.fields_by_name[key]
        probe = type(msg)()
        try:
            json_format.ParseDict({key: value}, probe)
        except (json_format.ParseError, TypeError, ValueError, AttributeError) as exc:
            _fill_field(msg, f, value, fpath, errors, exc)
        else:
            msg.MergeFrom(probe)


def _fill_field(msg: message.Message, f: descriptor.FieldDescriptor, value: Any, path: str,
                errors: list[ProxyConfigError], exc: Exception) -> None:
    mt = f.message_type
    nested = mt is not None and mt.full_name not in _OPAQUE and mt.full_name not in _WRAPPERS \
        and mt.full_name not in _TIME_TYPES and mt.full_name not in ("google.protobuf.ListValue", _FIELD_MASK)
    is_map = nested and mt.GetOptions().map_entry
    if is_map and isinstance(value, dict):
        vf = mt.fields_by_name["value"]
        target = getattr(msg, f.name)
        for k, v in value.items():
            probe = type(msg)()
            try:
                json_format.ParseDict({f.name: {k: v}}, probe)
            except (json_format.ParseError, TypeError, ValueError, AttributeError) as err:
                if vf.message_type is not None and isinstance(v, dict) and vf.message_type.full_name not in _OPAQUE:
                    _fill_one(target[k], v, f"{path}[{k!r}]", errors)
                else:
                    errors.append(_error(err, f"{path}[{k!r}]"))
            else:
                msg.MergeFrom(probe)
        return
    if nested and f.is_repeated and not is_map and isinstance(value, list):  # (a map given a list: an error)
        for i, item in enumerate(value):
            sub = getattr(msg, f.name).add()
            _fill_one(sub, item, f"{path}[{i}]", errors)
        return
    if nested and not f.is_repeated and isinstance(value, dict):
        _fill_one(getattr(msg, f.name), value, path, errors)
        return
    errors.append(_error(exc, path))


def _fill_one(sub: message.Message, value: Any, path: str, errors: list[ProxyConfigError]) -> None:
    if sub.DESCRIPTOR.full_name == _ANY and isinstance(value, dict):
        type_url = value.get("@type", "")
        cls = _message_class(str(type_url).rsplit("/", 1)[-1])
        if cls is None:
            errors.append(ProxyConfigError(f"unknown @type {type_url!r}", path))
            return
        inner = cls()
        _fill(inner, {k: v for k, v in value.items() if k != "@type"}, path, errors)
        sub.Pack(inner, type_url_prefix=str(type_url).rsplit("/", 1)[0] + "/" if "/" in str(type_url) else "")
        return
    _fill(sub, value, path, errors)


def _error(exc: Exception, path: str) -> ProxyConfigError:
    """json_format's message without its own chain of "Failed to parse x field:" prefixes."""
    text = str(exc)
    while text.startswith("Failed to parse ") and " field: " in text:
        text = text.split(" field: ", 1)[1]
    head, sep, where = text.rstrip(".").rpartition(" at ")
    if sep and " " not in where:  # json_format's own "at Type.field" suffix
        text = head
    return ProxyConfigError(text.rstrip("."), path)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(type(value),
                                                                                       type(value).__name__)
