"""/config_dump with Envoy's query parameters: ``resource``, ``mask`` and ``include_eds``.

As Envoy's ConfigDumpHandler: without ``resource`` every top-level dump (bootstrap, clusters,
endpoints with ``include_eds``, listeners, routes) is trimmed to ``mask``; with ``resource``
the elements of that repeated field are the configs, each trimmed to ``mask``, where a path
that goes through the element's Any (``cluster.name``) is applied inside it. An unknown
resource is 404 ``<resource> not found in config dump``; a field that is not repeated is 400.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from google.protobuf import any_pb2, json_format, symbol_database
from google.protobuf.field_mask_pb2 import FieldMask

from ..compile.subset import connection_managers
from .config_dump_dynamic import add_dynamic

if TYPE_CHECKING:
    from .server import ProxyServer


def config_dump(proxy: ProxyServer, resource: str | None, mask: str | None,
                include_eds: bool) -> tuple[int, str]:
    """(status, body): the JSON ConfigDump, or Envoy's error text."""
    from envoy.admin.v3 import config_dump_pb2

    messages = _top_level(proxy, include_eds)
    dump = config_dump_pb2.ConfigDump()
    if resource is not None:
        for msg in messages:
            field = msg.DESCRIPTOR.fields_by_name.get(resource)
            if field is None:
                continue
            if not _repeated(field):
                return 400, f"{resource} is not a repeated field. Use ?mask={resource} to get only this field"
            for item in getattr(msg, resource):
                if mask is not None:
                    item = _trim_resource(item, mask)
                dump.configs.add().Pack(item)
            break
        else:
            return 404, f"{resource} not found in config dump"
    else:
        for msg in messages:
            dump.configs.add().Pack(_trim(msg, mask.split(",")) if mask is not None else msg)
    return 200, json_format.MessageToJson(dump, preserving_proto_field_name=True, indent=2)


def _top_level(proxy: ProxyServer, include_eds: bool) -> list[Any]:
    """Bootstrap, clusters, [endpoints], listeners, routes: Envoy's order."""
    from envoy.admin.v3 import config_dump_pb2, config_dump_shared_pb2 as shared

    bootstrap = proxy.config.bootstrap
    dump = config_dump_pb2.ConfigDump()
    b = config_dump_pb2.BootstrapConfigDump()
    b.bootstrap.CopyFrom(bootstrap)
    b.last_updated.FromNanoseconds(int(proxy.started_at * 1e9))  # loaded when the server was built
    dump.configs.add().Pack(b)
    clusters = shared.ClustersConfigDump()
    endpoints = shared.EndpointsConfigDump()
    for c in bootstrap.static_resources.clusters:
        sc = clusters.static_clusters.add()
        sc.cluster.Pack(c)
        sc.last_updated.GetCurrentTime()
        if c.HasField("load_assignment"):
            cla = type(c.load_assignment)()
            cla.CopyFrom(c.load_assignment)
            cla.cluster_name = cla.cluster_name or c.name
            se = endpoints.static_endpoint_configs.add()
            se.endpoint_config.Pack(cla)
    dump.configs.add().Pack(clusters)
    listeners = shared.ListenersConfigDump()
    routes = shared.RoutesConfigDump()
    for lst in bootstrap.static_resources.listeners:
        sl = listeners.static_listeners.add()
        sl.listener.Pack(lst)
        sl.last_updated.GetCurrentTime()
        for _, hcm in connection_managers([lst]):
            if hcm.HasField("route_config"):
                sr = routes.static_route_configs.add()
                sr.route_config.Pack(hcm.route_config)
                sr.last_updated.GetCurrentTime()
    dump.configs.add().Pack(listeners)
    dump.configs.add().Pack(routes)
    add_dynamic(proxy.config, dump)  # fills the dynamic parts; adds the EDS dump last
    out: list[Any] = []
    for item in dump.configs:
        msg = _unpack(item)
        if isinstance(msg, shared.EndpointsConfigDump):
            endpoints.dynamic_endpoint_configs.extend(msg.dynamic_endpoint_configs)
            continue
        out.append(msg)
    if include_eds:
        out.insert(2, endpoints)
    return out


def _repeated(field: Any) -> bool:
    return field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED


def _unpack(item: any_pb2.Any) -> Any:
    name = item.TypeName()
    msg = symbol_database.Default().GetSymbol(name)()
    item.Unpack(msg)
    return msg


def _trim(msg: Any, paths: list[str]) -> Any:
    """protobuf's FieldMaskUtil::TrimMessage: keep only the fields the paths name; paths that
    do not name a field are left out, as Envoy's."""
    valid = [p for p in paths if p and FieldMask(paths=[p]).IsValidForDescriptor(msg.DESCRIPTOR)]
    out = type(msg)()
    if valid:
        FieldMask(paths=valid).MergeMessage(msg, out)
    return out


def _trim_resource(msg: Any, mask: str) -> Any:
    """Envoy's trimResourceMessage: paths through the element's one Any field are applied to
    the message packed in it (``cluster.name`` keeps ``cluster`` with only its ``name``)."""
    outer, inner, any_field = [], [], None
    for path in mask.split(","):
        head, _, rest = path.partition(".")
        f = msg.DESCRIPTOR.fields_by_name.get(head)
        if (f is not None and f.message_type is not None and not _repeated(f)
                and f.message_type.full_name == "google.protobuf.Any"):
            any_field = any_field or head
            outer.append(head)
            inner.append(rest)
        else:
            outer.append(path)
    msg = _trim(msg, outer)
    if any_field is not None and msg.HasField(any_field) and all(inner):
        packed = getattr(msg, any_field)
        packed.Pack(_trim(_unpack(packed), inner))
    return msg
