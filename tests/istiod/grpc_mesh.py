"""A proxyless gRPC mesh for conformance tests: gRPC backends answering their name, Istio YAML
that puts them behind one service, and grpcio's own xDS client in a subprocess bootstrapped to
istiod. The client is grpcio's, not ours, so what it does with istiod's config is independent
evidence that the config means what the YAML says."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc

from .mesh import web_service

#: The method every backend serves (generic handlers: no generated code needed).
SERVICE = "test.Echo"
METHOD = f"/{SERVICE}/Call"
CLIENT_NODE_ID = "sidecar~127.0.0.1~client-1.default~default.svc.cluster.local"


class GrpcBackend:
    """A gRPC server on a port from the OS whose one method answers ``name``; it counts the
    calls that reached it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0
        self.port = 0
        self._server = grpc.aio.server()
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            SERVICE, {"Call": grpc.unary_unary_rpc_method_handler(self._call)}),))

    async def _call(self, request: bytes, context: Any) -> bytes:
        self.calls += 1
        return self.name.encode()

    async def __aenter__(self) -> GrpcBackend:
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._server.stop(None)


def grpc_config(service_port: int, v1: int, v2: int, header_subset: str = "v2") -> dict[str, str]:
    """``web.internal:service_port`` (a GRPC port) over two workloads, subsets by version, and a
    VirtualService: two fault aborts (a gRPC status, HTTP 503), ``x-version: v2`` to
    ``header_subset``, an 80/20 split between v1 and v2 for everything else."""
    return {
        "service.yaml": web_service(service_port, "grpc", "GRPC", v1, v2),
        "virtual-service.yaml": f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: web, namespace: default}}
spec:
  hosts: [web.internal]
  http:
  - match: [{{headers: {{x-fault: {{exact: grpc}}}}}}]
    fault: {{abort: {{percentage: {{value: 100}}, grpcStatus: PERMISSION_DENIED}}}}
    route: [{{destination: {{host: web.internal, subset: v1}}}}]
  - match: [{{headers: {{x-fault: {{exact: http}}}}}}]
    fault: {{abort: {{percentage: {{value: 100}}, httpStatus: 503}}}}
    route: [{{destination: {{host: web.internal, subset: v1}}}}]
  - match: [{{headers: {{x-version: {{exact: v2}}}}}}]
    route: [{{destination: {{host: web.internal, subset: {header_subset}}}}}]
  - route:
    - {{destination: {{host: web.internal, subset: v1}}, weight: 80}}
    - {{destination: {{host: web.internal, subset: v2}}, weight: 20}}
""",
    }


def bootstrap(xds_port: int, node_id: str = CLIENT_NODE_ID) -> dict[str, Any]:
    """grpcio's xDS bootstrap naming istiod, with the node metadata istiod's grpc generator keys on."""
    return {"xds_servers": [{"server_uri": f"127.0.0.1:{xds_port}", "channel_creds": [{"type": "insecure"}],
                             "server_features": ["xds_v3"]}],
            "node": {"id": node_id, "locality": {"region": "r1", "zone": "z1"},
                     "metadata": {"NAMESPACE": "default", "GENERATOR": "grpc"}}}


#: The client: one channel to argv[1], kept for its whole life so pushed config reaches it. Each
#: stdin line ``[metadata, count, wait_for_ready]`` makes ``count`` calls; their outcomes (the
#: body, or the status code's name) come back as one JSON line.
CLIENT = """
import json, sys, grpc
with grpc.insecure_channel(sys.argv[1]) as channel:
    call = channel.unary_unary(%r)
    for line in sys.stdin:
        metadata, count, wait = json.loads(line)
        batch = []
        for _ in range(count):
            try:
                batch.append(call(b"", timeout=10, wait_for_ready=wait, metadata=tuple(metadata.items())).decode())
            except grpc.RpcError as e:
                batch.append(e.code().name)
        print(json.dumps(batch), flush=True)
""" % METHOD


class ClientFailed(AssertionError):
    """The client process died or went silent; carries the end of grpc's xDS trace."""


class GrpcClient:
    """grpcio's xDS client in a subprocess bootstrapped to istiod, with grpc's xDS trace in
    ``log`` (what it received, and why it rejected anything)."""

    def __init__(self, xds_port: int, target: str, log: Path) -> None:
        self.xds_port = xds_port
        self.target = target
        self.log = log
        self._proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> GrpcClient:
        env = dict(os.environ, GRPC_XDS_BOOTSTRAP_CONFIG=json.dumps(bootstrap(self.xds_port)),
                   GRPC_TRACE="xds_client,xds_resolver", GRPC_VERBOSITY="DEBUG")
        env.pop("GRPC_XDS_BOOTSTRAP", None)
        with self.log.open("wb") as err:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", CLIENT, self.target, env=env, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=err)
        return self

    async def __aexit__(self, *exc: object) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()

    async def calls(self, metadata: Mapping[str, str] | None = None, count: int = 1,
                    wait_for_ready: bool = False) -> list[str]:
        """``count`` calls with ``metadata``: each one's body, or its status code's name."""
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps([dict(metadata or {}), count, wait_for_ready]).encode() + b"\n")
        try:
            await proc.stdin.drain()
            line = await asyncio.wait_for(proc.stdout.readline(), 15 + 10 * count)
        except (ConnectionError, asyncio.TimeoutError):
            line = b""
        if not line:
            raise ClientFailed(f"grpc client gave no answer; its trace ends:\n{self.trace_tail()}")
        outcomes: list[str] = json.loads(line)
        return outcomes

    def trace_tail(self, chars: int = 3000) -> str:
        """grpc's complaints (rejected resources, missing ones), then the end of the trace."""
        text = self.log.read_text(errors="replace")
        complaints = [line for line in text.splitlines()
                      if "INVALID_ARGUMENT" in line or "does not exist" in line or "NACK" in line]
        return "\n".join(complaints[-20:]) + "\n...\n" + text[-chars:]
