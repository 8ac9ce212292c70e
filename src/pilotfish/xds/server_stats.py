"""The ADS server's metrics under Istio's names, rendered as Prometheus text.

``pilot_xds`` (connected proxies), ``pilot_xds_pushes{type}`` (responses sent),
``pilot_total_xds_rejects{type}`` (NACKs), ``pilot_xds_expired_nonce{type}`` (stale requests),
``pilot_xds_push_time{type}`` (seconds to generate and queue one response),
``pilot_proxy_convergence_time`` (seconds from a push to the ACK of the last type it changed), and
Istio's per-proxy reject gauges ``pilot_xds_{cds,eds,lds,rds}_reject{node,err}`` for proxies
whose latest response of that type is NACKed. Buckets are Istio's.
"""

from __future__ import annotations

from collections.abc import Sequence

from .type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE

#: Istio's ``type`` label of each xDS type.
TYPE_LABEL = {CLUSTER: "cds", ENDPOINT: "eds", LISTENER: "lds", ROUTE: "rds"}
PUSH_TIME_BUCKETS = (0.01, 0.1, 1.0, 3.0, 5.0, 10.0, 20.0, 30.0)
CONVERGENCE_BUCKETS = (0.1, 0.5, 1.0, 3.0, 5.0, 10.0, 20.0, 30.0)


class Histogram:
    """Cumulative buckets, a sum and a count (Prometheus' histogram)."""

    __slots__ = ("bounds", "counts", "sum", "count")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * len(self.bounds)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        out = [f'{name}_bucket{{{labels}{sep}le="{_num(b)}"}} {c}' for b, c in zip(self.bounds, self.counts)]
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}')
        suffix = f"{{{labels}}}" if labels else ""
        out.append(f"{name}_sum{suffix} {_num(self.sum)}")
        out.append(f"{name}_count{suffix} {self.count}")
        return out


class ServerStats:
    """Counted by the ADS server; ``render`` is what /metrics serves."""

    def __init__(self) -> None:
        self.connected = 0
        self.pushes = {label: 0 for label in TYPE_LABEL.values()}
        self.rejects = {label: 0 for label in TYPE_LABEL.values()}
        self.expired_nonce = {label: 0 for label in TYPE_LABEL.values()}
        self.push_time = {label: Histogram(PUSH_TIME_BUCKETS) for label in TYPE_LABEL.values()}
        self.convergence = Histogram(CONVERGENCE_BUCKETS)
        self.rejecting: dict[tuple[str, str], str] = {}  # (type label, node id) -> error

    # ---- counting ---------------------------------------------------------------------------
    def connect(self) -> None:
        self.connected += 1

    def disconnect(self, node_id: str) -> None:
        self.connected -= 1
        for key in [k for k in self.rejecting if k[1] == node_id]:
            del self.rejecting[key]

    def pushed(self, type_url: str, seconds: float) -> None:
        label = TYPE_LABEL.get(type_url)
        if label is not None:
            self.pushes[label] += 1
            self.push_time[label].observe(seconds)

    def nacked(self, type_url: str, node_id: str, error: str) -> None:
        label = TYPE_LABEL.get(type_url)
        if label is not None:
            self.rejects[label] += 1
            self.rejecting[(label, node_id)] = error

    def acked(self, type_url: str, node_id: str) -> None:
        label = TYPE_LABEL.get(type_url)
        if label is not None:
            self.rejecting.pop((label, node_id), None)

    def stale(self, type_url: str) -> None:
        label = TYPE_LABEL.get(type_url)
        if label is not None:
            self.expired_nonce[label] += 1

    def converged(self, seconds: float) -> None:
        self.convergence.observe(seconds)

    # ---- rendering --------------------------------------------------------------------------
    def render(self) -> str:
        """Prometheus text exposition format (0.0.4)."""
        out = ["# HELP pilot_xds Number of endpoints connected to this pilot using XDS.",
               "# TYPE pilot_xds gauge", f"pilot_xds {self.connected}"]
        out += _counter("pilot_xds_pushes", "Pilot build and send errors for lds, rds, cds and eds.", self.pushes)
        out += _counter("pilot_total_xds_rejects", "Total number of XDS responses from pilot rejected by proxy.",
                        self.rejects)
        out += _counter("pilot_xds_expired_nonce", "Total number of XDS requests with an expired nonce.",
                        self.expired_nonce)
        out += ["# HELP pilot_xds_push_time Total time in seconds Pilot takes to push lds, rds, cds and eds.",
                "# TYPE pilot_xds_push_time histogram"]
        for label, hist in self.push_time.items():
            out += hist.lines("pilot_xds_push_time", f'type="{label}"')
        out += ["# HELP pilot_proxy_convergence_time Delay in seconds between config change and a proxy "
                "receiving all required configuration.",
                "# TYPE pilot_proxy_convergence_time histogram"]
        out += self.convergence.lines("pilot_proxy_convergence_time")
        for label in TYPE_LABEL.values():
            rows = sorted((node, err) for (lab, node), err in self.rejecting.items() if lab == label)
            if not rows:
                continue
            name = f"pilot_xds_{label}_reject"
            out += [f"# HELP {name} Pilot rejected {label.upper()} configs.", f"# TYPE {name} gauge"]
            out += [f'{name}{{node="{_escape(node)}",err="{_escape(err)}"}} 1' for node, err in rows]
        return "\n".join(out) + "\n"


def _counter(name: str, help_text: str, values: dict[str, int]) -> list[str]:
    out = [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
    out += [f'{name}{{type="{label}"}} {n}' for label, n in values.items()]
    return out


def _num(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _escape(value: str) -> str:
    """A label value: backslash, double quote and newline escaped; long errors cut short."""
    value = value if len(value) <= 200 else value[:197] + "..."
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
