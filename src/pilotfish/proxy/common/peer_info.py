"""Who a workload is, as Istio's standard metrics label it: facts from its node metadata."""

from __future__ import annotations

import base64

from google.protobuf import struct_pb2

from typing import Any

CANONICAL_NAME = "service.istio.io/canonical-name"
CANONICAL_REVISION = "service.istio.io/canonical-revision"


class PeerInfo:
    """The workload facts the standard metrics label with. Empty string: not known."""

    __slots__ = ("name", "namespace", "workload", "cluster", "app", "version", "canonical_name",
                 "canonical_revision", "owner")

    def __init__(self, *, name: str = "", namespace: str = "", workload: str = "", cluster: str = "",
                 app: str = "", version: str = "", canonical_name: str = "", canonical_revision: str = "",
                 owner: str = "") -> None:
        self.name = name
        self.namespace = namespace
        self.workload = workload
        self.cluster = cluster
        self.app = app
        self.version = version
        self.canonical_name = canonical_name
        self.canonical_revision = canonical_revision
        self.owner = owner

    @classmethod
    def from_metadata(cls, md: dict[str, Any]) -> PeerInfo:
        """From Istio node metadata keys (as in a bootstrap's ``node.metadata``)."""
        labels = md.get("LABELS") or {}
        if not isinstance(labels, dict):
            labels = {}

        def s(v: Any) -> str:
            return v if isinstance(v, str) else ""

        return cls(name=s(md.get("NAME")), namespace=s(md.get("NAMESPACE")),
                   workload=s(md.get("WORKLOAD_NAME")), cluster=s(md.get("CLUSTER_ID")),
                   app=s(labels.get("app")), version=s(labels.get("version")),
                   canonical_name=s(labels.get(CANONICAL_NAME)),
                   canonical_revision=s(labels.get(CANONICAL_REVISION)), owner=s(md.get("OWNER")))

    def to_struct(self) -> struct_pb2.Struct:
        """Istio's convertWorkloadMetadataToStruct: empty fields left out, LABELS always present."""
        st = struct_pb2.Struct()
        for key, value in (("NAME", self.name), ("NAMESPACE", self.namespace),
                           ("WORKLOAD_NAME", self.workload), ("CLUSTER_ID", self.cluster)):
            if value:
                st.fields[key].string_value = value
        labels = st.fields["LABELS"].struct_value
        for key, value in ((CANONICAL_NAME, self.canonical_name), (CANONICAL_REVISION, self.canonical_revision),
                           ("app", self.app), ("version", self.version)):
            if value:
                labels.fields[key].string_value = value
        if self.owner:
            st.fields["OWNER"].string_value = self.owner
        return st

    def header_value(self) -> bytes:
        return base64.b64encode(self.to_struct().SerializeToString(deterministic=True))

    def __repr__(self) -> str:
        return f"PeerInfo({self.namespace}/{self.workload})"
