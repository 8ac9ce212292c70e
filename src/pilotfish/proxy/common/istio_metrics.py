"""Istio's standard HTTP metrics, as istio/proxy's ``istio.stats`` filter emits them.

``istio_requests_total`` (counter) and ``istio_request_duration_milliseconds``,
``istio_request_bytes``, ``istio_response_bytes`` (histograms, Envoy's default buckets: Istio sets
no ``histogram_bucket_settings`` unless asked to), labelled with the reporter, both workloads,
the service, the protocol, the response code and flags, and the connection security policy.

The request path appends one tuple of values it already holds (cluster, authority, status,
flags, peer, duration, sizes) to a list; every 1,024 requests (and before /stats is read) the
list is counted and folded into preallocated cells keyed by (cluster, authority when the Host
header names the service, status, flags, peer). Label strings are built once per distinct
combination; series with equal labels are summed when /stats is read.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from typing import Any

from ..common.response_flags import flags_string
from .peer_info import PeerInfo

#: Envoy's default histogram buckets (``Stats::HistogramSettingsImpl::defaultBuckets``).
BUCKETS: tuple[float, ...] = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
                              60000, 300000, 600000, 1800000, 3600000)

LABELS = (
    "reporter", "source_workload", "source_canonical_service", "source_canonical_revision",
    "source_workload_namespace", "source_principal", "source_app", "source_version", "source_cluster",
    "destination_workload", "destination_workload_namespace", "destination_principal", "destination_app",
    "destination_version", "destination_service", "destination_canonical_service",
    "destination_canonical_revision", "destination_service_name", "destination_service_namespace",
    "destination_cluster", "request_protocol", "response_code", "grpc_response_status", "response_flags",
    "connection_security_policy",
)
METRICS = ("requests_total", "request_duration_milliseconds", "request_bytes", "response_bytes")
SOURCE, DESTINATION, WAYPOINT = "source", "destination", "waypoint"
_SPECIAL_CLUSTERS = frozenset({"BlackHoleCluster", "PassthroughCluster", "InboundPassthroughCluster",
                               "InboundPassthroughClusterIpv4", "InboundPassthroughClusterIpv6"})
_FLUSH_AT = 1024
MAX_CELLS = 10000  # beyond this, the Host header stops making new series (it is client-chosen)
UNKNOWN = "unknown"


def own_workload(metadata: dict[str, Any]) -> PeerInfo:
    """This proxy's workload from node metadata, with the injector's canonical defaults."""
    me = PeerInfo.from_metadata(metadata)
    labels = metadata.get("LABELS") if isinstance(metadata.get("LABELS"), dict) else {}
    if not me.canonical_name:
        me.canonical_name = labels.get("app.kubernetes.io/name") or me.app or me.workload
    if not me.canonical_revision:
        me.canonical_revision = labels.get("app.kubernetes.io/version") or me.version or "latest"
    return me


def service_of_cluster(name: str) -> tuple[str, str]:
    """(service host, service name) Istio's cluster naming reveals, '' where it does not."""
    if name in _SPECIAL_CLUSTERS:
        return "", name
    parts = name.split("|")
    if len(parts) == 4 and parts[0] in ("outbound", "inbound") and parts[3]:
        return parts[3], parts[3].split(".", 1)[0]
    return "", ""


class Cell:
    """One label combination's counter and histograms (bucket i counts values <= BUCKETS[i])."""

    __slots__ = ("labels", "requests", "duration", "duration_sum", "request_bytes", "request_bytes_sum",
                 "response_bytes", "response_bytes_sum")

    def __init__(self, labels: tuple[str, ...]) -> None:
        n = len(BUCKETS) + 1
        self.labels = labels
        self.requests = 0
        self.duration = [0] * n
        self.duration_sum = 0
        self.request_bytes = [0] * n
        self.request_bytes_sum = 0
        self.response_bytes = [0] * n
        self.response_bytes_sum = 0

    def as_row(self) -> list[Any]:
        return [list(self.labels), self.requests, self.duration, self.duration_sum, self.request_bytes,
                self.request_bytes_sum, self.response_bytes, self.response_bytes_sum]


