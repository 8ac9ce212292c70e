"""Instructions per request of `pilotfish proxy` on a plain route, counted by callgrind.

Wall-clock on a shared VM swings by tens of percent; callgrind's instruction counts repeat. The
proxy runs under ``valgrind --tool=callgrind``; one keep-alive client sends N1 and then N2
requests in two runs, and the difference of the totals divided by N2 - N1 is the cost of one
request. Timers (the Date line, the stats flush, the overload monitor) run by wall-clock time,
which valgrind stretches; their rate is measured on an idle proxy and taken out.

    python benchmarks/instructions.py [SRC_DIR]     # SRC_DIR: another checkout's src/, to compare

Two route shapes: a plain route, and Istio's (its default retry policy on the route).
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP = """
admin: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}}}
static_resources:
  listeners:
  - name: main
    address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          route_config:
            virtual_hosts: [{{name: all, domains: ["*"], routes: [{{match: {{prefix: /}}, route: {route}}}]}}]
          http_filters:
          - {{name: envoy.filters.http.router, typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}}}
  clusters:
  - name: backend
    connect_timeout: 1s
    load_assignment:
      cluster_name: backend
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {backend}}}}}}}}}]}}]
"""
#: The route's action: a plain one, or Istio's shape (its default retry policy, as istiod writes
#: it on every route; no route timeout).
ROUTES = {
    "plain": "{cluster: backend}",
    "istio": ("{cluster: backend, retry_policy: {retry_on: 'connect-failure,refused-stream,unavailable,"
              "cancelled,retriable-status-codes', num_retries: 2, retriable_status_codes: [503], "
              "retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts, typed_config: "
              "{'@type': type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate}}], "
              "host_selection_retry_max_attempts: 5}, max_stream_duration: {max_stream_duration: 0s}}"),
}
REQUEST = b"GET /p HTTP/1.1\r\nhost: a\r\nuser-agent: bench\r\naccept: */*\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\ncontent-type: text/plain\r\n\r\n" + b"x" * 100


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _backend(port: int) -> asyncio.AbstractServer:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(RESPONSE)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port)


async def _load(port: int, n: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(n):
        writer.write(REQUEST)
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"content-length: (\d+)", head, re.I)
        await reader.readexactly(int(length.group(1)) if length else 0)
    writer.close()


def _run(src: Path, requests: int, idle: float, shape: str = "plain") -> tuple[int, float]:
    """(total instructions, seconds of the measured part) of one proxy run under callgrind."""
    backend, port, admin = _free_port(), _free_port(), _free_port()
    work = Path(tempfile.mkdtemp())
    (work / "bootstrap.yaml").write_text(BOOTSTRAP.format(admin=admin, port=port, backend=backend, route=ROUTES[shape]))
    out = work / "callgrind.out"
    env = dict(os.environ, PYTHONPATH=str(src), PYTHONHASHSEED="0")  # dict layouts, and so counts, repeat
    took = 0.0

    async def main() -> None:
        nonlocal took
        server = await _backend(backend)
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-m",
             "pilotfish.cli.main", "proxy", "--bootstrap", str(work / "bootstrap.yaml"), "--log-level", "error"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(600):
                try:
                    _, w = await asyncio.open_connection("127.0.0.1", port)
                    w.close()
                    break
                except OSError:
                    await asyncio.sleep(0.1)
            await _load(port, 50)  # warm: imports, first connection, specialisation
            started = time.monotonic()
            await _load(port, requests)
            await asyncio.sleep(idle)
            took = time.monotonic() - started
        finally:
            proc.send_signal(2)
            proc.wait(timeout=120)
            server.close()

    asyncio.run(main())
    total = re.search(r"^(?:summary|totals):\s+(\d+)", out.read_text(), re.M)
    assert total is not None, "no callgrind totals"
    return int(total.group(1)), took


def per_request(src: Path, shape: str = "plain", n1: int = 500, n2: int = 2500) -> tuple[float, float]:
    """(instructions per request without timer work, timer instructions per second)."""
    (i0, t0), (i1, t1) = _run(src, 0, 2.0, shape), _run(src, 0, 12.0, shape)
    rate = (i1 - i0) / (t1 - t0)
    (a, ta), (b, tb) = _run(src, n1, 0.0, shape), _run(src, n2, 0.0, shape)
    return ((b - a) - rate * (tb - ta)) / (n2 - n1), rate


if __name__ == "__main__":
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "src"
    for shape in ROUTES:
        cost, rate = per_request(src, shape)
        print(f"{src}: {cost / 1000:.1f}k instructions per request on a {shape} route "
              f"(timer work, taken out: {rate / 1000:.0f}k instructions per second)")
