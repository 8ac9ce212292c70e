"""Hypothesis strategies derived from the Envoy protobuf descriptors (structure-aware config fuzzing).

``messages(descriptor)`` walks a message descriptor recursively, to a depth bound, and draws a
value per field type: scalars (with edge values), enums (known numbers and an unknown one),
oneofs (at most one member stays set), repeated and map fields, well-known types kept valid (Duration,
Timestamp, Struct), and ``Any`` filled with the extension types the proxy supports where the
field holds one (compile/subset.py ``EXTENSIONS``; Istio's types as TypedStruct). Fields of message
types in the supported subset (compile/subset.py ``FIELDS``) are mostly drawn from that subset, with
an occasional field outside it, so most examples reach the compiler instead of stopping at
the first unsupported field. Nothing here knows any field by name beyond those tables.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import any_pb2, descriptor, message, message_factory, struct_pb2, symbol_database
from google.protobuf.descriptor import FieldDescriptor as FD
from hypothesis import strategies as st
from xds.type.v3 import typed_struct_pb2

from pilotfish.proxy.compile import bootstrap_file as _bootstrap  # registers the subset's descriptors
from pilotfish.proxy.compile.subset import EXTENSIONS, FIELDS, OK, WARN

_DB = symbol_database.Default()
_ = _bootstrap

#: Strings that mean something somewhere in a config (names that refer to each other, paths,
#: addresses, regexes, header names), drawn more often than arbitrary text.
_STRINGS = ["", "c0", "c1", "l0", "r0", "*", "/", "/a", "/a/", "a.example", "*.example", "x-h",
            ":authority", "127.0.0.1", "0.0.0.0", "::1", "localhost", ".*", "(", "[a-z]+", "^/a/(.*)$",
            "\\1", "websocket", "CONNECT", "ROUND_ROBIN", "1s", "envoy.filters.http.router", "\x00", "é"]
_INT32 = [0, 1, -1, 2, 100, 503, 2**31 - 1, -2**31]
_UINT32 = [0, 1, 2, 100, 65535, 65536, 2**32 - 1]
_INT64 = [0, 1, -1, 2**63 - 1, -2**63]
_UINT64 = [0, 1, 2**64 - 1]

_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    FD.TYPE_BOOL: st.booleans(),
    FD.TYPE_STRING: st.one_of(st.sampled_from(_STRINGS), st.text(max_size=12)),
    FD.TYPE_BYTES: st.binary(max_size=12),
    FD.TYPE_DOUBLE: st.one_of(st.sampled_from([0.0, 1.0, -1.0, 0.5, 100.0]), st.floats()),
    FD.TYPE_FLOAT: st.one_of(st.sampled_from([0.0, 1.0, -1.0, 0.5]), st.floats(width=32)),
}
for _t in (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32):
    _SCALARS[_t] = st.one_of(st.sampled_from(_INT32), st.integers(-2**31, 2**31 - 1))
for _t in (FD.TYPE_UINT32, FD.TYPE_FIXED32):
    _SCALARS[_t] = st.one_of(st.sampled_from(_UINT32), st.integers(0, 2**32 - 1))
for _t in (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64):
    _SCALARS[_t] = st.one_of(st.sampled_from(_INT64), st.integers(-2**63, 2**63 - 1))
for _t in (FD.TYPE_UINT64, FD.TYPE_FIXED64):
    _SCALARS[_t] = st.one_of(st.sampled_from(_UINT64), st.integers(0, 2**64 - 1))

_JSON = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False)
                     | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                     max_leaves=6)


def _class(desc: descriptor.Descriptor) -> type[message.Message]:
    return message_factory.GetMessageClass(desc)


def _find(type_name: str) -> descriptor.Descriptor | None:
    try:
        return _DB.pool.FindMessageTypeByName(type_name)
    except KeyError:
        return None


def _scalar(fd: FD) -> st.SearchStrategy[Any]:
    if fd.type == FD.TYPE_ENUM:
        numbers = [v.number for v in fd.enum_type.values]
        # proto3 enums are open: an unknown number parses and must be refused or ignored
        return st.one_of(st.sampled_from(numbers), st.just(max(numbers) + 7))
    return _SCALARS[fd.type]


@st.composite
def _duration(draw: st.DrawFn, cls: type[message.Message]) -> message.Message:
    seconds = draw(st.one_of(st.integers(0, 10), st.integers(-10, 315_576_000_000)))
    nanos = draw(st.integers(0, 999_999_999)) * (-1 if seconds < 0 else 1)
    return cls(seconds=seconds, nanos=nanos)


@st.composite
def _timestamp(draw: st.DrawFn, cls: type[message.Message]) -> message.Message:
    return cls(seconds=draw(st.integers(0, 253_402_300_799)), nanos=draw(st.integers(0, 999_999_999)))


@st.composite
def _struct(draw: st.DrawFn, cls: type[message.Message]) -> message.Message:
    msg = cls()
    msg.update(draw(st.dictionaries(st.text(max_size=6), _JSON, max_size=3)))
    return msg


def _any_of(kind: str | None, depth: int) -> st.SearchStrategy[any_pb2.Any]:
    """An Any holding one of the extension types supported for ``kind`` (any kind when None)."""
    names = sorted(EXTENSIONS[kind]) if kind in EXTENSIONS else sorted(set().union(*EXTENSIONS.values()))

    @st.composite
    def draw_any(draw: st.DrawFn) -> any_pb2.Any:
        name = draw(st.sampled_from(names))
        out = any_pb2.Any()
        desc = _find(name)
        if desc is None:  # Istio's own types travel as TypedStruct
            ts = typed_struct_pb2.TypedStruct(type_url=f"type.googleapis.com/{name}")
            ts.value.update(draw(st.dictionaries(st.text(max_size=6), _JSON, max_size=2)))
            out.Pack(ts)
        else:
            out.Pack(draw(messages(desc, depth)))
        return out

    return draw_any()


def _chosen_fields(desc: descriptor.Descriptor, draw: st.DrawFn) -> list[tuple[FD, str | None]]:
    """The fields to set, each with its rule: None (implemented), WARN, or for an Any the
    extension kind it holds."""
    rules = FIELDS.get(desc.full_name)
    fields = list(desc.fields)
    if rules is None:
        return [(fd, None) for fd in fields if draw(st.integers(0, 2)) == 0]
    chosen = [(fd, None if rules[fd.name] == OK else rules[fd.name])
              for fd in fields if fd.name in rules and draw(st.integers(0, 2)) == 0]
    others = [fd for fd in fields if fd.name not in rules]
    if others and draw(st.integers(0, 19)) == 0:  # now and then a field outside the subset
        chosen.append((draw(st.sampled_from(others)), None))
    return chosen


def messages(desc: descriptor.Descriptor, depth: int = 6) -> st.SearchStrategy[message.Message]:
    """A strategy for messages of ``desc``; below ``depth`` nested messages are left empty."""
    cls = _class(desc)
    name = desc.full_name
    if name == "google.protobuf.Duration":
        return _duration(cls)
    if name == "google.protobuf.Timestamp":
        return _timestamp(cls)
    if name == "google.protobuf.Struct":
        return _struct(cls)
    if name in ("google.protobuf.Value", "google.protobuf.ListValue"):
        return _JSON.map(lambda v: _json_value(cls, v))
    if name == "google.protobuf.Any":
        return _any_of(None, depth - 1) if depth > 0 else st.just(any_pb2.Any())
    if depth <= 0:
        return st.just(cls())

    @st.composite
    def draw_message(draw: st.DrawFn) -> message.Message:
        msg = cls()
        for fd, kind in _chosen_fields(desc, draw):
            _set_field(draw, msg, fd, kind, depth)
        return msg

    return draw_message()


def _json_value(cls: type[message.Message], v: Any) -> message.Message:
    value = struct_pb2.Value()
    value.list_value.extend([v]) if cls is struct_pb2.ListValue else _set_value(value, v)
    return value.list_value if cls is struct_pb2.ListValue else value


def _set_value(value: struct_pb2.Value, v: Any) -> None:
    s = struct_pb2.Struct()
    s.update({"v": v})
    value.CopyFrom(s.fields["v"])


def _value(fd: FD, kind: str | None, depth: int) -> st.SearchStrategy[Any]:
    if fd.type != FD.TYPE_MESSAGE:
        return _scalar(fd)
    if fd.message_type.full_name == "google.protobuf.Any":
        return _any_of(kind, depth - 1)
    return messages(fd.message_type, depth - 1)


def _set_field(draw: st.DrawFn, msg: message.Message, fd: FD, kind: str | None, depth: int) -> None:
    if kind == WARN:  # ignored with a warning: its insides matter little, keep it shallow
        kind, depth = None, min(depth, 2)
    target = getattr(msg, fd.name)
    if fd.type == FD.TYPE_MESSAGE and fd.message_type.GetOptions().map_entry:
        key_fd = fd.message_type.fields_by_name["key"]
        val_fd = fd.message_type.fields_by_name["value"]
        for _ in range(draw(st.integers(0, 2))):
            key = draw(_scalar(key_fd))
            value = draw(_value(val_fd, kind, depth))
            if val_fd.type == FD.TYPE_MESSAGE:
                target[key].CopyFrom(value)
            else:
                target[key] = value
    elif fd.is_repeated:
        items = [draw(_value(fd, kind, depth)) for _ in range(draw(st.integers(0, 3)))]
        if fd.type == FD.TYPE_MESSAGE:
            for item in items:
                target.add().CopyFrom(item)
        else:
            target.extend(items)
    elif fd.type == FD.TYPE_MESSAGE:
        target.CopyFrom(draw(_value(fd, kind, depth)))
        target.SetInParent()
    else:
        setattr(msg, fd.name, draw(_value(fd, kind, depth)))
