"""HTTP/1.1 proxy benchmark: pilotfish against nginx and HAProxy, measured in the same run.

Backend: nginx, one worker, a fixed 100-byte response. Each path is measured closed-loop with
wrk (one thread, 50 connections) and at a fixed 1,000 requests/s with h2load (16 clients at
62.5 requests/s each, per-request latencies from its log). CPU is read from /proc for the
proxy processes only; RSS after the run. Rounds are interleaved and medians reported (the
target ratios: medians of per-round ratios), since single-core speed on a shared VM swings by
tens of percent between runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

TOOLS = {"nginx": "nginx", "haproxy": "haproxy", "wrk": "wrk", "h2load": "nghttp2-client"}
BODY = "x" * 99 + "\n"
TICKS = os.sysconf("SC_CLK_TCK")


def ensure_tools() -> None:
    """Install the reference proxies and load generators from Debian when missing."""
    missing = [pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists()]
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f"benchmark needs: {' '.join(missing)} (apt-get install them, or run as root)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True, env=env, stdout=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port}")


@dataclass
class Server:
    """A process tree we started and measure (CPU and RSS summed over it and its children)."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int

    def pids(self) -> list[int]:
        out = [self.proc.pid]
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            out += [int(c) for c in children]
        except OSError:
            pass
        return out

    def cpu_seconds(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except (OSError, IndexError):
                pass
        return total / TICKS

    def rss_mb(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_nginx(workdir: Path, name: str, body: str) -> Server:
    port = free_port()
    prefix = workdir / name
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(textwrap.dedent(f"""
        worker_processes 1;
        error_log {prefix}/error.log crit;
        pid {prefix}/nginx.pid;
        events {{ worker_connections 4096; }}
        http {{
            access_log off;
            client_body_temp_path {prefix}; proxy_temp_path {prefix}; fastcgi_temp_path {prefix};
            uwsgi_temp_path {prefix}; scgi_temp_path {prefix};
            keepalive_requests 1000000;
            {body.replace("PORT", str(port))}
        }}
    """))
    proc = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"])
    wait_port(port)
    return Server(name, proc, port)


def start_backend(workdir: Path) -> Server:
    return start_nginx(workdir, "backend", f'server {{ listen 127.0.0.1:PORT; location / {{ return 200 "{BODY[:-1]}\\n"; }} }}')


def start_nginx_proxy(workdir: Path, upstream: int) -> Server:
    return start_nginx(workdir, "nginx-proxy", f"""
        upstream backend {{ server 127.0.0.1:{upstream}; keepalive 64; }}
        server {{ listen 127.0.0.1:PORT; location / {{
            proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }} }}
    """)


def start_haproxy(workdir: Path, upstream: int, name: str = "haproxy") -> Server:
    port = free_port()
    conf = workdir / f"{name}.cfg"
    conf.write_text(textwrap.dedent(f"""
        global
            nbthread 1
        defaults
            mode http
            timeout connect 5s
            timeout client 30s
            timeout server 30s
            http-reuse always
        frontend fe
            bind 127.0.0.1:{port}
            default_backend be
        backend be
            server s1 127.0.0.1:{upstream}
    """))
    proc = subprocess.Popen([shutil.which("haproxy") or "/usr/sbin/haproxy", "-f", str(conf), "-db"], stdout=subprocess.DEVNULL)
    wait_port(port)
    return Server(name, proc, port)


def pilotfish_bootstrap(port: int, admin: int, upstream: int, extra_filters: str = "", route_extra: str = "") -> str:
    return textwrap.dedent(f"""
        admin:
          address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
        static_resources:
          listeners:
          - name: listener_0
            address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: bench
                  route_config:
                    name: local_route
                    virtual_hosts:
                    - name: backend
                      domains: ["*"]
                      routes:
                      - match: {{prefix: "/"}}
                        route: {{cluster: backend{route_extra}}}
                  http_filters:{extra_filters}
                  - name: envoy.filters.http.router
                    typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
          clusters:
          - name: backend
            connect_timeout: 1s
            type: STATIC
            load_assignment:
              cluster_name: backend
              endpoints:
              - lb_endpoints:
                - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {upstream}}}}}}}
    """)


def start_pilotfish(workdir: Path, upstream: int, name: str = "pilotfish", extra_filters: str = "",
                    route_extra: str = "") -> Server:
    port, admin = free_port(), free_port()
    path = workdir / f"{name}.yaml"
    path.write_text(pilotfish_bootstrap(port, admin, upstream, extra_filters, route_extra))
    python = os.environ.get("PILOTFISH_PYTHON", sys.executable)
    proc = subprocess.Popen([python, "-m", "pilotfish.cli.main", "proxy", "--bootstrap", str(path), "--log-level", "error"])
    wait_port(port)
    return Server(name, proc, port)


@dataclass
class Result:
    rps: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p90: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    cpu_per_1k: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    fixed_p50: list[float] = field(default_factory=list)
    fixed_p90: list[float] = field(default_factory=list)
    fixed_cpu_per_1k: list[float] = field(default_factory=list)

    def median(self, name: str) -> float:
        values = getattr(self, name)
        return statistics.median(values) if values else float("nan")


def _ms(text: str) -> float:
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    for unit in ("us", "ms", "s"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    return float(text)


def run_wrk(port: int, seconds: int) -> tuple[float, dict[str, float], int]:
    out = subprocess.run(
        ["wrk", "-t1", "-c50", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
    ).stdout
    rps, total, pct = 0.0, 0, {}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            rps = float(parts[1])
        elif len(parts) == 2 and parts[0] in ("50%", "90%", "99%"):
            pct[parts[0]] = _ms(parts[1])
        elif "requests in" in line:
            total = int(parts[0])
    return rps, pct, total


def run_fixed_rate(port: int, seconds: int, workdir: Path,
                   cpu: Callable[[], float] = lambda: 0.0) -> tuple[float, float, int, float]:
    """1,000 requests/s for ``seconds`` after a 1 s warm-up: p50 and p90 in ms from h2load's
    per-request log, the request count, and the CPU ``cpu()`` reports over the measured part only
    (h2load neither logs nor counts the warm-up's requests, so its CPU is left out too)."""
    log = workdir / f"h2load-{port}.log"
    proc = subprocess.Popen(
        ["h2load", "--h1", "-c16", "--rps=62.5", f"-D{seconds}", "--warm-up-time=1", f"--log-file={log}",
         f"http://127.0.0.1:{port}/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    cpu0 = cpu()
    if proc.wait() != 0:
        raise RuntimeError(f"h2load failed on port {port}")
    used = cpu() - cpu0
    durations = sorted(int(line.split()[2]) / 1000 for line in log.read_text().splitlines() if line.strip())
    log.unlink()
    if not durations:
        return float("nan"), float("nan"), 0, used
    return durations[len(durations) // 2], durations[int(len(durations) * 0.9)], len(durations), used


def measure(target: Server, proxies: list[Server], seconds: int, workdir: Path, result: Result) -> None:
    run_wrk(target.port, 1)  # warm-up
    cpu0 = sum(p.cpu_seconds() for p in proxies)
    rps, pct, total = run_wrk(target.port, seconds)
    cpu1 = sum(p.cpu_seconds() for p in proxies)
    result.rps.append(rps)
    result.p50.append(pct.get("50%", float("nan")))
    result.p90.append(pct.get("90%", float("nan")))
    result.p99.append(pct.get("99%", float("nan")))
    if proxies and total:
        result.cpu_per_1k.append((cpu1 - cpu0) * 1000 / total * 1000)
        result.rss.append(sum(p.rss_mb() for p in proxies))
    p50, p90, n, used = run_fixed_rate(target.port, seconds, workdir,
                                       lambda: sum(p.cpu_seconds() for p in proxies))
    result.fixed_p50.append(p50)
    result.fixed_p90.append(p90)
    if proxies and n:
        result.fixed_cpu_per_1k.append(used * 1000 / n * 1000)


PATHS: dict[str, Callable[[Path, int], list[Server]]] = {
    "direct to backend": lambda w, b: [],
    "nginx (1 worker)": lambda w, b: [start_nginx_proxy(w, b)],
    "HAProxy (1 thread)": lambda w, b: [start_haproxy(w, b)],
    "pilotfish (1 worker)": lambda w, b: [start_pilotfish(w, b)],
}


def _chain(make: Callable[[Path, int, str], Server]) -> Callable[[Path, int], list[Server]]:
    def start(workdir: Path, backend: int) -> list[Server]:
        inner = make(workdir, backend, "inner")
        return [make(workdir, inner.port, "outer"), inner]
    return start


#: Istio's stats filter as its control plane writes it (a TypedStruct naming stats.PluginConfig).
ISTIO_STATS_FILTER = """
                  - name: istio.stats
                    typed_config:
                      "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                      type_url: type.googleapis.com/stats.PluginConfig
                      value: {}"""
PATHS["pilotfish + Istio metrics"] = lambda w, b: [start_pilotfish(w, b, "pilotfish-istio", ISTIO_STATS_FILTER)]
# Istio's default retry policy, a fault filter that never fires and a mirror sampled at 0%:
# configured but not triggered, so the cost is the features' bookkeeping alone.
RESILIENCE_FILTERS = """
                  - name: envoy.filters.http.fault
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                      abort: {http_status: 503, percentage: {numerator: 0}}"""
RESILIENCE_ROUTE = (
    ", retry_policy: {retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',"
    " num_retries: 2, retriable_status_codes: [503]},"
    " request_mirror_policies: [{cluster: backend, runtime_fraction: {default_value: {numerator: 0}}}]"
)
PATHS["pilotfish + retry/fault/mirror (not triggered)"] = lambda w, b: [
    start_pilotfish(w, b, "pilotfish-resilience", RESILIENCE_FILTERS, RESILIENCE_ROUTE)
]
PATHS["two HAProxies chained"] = _chain(lambda w, b, n: start_haproxy(w, b, f"haproxy-{n}"))
PATHS["two pilotfish chained"] = _chain(lambda w, b, n: start_pilotfish(w, b, f"pilotfish-{n}"))


def run(rounds: int = 3, seconds: int = 5) -> dict[str, Result]:
    ensure_tools()
    results = {name: Result() for name in PATHS}
    with tempfile.TemporaryDirectory(prefix="pilotfish-bench-") as tmp:
        workdir = Path(tmp)
        backend = start_backend(workdir)
        try:
            for rnd in range(rounds):
                for name, start in PATHS.items():
                    sub = workdir / f"r{rnd}-{abs(hash(name))}"
                    sub.mkdir()
                    proxies = start(sub, backend.port)
                    try:
                        target = proxies[0] if proxies else backend
                        measure(target, proxies, seconds, sub, results[name])
                    finally:
                        for p in proxies:
                            p.stop()
        finally:
            backend.stop()
    return results


def table(results: dict[str, Result]) -> list[str]:
    direct = results["direct to backend"]
    rows = ["| path | requests/s | p50 / p90 / p99 ms | CPU ms per 1k rq (closed loop) | CPU ms per 1k rq at 1,000 rps | RSS MB | added p50 / p90 ms at 1,000 rps |",
            "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        added = "—" if r is direct else f"+{r.median('fixed_p50') - direct.median('fixed_p50'):.2f} / +{r.median('fixed_p90') - direct.median('fixed_p90'):.2f}"
        cpu = "—" if not r.cpu_per_1k else f"{r.median('cpu_per_1k'):.1f}"
        cpu_fixed = "—" if not r.fixed_cpu_per_1k else f"{r.median('fixed_cpu_per_1k'):.1f}"
        rss = "—" if not r.rss else f"{r.median('rss'):.0f}"
        rows.append(f"| {name} | {r.median('rps') / 1000:.1f}k | {r.median('p50'):.2f} / {r.median('p90'):.2f} / {r.median('p99'):.2f} | {cpu} | {cpu_fixed} | {rss} | {added} |")
    return rows


def paired_ratio(a: list[float], b: list[float]) -> float:
    """The median of the per-round ratios: each round measures both paths within a minute, so
    the ratio of a round is free of the slow drift of a shared VM's speed between rounds."""
    ratios = [x / y for x, y in zip(a, b) if y]
    return statistics.median(ratios) if ratios else float("nan")


def verdicts(results: dict[str, Result]) -> list[str]:
    """The issue's targets, each as met or missed with the measured ratio."""
    pf, ha = results["pilotfish (1 worker)"], results["HAProxy (1 thread)"]
    pf2, ha2, direct = results["two pilotfish chained"], results["two HAProxies chained"], results["direct to backend"]
    rps_ratio = paired_ratio(pf.rps, ha.rps)
    cpu_ratio = paired_ratio(pf.cpu_per_1k, ha.cpu_per_1k)
    added_pf = pf2.median("fixed_p90") - direct.median("fixed_p90")
    added_ha = ha2.median("fixed_p90") - direct.median("fixed_p90")
    vcpu = pf.median("fixed_cpu_per_1k") / 1000  # CPU-seconds per second at 1,000 rps
    lines = [
        f"- requests/s vs HAProxy: {rps_ratio:.3f}x (target >= 0.6x) {'met' if rps_ratio >= 0.6 else 'MISSED'}",
        f"- CPU per 1k requests vs HAProxy: {cpu_ratio:.3f}x (target <= 1.6x) {'met' if cpu_ratio <= 1.6 else 'MISSED'}",
        f"- added p90 through two proxies at 1,000 rps: {added_pf:.2f} ms vs HAProxy's {added_ha:.2f} ms = "
        f"{added_pf / added_ha if added_ha > 0 else float('nan'):.2f}x (target <= 1.3x) {'met' if added_ha > 0 and added_pf <= 1.3 * added_ha else 'MISSED'}",
        f"- vCPU per 1,000 rps per proxy: {vcpu:.4f} (target <= 0.10) {'met' if vcpu <= 0.10 else 'MISSED'}",
        f"- RSS per proxy: {pf.median('rss'):.0f} MB (target <= 40 MB) {'met' if pf.median('rss') <= 40 else 'MISSED'}",
    ]
    res = results.get("pilotfish + retry/fault/mirror (not triggered)")
    if res is not None and res.rps:
        ratio = paired_ratio(res.rps, pf.rps)
        lines.append(f"- retry/fault/mirror configured, not triggered: {ratio:.3f}x the requests/s without them "
                     f"(target >= 0.90x) {'met' if ratio >= 0.9 else 'MISSED'}")
    return lines


if __name__ == "__main__":
    res = run(int(os.environ.get("BENCH_ROUNDS", "3")), int(os.environ.get("BENCH_SECONDS", "5")))
    print("\n".join(table(res)))
    print("\n".join(verdicts(res)))
