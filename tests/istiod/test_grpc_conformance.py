"""Conformance with an independent xDS client: grpcio's proxyless client takes its whole config
(LDS API listener, RDS, CDS, EDS) from istiod translating Istio YAML, and its RPCs land where the
YAML says: a header match, an 80/20 subset split, fault aborts, and a live edit."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from pilotfish.istiod.server import Istiod

from .grpc_mesh import GrpcBackend, GrpcClient, grpc_config
from .mesh import eventually, istiod

SERVICE_PORT = 8000
TARGET = f"xds:///web.internal:{SERVICE_PORT}"


@dataclass
class GrpcMesh:
    istiod: Istiod
    client: GrpcClient
    v1: GrpcBackend
    v2: GrpcBackend
    config_dir: Path

    def write_config(self, header_subset: str = "v2") -> None:
        for name, text in grpc_config(SERVICE_PORT, self.v1.port, self.v2.port, header_subset).items():
            (self.config_dir / name).write_text(text)

    def rejections(self) -> dict[str, int]:
        """istiod's ``pilot_total_xds_rejects`` per type, as its /metrics shows them."""
        found = re.findall(r'^pilot_total_xds_rejects\{type="(\w+)"\} (\d+)$', self.istiod.metrics(), re.M)
        return {kind: int(n) for kind, n in found}


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[GrpcMesh]:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    async with AsyncExitStack() as stack:
        v1 = await stack.enter_async_context(GrpcBackend("v1"))
        v2 = await stack.enter_async_context(GrpcBackend("v2"))
        for name, text in grpc_config(SERVICE_PORT, v1.port, v2.port).items():
            (config_dir / name).write_text(text)
        cp = await stack.enter_async_context(istiod(config_dir))
        client = await stack.enter_async_context(GrpcClient(cp.xds_port, TARGET, tmp_path / "grpc-trace.log"))
        mesh = GrpcMesh(cp, client, v1, v2, config_dir)
        # The first call waits until the client holds listener, route, clusters and endpoints.
        first = await client.calls(wait_for_ready=True)
        assert first in (["v1"], ["v2"]), f"{first}; rejections {mesh.rejections()}\n{client.trace_tail()}"
        yield mesh


async def test_grpcio_routes_by_header_split_and_fault_as_the_virtual_service_says(mesh: GrpcMesh) -> None:
    client = mesh.client
    assert await client.calls({"x-version": "v2"}, 20) == ["v2"] * 20

    split = Counter(await client.calls(count=100))
    assert set(split) <= {"v1", "v2"}, split
    assert 60 <= split["v1"] <= 95, split  # 80/20, generous bounds

    # Aborts happen in the client's fault filter: the gRPC status as written, HTTP 503 as
    # UNAVAILABLE, and no call reaches a backend.
    served = mesh.v1.calls + mesh.v2.calls
    assert await client.calls({"x-fault": "grpc"}, 5) == ["PERMISSION_DENIED"] * 5
    assert await client.calls({"x-fault": "http"}, 5) == ["UNAVAILABLE"] * 5
    assert mesh.v1.calls + mesh.v2.calls == served
    assert served == 1 + 20 + 100  # every other call was answered by the backend it names

    assert mesh.rejections() and not any(mesh.rejections().values()), mesh.rejections()


async def test_grpcio_follows_a_virtual_service_edit_on_its_open_stream(mesh: GrpcMesh) -> None:
    client = mesh.client
    assert await client.calls({"x-version": "v2"}, 5) == ["v2"] * 5
    mesh.write_config(header_subset="v1")

    async def header_lands_on_v1() -> bool:
        return await client.calls({"x-version": "v2"}) == ["v1"]

    await eventually(header_lands_on_v1, 10)
    assert await client.calls({"x-version": "v2"}, 10) == ["v1"] * 10
    assert not any(mesh.rejections().values()), mesh.rejections()