class IstioStatsRecorder:
    """The compiled ``istio.stats`` filter of one HTTP connection manager."""

    __slots__ = ("reporter", "own", "host_fallback", "cells", "pending", "_services")

    def __init__(self, own: PeerInfo, reporter: str, *, disable_host_header_fallback: bool = False) -> None:
        self.reporter = reporter
        self.own = own
        self.host_fallback = not disable_host_header_fallback
        self.cells: dict[tuple, Cell] = {}
        self.pending: list[tuple] = []  # observations not yet folded into cells
        self._services: dict[str, tuple[str, str]] = {}

    def record(self, stream: Any) -> None:
        """Called once per finished stream: the whole per-request cost of Istio metrics.

        One tuple appended to a list; ``flush`` folds the list into the cells with a C-level
        ``Counter`` (requests repeat the same cluster, code, duration and sizes), so bucketing
        runs once per distinct observation rather than once per request.
        """
        pending = self.pending
        pending.append((stream.cluster, stream.authority, stream.status, stream.flags, stream.peer,
                        int((stream.conn.loop.time() - stream.start) * 1000), stream.rx, stream.tx))
        if len(pending) >= _FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        pending, self.pending = self.pending, []
        cells = self.cells
        fallback = self.host_fallback
        for (cluster, authority, status, flags, peer, ms, rx, tx), n in Counter(pending).items():
            key = (cluster.name if cluster is not None else "", authority if fallback else None, status, flags, peer)
            cell = cells.get(key)
            if cell is None:
                cell = self._new_cell(key)
            cell.requests += n
            cell.duration[bisect_left(BUCKETS, ms)] += n
            cell.duration_sum += ms * n
            cell.request_bytes[bisect_left(BUCKETS, rx)] += n
            cell.request_bytes_sum += rx * n
            cell.response_bytes[bisect_left(BUCKETS, tx)] += n
            cell.response_bytes_sum += tx * n

    def _new_cell(self, key: tuple) -> Cell:
        if len(self.cells) >= MAX_CELLS and key[1] is not None:
            key = (key[0], None) + key[2:]
            cell = self.cells.get(key)
            if cell is not None:
                return cell
        cluster, authority, status, flags, peer = key
        labels = self.labels(cluster, authority.decode("latin-1") if authority else "", status, flags, peer)
        cell = self.cells[key] = Cell(labels)
        return cell

    def labels(self, cluster: str, host: str, status: int, flags: int, peer: PeerInfo | None) -> tuple[str, ...]:
        """Istio's label values, in its order (istio/proxy ``populatePeerInfo``)."""
        svc_host, svc_name = self._services.get(cluster) or self._service(cluster)
        if not svc_host:
            svc_host = host
        if not svc_name:
            svc_name = host
        own = self.own
        p = peer or _NO_PEER
        peer_ns = p.namespace or UNKNOWN
        if self.reporter == SOURCE:
            middle = (
                own.workload or UNKNOWN, own.canonical_name or UNKNOWN, own.canonical_revision or "latest",
                own.namespace or UNKNOWN, UNKNOWN, own.app or UNKNOWN, own.version or UNKNOWN,
                own.cluster or UNKNOWN,
                p.workload or UNKNOWN, peer_ns, UNKNOWN, p.app or UNKNOWN, p.version or UNKNOWN,
                svc_host or UNKNOWN, p.canonical_name or UNKNOWN, p.canonical_revision or "latest",
                svc_name or UNKNOWN, peer_ns, p.cluster or UNKNOWN,
            )
            security = UNKNOWN
        else:
            canonical = own.canonical_name or UNKNOWN
            middle = (
                p.workload or UNKNOWN, p.canonical_name or UNKNOWN, p.canonical_revision or "latest",
                peer_ns, UNKNOWN, p.app or UNKNOWN, p.version or UNKNOWN, p.cluster or UNKNOWN,
                own.workload or UNKNOWN, own.namespace or UNKNOWN, UNKNOWN, own.app or UNKNOWN,
                own.version or UNKNOWN, svc_host or canonical, canonical, own.canonical_revision or "latest",
                svc_name or canonical, own.namespace or UNKNOWN, own.cluster or UNKNOWN,
            )
            security = "none"  # no mutual TLS between proxies yet
        return (self.reporter, *middle, "http", str(status), "", flags_string(flags), security)

    def _service(self, cluster: str) -> tuple[str, str]:
        found = self._services[cluster] = service_of_cluster(cluster)
        return found

    def rows(self) -> list[list[Any]]:
        self.flush()
        return [c.as_row() for c in list(self.cells.values()) if c.requests]


_NO_PEER = PeerInfo()


class IstioMetrics:
    """Every recorder of the process, plus what the output needs: dropped metrics and labels."""

    def __init__(self, istio_version: str = "") -> None:
        self.recorders: dict[tuple, IstioStatsRecorder] = {}
        self.istio_version = istio_version
        self.dropped: set[str] = set()
        self.removed_labels: dict[str, set[str]] = {}  # metric → labels left out

    def recorder(self, key: tuple, own: PeerInfo, reporter: str, disable_host_header_fallback: bool) -> IstioStatsRecorder:
        """The recorder of one listener, kept across config updates so its counts live on."""
        r = self.recorders.get(key)
        if r is None or r.reporter != reporter or r.host_fallback == disable_host_header_fallback:
            r = self.recorders[key] = IstioStatsRecorder(
                own, reporter, disable_host_header_fallback=disable_host_header_fallback)
        return r

    def rows(self) -> list[list[Any]]:
        """One row per label set: recorders of replaced filter configs (an LDS update makes new
        ones) count into the same series, as Envoy's stats store keeps one metric per name."""
        return merge_rows([r.rows() for r in list(self.recorders.values())])


