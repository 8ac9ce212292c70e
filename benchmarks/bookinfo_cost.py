"""What the mesh costs for Bookinfo on this machine: the whole demo's resident memory and idle
CPU (istiod, gateway, agents, sidecars, apps), and productpage's latency through the ingress
gateway and sidecars against the same apps called directly.

"Direct" runs the same apps outside the mesh, told each other's ports: the difference is the
gateway plus two sidecar hops on each of the three calls a page makes (reviews routed to v2,
which calls ratings, in both).

    python benchmarks/bookinfo_cost.py [--requests 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PILOTFISH = [sys.executable, "-c", "from pilotfish.cli.main import main; main()"]
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _mesh_pids(root: Path) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd").startswith(str(root)):
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


def _rss_and_cpu(pids: list[int]) -> tuple[float, float]:
    """(total RSS in MB, total CPU seconds so far)."""
    rss = cpu = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
            statm = Path(f"/proc/{pid}/statm").read_text().split()
        except OSError:
            continue
        cpu += (int(stat[11]) + int(stat[12])) / tick
        rss += int(statm[1]) * page / 2**20
    return rss, cpu


def _latencies(url: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        with _DIRECT.open(url, timeout=30) as r:
            r.read()
            assert r.status == 200
        out.append((time.perf_counter() - start) * 1000)
    return out


def _direct_latencies(n: int) -> list[float]:
    """productpage's page with no mesh at all: the same four apps (reviews as v2, as the meshed
    run is routed) started here, each told the others' ports with Bookinfo's own
    ``*_HOSTNAME`` / ``*_SERVICE_PORT`` variables, no HTTP_PROXY."""
    src = ROOT / "samples/bookinfo/src"
    ports = {name: _free_port() for name in ("details", "reviews", "ratings", "productpage")}
    env = {k: v for k, v in os.environ.items() if k.lower() != "http_proxy"}
    for name, port in ports.items():
        env[f"{name.upper()}_HOSTNAME"] = "127.0.0.1"
        env[f"{name.upper()}_SERVICE_PORT"] = str(port)
    env.update({"ENABLE_RATINGS": "true", "STAR_COLOR": "black", "HOSTNAME": "reviews-v2-direct"})
    argv = {"details": [sys.executable, "details.py"], "reviews": [sys.executable, "reviews.py"],
            "ratings": ["node", "ratings.js"], "productpage": [sys.executable, "productpage.py"]}
    procs = [subprocess.Popen([*argv[name], str(port)], env=env, cwd=src / name, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for name, port in ports.items()]
    url = f"http://127.0.0.1:{ports['productpage']}/productpage"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                _latencies(url, 1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        _latencies(url, 20)
        return _latencies(url, n)
    finally:
        for p in procs:
            p.terminate()
            p.wait()


REVIEWS_V2 = """apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v2}}]}]
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def run(requests: int = 200) -> list[tuple[str, str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        up = subprocess.run([*PILOTFISH, "demo", "--detach"], cwd=root, capture_output=True, text=True)
        if up.returncode != 0:
            raise RuntimeError(up.stderr)
        try:
            mesh = json.loads((root / ".pilotfish/mesh.json").read_text())
            url = mesh["ingress_url"] + "/productpage"
            (root / "reviews-v2.yaml").write_text(REVIEWS_V2)
            subprocess.run([*PILOTFISH, "apply", "-f", "reviews-v2.yaml"], cwd=root, capture_output=True, check=True)
            time.sleep(1)
            _latencies(url, 20)  # warm up: connections, caches
            time.sleep(2)
            pids = _mesh_pids(root)
            rss, cpu0 = _rss_and_cpu(pids)
            idle = 10.0
            time.sleep(idle)
            _, cpu1 = _rss_and_cpu(pids)
            meshed = _latencies(url, requests)
            direct = _direct_latencies(requests)
        finally:
            subprocess.run([*PILOTFISH, "down"], cwd=root, capture_output=True)
    instances = len(mesh["workloads"]) + len(mesh["gateways"])
    return [
        ("Bookinfo footprint (RSS)", f"{rss:.0f} MB", f"{len(pids)} processes: istiod, {instances} agents + proxies, "
                                                       f"{len(mesh['workloads'])} apps"),
        ("Bookinfo idle CPU", f"{100 * (cpu1 - cpu0) / idle:.1f}% of a core", f"over {idle:.0f} s with no requests"),
        ("productpage via the mesh", f"p50 {statistics.median(meshed):.1f} ms, p99 {_pct(meshed, 0.99):.1f} ms",
         f"{requests} sequential requests, reviews v2: gateway, then 3 calls between sidecars"),
        ("productpage direct", f"p50 {statistics.median(direct):.1f} ms, p99 {_pct(direct, 0.99):.1f} ms",
         "the same apps calling each other's ports, no mesh"),
    ]


def markdown(rows: list[tuple[str, str, str]]) -> list[str]:
    """A Markdown table, the first row its header."""
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    out = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in rows]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    print("\n".join(markdown([("measure", "result", "notes"), *run(args.requests)])))


if __name__ == "__main__":
    main()
