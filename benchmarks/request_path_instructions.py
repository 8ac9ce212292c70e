"""Instructions per request of the request path alone, socket-free, counted by callgrind.

benchmarks/instructions.py measures the whole proxy process over loopback; this drives
``pilotfish.proxy.testing``'s Proxy (fake transports, a manual clock: no event loop, no system
calls, no timers) through N keep-alive GETs and counts instructions for two N. The figure
includes the fake transports' own work, so compare builds with it, not with the process figure.
With a fixed hash seed it repeats to the instruction and takes seconds, which makes it the
tool for bisecting a change.

    python benchmarks/request_path_instructions.py [SRC_DIR ...]   # other checkouts' src/ to compare
"""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GET = b"GET /p HTTP/1.1\r\nhost: a\r\nuser-agent: bench\r\naccept: */*\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\ncontent-type: text/plain\r\n\r\n" + b"x" * 100


def serve(n: int) -> None:
    """N requests through a socket-free proxy (run in the measured process). The cyclic GC is
    off: the fake transports keep every write, and the collections that growth triggers are the
    harness's cost, not the request path's (a proxy process frees what a request made)."""
    gc.disable()
    from pilotfish.proxy.testing import Proxy, bootstrap, static_cluster

    p = Proxy(bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "web"}}], [static_cluster("web", 8080)]))
    (up,) = p.upstream("web")
    c = p.connect()
    for _ in range(n):
        c.send(GET)
        up.received()
        up.respond(OK)
        c.received()
    assert p.stats.rq_class[2] == n


def _total(src: Path, n: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__,
                        "--serve", str(n)], env=dict(os.environ, PYTHONPATH=str(src), PYTHONHASHSEED="0"), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        found = re.search(r"^summary:\s+(\d+)", out.read_text(), re.M)
        assert found is not None, "no callgrind summary"
        return int(found.group(1))


def per_request(src: Path, n1: int = 300, n2: int = 2300) -> float:
    return (_total(src, n2) - _total(src, n1)) / (n2 - n1)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]))
    else:
        for arg in sys.argv[1:] or [str(ROOT / "src")]:
            print(f"{arg}: {per_request(Path(arg)) / 1000:.1f}k instructions per request (socket-free)")