def merge_rows(groups: list[list[list[Any]]]) -> list[list[Any]]:
    """Sum rows with equal labels (several recorders, several cells, several workers)."""
    merged: dict[tuple[str, ...], list[Any]] = {}
    for rows in groups:
        for labels, n, d, ds, q, qs, r, rs in rows:
            key = tuple(labels)
            m = merged.get(key)
            if m is None:
                merged[key] = [list(labels), n, list(d), ds, list(q), qs, list(r), rs]
            else:
                m[1] += n
                m[3] += ds
                m[5] += qs
                m[7] += rs
                for dst, src in ((m[2], d), (m[4], q), (m[6], r)):
                    for i, v in enumerate(src):
                        dst[i] += v
    return list(merged.values())


def _label_text(names: tuple[str, ...], values: list[str]) -> str:
    return ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values))


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _project(metric: str, rows: list[list[Any]], removed: dict[str, set[str]]) -> tuple[tuple[str, ...], list[list[Any]]]:
    """Drop the labels a MetricConfig removed for ``metric``, summing rows that become equal."""
    gone = removed.get(metric, set()) | removed.get("", set())
    if not gone:
        return LABELS, rows
    keep = [i for i, n in enumerate(LABELS) if n not in gone]
    names = tuple(LABELS[i] for i in keep)
    projected = [[[row[0][i] for i in keep], *row[1:]] for row in rows]
    return names, merge_rows([projected])


def prometheus_families(rows: list[list[Any]], dropped: set[str], removed: dict[str, set[str]],
                        istio_version: str) -> list[tuple[str, str, list[str]]]:
    """(type, metric name, sample lines) in Envoy's exposition shape (custom namespace stripped)."""
    out: list[tuple[str, str, list[str]]] = [
        ("gauge", "istio_build", [f'istio_build{{component="proxy",tag="{_escape(istio_version or UNKNOWN)}"}} 1'])]
    if "requests_total" not in dropped:
        names, proj = _project("requests_total", rows, removed)
        lines = sorted(f"istio_requests_total{{{_label_text(names, r[0])}}} {r[1]}" for r in proj)
        if lines:
            out.append(("counter", "istio_requests_total", lines))
    for metric, bi, si in (("request_duration_milliseconds", 2, 3), ("request_bytes", 4, 5),
                           ("response_bytes", 6, 7)):
        if metric in dropped:
            continue
        names, proj = _project(metric, rows, removed)
        name = f"istio_{metric}"
        lines: list[str] = []
        for r in sorted(proj, key=lambda r: r[0]):
            labels = _label_text(names, r[0])
            cumulative = 0
            for bound, n in zip(BUCKETS, r[bi]):
                cumulative += n
                lines.append(f'{name}_bucket{{{labels},le="{bound:.32g}"}} {cumulative}')
            lines.append(f'{name}_bucket{{{labels},le="+Inf"}} {r[1]}')
            lines.append(f"{name}_sum{{{labels}}} {r[si]:.32g}")
            lines.append(f"{name}_count{{{labels}}} {r[1]}")
        if lines:
            out.append(("histogram", name, lines))
    return out


def text_lines(rows: list[list[Any]], dropped: set[str]) -> list[str]:
    """Envoy's /stats form: the tags folded into the stat name, histograms as quantiles."""
    lines = []
    for r in rows:
        tags = ".".join(f"{n}.{v}" for n, v in zip(LABELS, r[0]))
        if "requests_total" not in dropped:
            lines.append(f"istiocustom.istio_requests_total.{tags}: {r[1]}")
        for metric, bi in (("request_duration_milliseconds", 2), ("request_bytes", 4), ("response_bytes", 6)):
            if metric not in dropped:
                lines.append(f"istiocustom.istio_{metric}.{tags}: {quantiles_text(r[bi])}")
    return lines


_QUANTILES = (0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1)


def quantiles_text(counts: list[int]) -> str:
    """Envoy's ``P0(interval,cumulative) …`` line; values are bucket upper bounds (no interval)."""
    total = sum(counts)
    if not total:
        return "No recorded values"
    parts = []
    for q in _QUANTILES:
        target = max(1, q * total)
        cumulative = 0
        value: float = float("inf")
        for bound, n in zip(BUCKETS, counts):
            cumulative += n
            if cumulative >= target:
                value = bound
                break
        parts.append(f"P{q * 100:g}(nan,{value:g})")
    return " ".join(parts)
