"""Descriptors of the types in Istio's EnvoyFilter registry that xds-protos does not ship: the
Envoy contrib extensions (``mysql_proxy.v3``, …), Istio's own extension types (alpn, jwt_auth,
tcp_cluster_rewrite, ``stats.PluginConfig``, metadata exchange, peer metadata) and Envoy files
newer than xds-protos, so their ``typed_config`` is checked field by field, as istiod checks it.

They are data (``envoy_filter_descriptors.binpb``, a FileDescriptorSet written by
scripts/gen_envoy_filter_types.py from the generated Go the registry names) loaded into a pool of
their own on first use: the process-wide pool belongs to xds-protos and to the proxy, which
declares a ``stats.PluginConfig`` of its own.
"""

from __future__ import annotations

import importlib
from functools import cache

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import Descriptor

DATA = "envoy_filter_descriptors.binpb"


def build_pool(files: descriptor_pb2.FileDescriptorSet) -> descriptor_pool.DescriptorPool:
    """A pool of ``files`` and what they import (from xds-protos and protobuf, copied in)."""
    pool = descriptor_pool.DescriptorPool()
    ours = {f.name: f for f in files.file}
    added: set[str] = set()

    def add(name: str) -> None:
        if name in added:
            return
        added.add(name)
        fdp = ours.get(name) or _installed(name)
        for dep in fdp.dependency:
            add(dep)
        pool.Add(fdp)

    for name in ours:
        add(name)
    return pool


def _installed(name: str) -> descriptor_pb2.FileDescriptorProto:
    """An imported file's descriptor as xds-protos (or protobuf) ships it."""
    importlib.import_module(name.removesuffix(".proto").replace("/", ".").replace("-", "_") + "_pb2")
    fdp = descriptor_pb2.FileDescriptorProto()
    descriptor_pool.Default().FindFileByName(name).CopyToProto(fdp)
    return fdp


@cache
def _pool() -> descriptor_pool.DescriptorPool:
    from importlib.resources import files

    data = files(__package__).joinpath(DATA).read_bytes()
    return build_pool(descriptor_pb2.FileDescriptorSet.FromString(data))


def find(full_name: str) -> Descriptor | None:
    """The descriptor of a registry type xds-protos lacks, or None."""
    try:
        return _pool().FindMessageTypeByName(full_name)
    except KeyError:
        return None
