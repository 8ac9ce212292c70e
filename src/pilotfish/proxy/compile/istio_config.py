"""Istio's proxy extension configs, registered as protobuf types, and TypedStruct unwrapping.

Istio's sidecar listeners carry two HTTP filters that are not part of Envoy's API:
``istio.metadata_exchange`` (``io.istio.http.peer_metadata.Config``) and ``istio.stats``
(``stats.PluginConfig``). xds-protos has no descriptors for them, so they are declared here
(field numbers as in istio/proxy) and added to the default pool on import: a bootstrap may name
them directly as ``@type`` or, as Istio's control plane does, inside a ``udpa.type.v1.TypedStruct``
(or ``xds.type.v3.TypedStruct``) whose ``value`` holds the fields as a Struct.
"""

from __future__ import annotations

from google.protobuf import (
    any_pb2,
    descriptor_pb2,
    descriptor_pool,
    json_format,
    message,
    message_factory,
    symbol_database,
)

from ..common.errors import ProxyConfigError

STATS_TYPE = "stats.PluginConfig"
PEER_METADATA_TYPE = "io.istio.http.peer_metadata.Config"
TYPED_STRUCT_TYPES = frozenset({"udpa.type.v1.TypedStruct", "xds.type.v3.TypedStruct"})

_F = descriptor_pb2.FieldDescriptorProto


def _field(msg: descriptor_pb2.DescriptorProto, name: str, number: int, kind: int,
           type_name: str = "", repeated: bool = False, oneof: int | None = None) -> None:
    f = msg.field.add(name=name, number=number, type=kind,
                      label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
    if type_name:
        f.type_name = type_name
    if oneof is not None:
        f.oneof_index = oneof


def _stats_file() -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto(name="pilotfish/istio/stats_config.proto", package="stats",
                                            syntax="proto3", dependency=["google/protobuf/duration.proto"])
    mc = fd.message_type.add(name="MetricConfig")
    entry = mc.nested_type.add(name="DimensionsEntry")
    entry.options.map_entry = True
    _field(entry, "key", 1, _F.TYPE_STRING)
    _field(entry, "value", 2, _F.TYPE_STRING)
    _field(mc, "dimensions", 1, _F.TYPE_MESSAGE, ".stats.MetricConfig.DimensionsEntry", repeated=True)
    _field(mc, "name", 2, _F.TYPE_STRING)
    _field(mc, "tags_to_remove", 3, _F.TYPE_STRING, repeated=True)
    _field(mc, "match", 4, _F.TYPE_STRING)
    _field(mc, "drop", 5, _F.TYPE_BOOL)
    mt = fd.enum_type.add(name="MetricType")
    for i, n in enumerate(("COUNTER", "GAUGE", "HISTOGRAM")):
        mt.value.add(name=n, number=i)
    rep = fd.enum_type.add(name="Reporter")
    rep.value.add(name="UNSPECIFIED", number=0)
    rep.value.add(name="SERVER_GATEWAY", number=1)
    md = fd.message_type.add(name="MetricDefinition")
    _field(md, "name", 1, _F.TYPE_STRING)
    _field(md, "value", 2, _F.TYPE_STRING)
    _field(md, "type", 3, _F.TYPE_ENUM, ".stats.MetricType")
    pc = fd.message_type.add(name="PluginConfig")
    _field(pc, "disable_host_header_fallback", 6, _F.TYPE_BOOL)
    _field(pc, "tcp_reporting_duration", 7, _F.TYPE_MESSAGE, ".google.protobuf.Duration")
    _field(pc, "metrics", 8, _F.TYPE_MESSAGE, ".stats.MetricConfig", repeated=True)
    _field(pc, "definitions", 9, _F.TYPE_MESSAGE, ".stats.MetricDefinition", repeated=True)
    _field(pc, "reporter", 10, _F.TYPE_ENUM, ".stats.Reporter")
    _field(pc, "rotation_interval", 11, _F.TYPE_MESSAGE, ".google.protobuf.Duration")
    _field(pc, "graceful_deletion_interval", 12, _F.TYPE_MESSAGE, ".google.protobuf.Duration")
    return fd


def _peer_metadata_file() -> descriptor_pb2.FileDescriptorProto:
    pkg = "io.istio.http.peer_metadata"
    fd = descriptor_pb2.FileDescriptorProto(name="pilotfish/istio/peer_metadata_config.proto", package=pkg,
                                            syntax="proto3")
    cfg = fd.message_type.add(name="Config")
    cfg.nested_type.add(name="Baggage")
    cfg.nested_type.add(name="WorkloadDiscovery")
    ih = cfg.nested_type.add(name="IstioHeaders")
    _field(ih, "skip_external_clusters", 1, _F.TYPE_BOOL)
    dm = cfg.nested_type.add(name="DiscoveryMethod")
    dm.oneof_decl.add(name="method_specifier")
    _field(dm, "baggage", 1, _F.TYPE_MESSAGE, f".{pkg}.Config.Baggage", oneof=0)
    _field(dm, "workload_discovery", 2, _F.TYPE_MESSAGE, f".{pkg}.Config.WorkloadDiscovery", oneof=0)
    _field(dm, "istio_headers", 3, _F.TYPE_MESSAGE, f".{pkg}.Config.IstioHeaders", oneof=0)
    pm = cfg.nested_type.add(name="PropagationMethod")
    pm.oneof_decl.add(name="method_specifier")
    _field(pm, "istio_headers", 1, _F.TYPE_MESSAGE, f".{pkg}.Config.IstioHeaders", oneof=0)
    _field(cfg, "downstream_discovery", 1, _F.TYPE_MESSAGE, f".{pkg}.Config.DiscoveryMethod", repeated=True)
    _field(cfg, "upstream_discovery", 2, _F.TYPE_MESSAGE, f".{pkg}.Config.DiscoveryMethod", repeated=True)
    _field(cfg, "downstream_propagation", 3, _F.TYPE_MESSAGE, f".{pkg}.Config.PropagationMethod", repeated=True)
    _field(cfg, "upstream_propagation", 4, _F.TYPE_MESSAGE, f".{pkg}.Config.PropagationMethod", repeated=True)
    _field(cfg, "shared_with_upstream", 5, _F.TYPE_BOOL)
    _field(cfg, "additional_labels", 6, _F.TYPE_STRING, repeated=True)
    return fd


def _register() -> None:
    from google.protobuf import duration_pb2  # noqa: F401  (the dependency must be in the pool)

    pool = descriptor_pool.Default()
    db = symbol_database.Default()
    for build in (_stats_file, _peer_metadata_file):
        fd = build()
        try:
            pool.FindFileByName(fd.name)
        except KeyError:
            pool.Add(fd)
        for msg in fd.message_type:
            db.RegisterMessage(message_class(f"{fd.package}.{msg.name}"))



def message_class(type_name: str) -> type[message.Message]:
    return message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(type_name))


