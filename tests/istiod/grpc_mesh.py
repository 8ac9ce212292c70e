"""A proxyless gRPC mesh for conformance tests: gRPC backends answering their name, Istio YAML
that puts them behind one service, and grpcio's own xDS client in a subprocess bootstrapped to
istiod. The client is grpcio's, not ours, so what it does with istiod's config is independent
evidence that the config means what the YAML says."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import grpc

#: The method every backend serves (generic handlers: no generated code needed).
SERVICE = "test.Echo"
METHOD = f"/{SERVICE}/Call"
CLIENT_NODE_ID = "sidecar~127.0.0.1~client-1.default~default.svc.cluster.local"


async def grpc_backend(name: str) -> tuple[grpc.aio.Server, int]:
    """A gRPC server on a port from the OS whose one method answers ``name``."""
    async def call(request: bytes, context: Any) -> bytes:
        return name.encode()

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        SERVICE, {"Call": grpc.unary_unary_rpc_method_handler(call)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


def grpc_config(service_port: int, v1: int, v2: int) -> dict[str, str]:
    """``web.internal:service_port`` (a GRPC port) over two workloads, subsets by version, and a
    VirtualService: two fault routes, a header route to v2, an 80/20 split for everything else."""
    return {
        "service.yaml": f"""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: web, namespace: default}}
spec:
  hosts: [web.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: {service_port}, name: grpc, protocol: GRPC}}]
  workloadSelector: {{labels: {{app: web}}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: web-v1, namespace: default}}
spec: {{address: 127.0.0.1, ports: {{grpc: {v1}}}, labels: {{app: web, version: v1}}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: web-v2, namespace: default}}
spec: {{address: 127.0.0.1, ports: {{grpc: {v2}}}, labels: {{app: web, version: v2}}}}
""",
        "destination-rule.yaml": """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: default}
spec:
  host: web.internal
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
""",
        "virtual-service.yaml": """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: [web.internal]
  http:
  - match: [{headers: {x-fault: {exact: grpc}}}]
    fault: {abort: {percentage: {value: 100}, grpcStatus: PERMISSION_DENIED}}
    route: [{destination: {host: web.internal, subset: v1}}]
  - match: [{headers: {x-fault: {exact: http}}}]
    fault: {abort: {percentage: {value: 100}, httpStatus: 503}}
    route: [{destination: {host: web.internal, subset: v1}}]
  - match: [{headers: {x-version: {exact: v2}}}]
    route: [{destination: {host: web.internal, subset: v2}}]
  - route:
    - {destination: {host: web.internal, subset: v1}, weight: 80}
    - {destination: {host: web.internal, subset: v2}, weight: 20}
""",
    }


def bootstrap(xds_port: int, node_id: str = CLIENT_NODE_ID) -> dict[str, Any]:
    """grpcio's xDS bootstrap naming istiod, with the node metadata istiod's grpc generator keys on."""
    return {"xds_servers": [{"server_uri": f"127.0.0.1:{xds_port}", "channel_creds": [{"type": "insecure"}],
                             "server_features": ["xds_v3"]}],
            "node": {"id": node_id, "locality": {"region": "r1", "zone": "z1"},
                     "metadata": {"NAMESPACE": "default", "GENERATOR": "grpc"}}}


#: The client: one channel to argv[1]; for each [metadata, count] batch of argv[2], ``count`` calls
#: whose outcomes (the body, or the status code's name) are printed as one JSON list per batch.
#: The first call waits for the channel's xDS config; later ones fail fast.
CLIENT = """
import json, sys, grpc
target, plan = sys.argv[1], json.loads(sys.argv[2])
out = []
with grpc.insecure_channel(target) as channel:
    call = channel.unary_unary(%r)
    call(b"", timeout=20, wait_for_ready=True, metadata=(("x-warm-up", "1"),))
    for metadata, count in plan:
        batch = []
        for _ in range(count):
            try:
                batch.append(call(b"", timeout=10, metadata=tuple(metadata.items())).decode())
            except grpc.RpcError as e:
                batch.append(e.code().name)
        out.append(batch)
print(json.dumps(out))
""" % METHOD


class ClientFailed(AssertionError):
    """The client subprocess did not finish cleanly; carries its stderr (grpc's xDS trace)."""


async def run_client(xds_port: int, target: str, plan: Sequence[tuple[Mapping[str, str], int]],
                     trace: bool = False, timeout: float = 60.0) -> list[list[str]]:
    """Run grpcio's xDS client against istiod and return each batch's outcomes. With ``trace``,
    grpc's xDS client logs what it received and why it rejected anything (in the error)."""
    env = dict(os.environ, GRPC_XDS_BOOTSTRAP_CONFIG=json.dumps(bootstrap(xds_port)))
    env.pop("GRPC_XDS_BOOTSTRAP", None)
    if trace:
        env.update(GRPC_TRACE="xds_client,xds_resolver", GRPC_VERBOSITY="DEBUG")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENT, target, json.dumps([[dict(m), n] for m, n in plan]), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        raise ClientFailed(f"client exited {proc.returncode}:\n{err.decode()[-4000:]}")
    result: list[list[str]] = json.loads(out)
    return result