_register()


def effective_type_name(value: any_pb2.Any) -> str:
    """The type a typed_config stands for, looking through a TypedStruct wrapper."""
    type_name = value.type_url.rsplit("/", 1)[-1]
    if type_name in TYPED_STRUCT_TYPES:
        ts = _typed_struct(type_name)()
        value.Unpack(ts)
        return ts.type_url.rsplit("/", 1)[-1]
    return type_name


def unpack_typed_struct(value: any_pb2.Any, path: str) -> tuple[str, message.Message]:
    """(inner type name, message) for a TypedStruct holding a message type the pool knows."""
    ts = _typed_struct(value.type_url.rsplit("/", 1)[-1])()
    value.Unpack(ts)
    inner = ts.type_url.rsplit("/", 1)[-1]
    try:
        cls = message_class(inner)
    except KeyError:
        raise ProxyConfigError(f"TypedStruct names an unknown type {inner!r}", f"{path}.type_url") from None
    msg = cls()
    try:
        json_format.ParseDict(json_format.MessageToDict(ts.value, preserving_proto_field_name=True), msg)
    except json_format.ParseError as exc:
        raise ProxyConfigError(f"invalid {inner}: {exc}", f"{path}.value") from None
    return inner, msg


def _typed_struct(type_name: str) -> type[message.Message]:
    if type_name == "udpa.type.v1.TypedStruct":
        from udpa.type.v1 import typed_struct_pb2
    else:
        from xds.type.v3 import typed_struct_pb2  # type: ignore[no-redef]
    return typed_struct_pb2.TypedStruct
