"""Envoy's three renderings of a stats snapshot (stats.py): /stats text, /stats?format=json and
/stats/prometheus, histograms included, in Envoy's formats so tools that parse them work."""

from __future__ import annotations

import math
import re
from typing import Any

from . import histogram
from .istio_metrics import prometheus_families, text_lines
from .stats_tags import TagProducer, default_producer


def _numeric(snap: dict[str, Any]) -> list[tuple[str, int]]:
    out = [(f"{p}.{n}", v) for p, _, _, _, stats in snap["scopes"] for n, v, _ in stats]
    out.extend((f"server.{k}", v) for k, v in snap["server"].items())
    return out


def _histograms(snap: dict[str, Any], name_filter: Any) -> list[tuple[str, list[int], list[int] | None]]:
    """(name, cumulative counts, interval counts or None), sorted by name."""
    out = []
    for prefix, _, _, _, name, cumulative, recent in snap.get("histograms", ()):
        full = f"{prefix}.{name}"
        if name_filter is None or name_filter.search(full):
            out.append((full, histogram.dense(cumulative), None if recent is None else histogram.dense(recent)))
    return sorted(out, key=lambda h: h[0])


def render_text(snap: dict[str, Any], name_filter: Any = None) -> str:
    """Counters and gauges sorted by name, then histograms as ``P0(interval,cumulative) …``."""
    lines = [f"{n}: {v}" for n, v in _numeric(snap)]
    istio = snap.get("istio")
    if istio:
        lines.extend(text_lines(istio["rows"], set(istio["dropped"])))
    if name_filter is not None:
        lines = [line for line in lines if name_filter.search(line.split(": ", 1)[0])]
    lines.sort()
    lines.extend(f"{n}: {histogram.summary(c, i)}" for n, c, i in _histograms(snap, name_filter))
    return "\n".join(lines) + "\n"


def render_json(snap: dict[str, Any], name_filter: Any = None) -> dict[str, Any]:
    """Envoy's StatsJsonRender: ``{"stats": [{"name", "value"}…, {"histograms": {
    "supported_quantiles": […], "computed_quantiles": [{"name", "values": [{"cumulative",
    "interval"}…]}]}}]}``; a quantile with no samples is null."""
    stats: list[dict[str, Any]] = []
    for line in render_text({**snap, "histograms": []}, name_filter).splitlines():
        name, _, value = line.partition(": ")
        stats.append({"name": name, "value": int(value)})
    hists = _histograms(snap, name_filter)
    if hists:
        computed = []
        for name, cumulative, recent in hists:
            total = histogram.quantiles(cumulative)
            last = histogram.quantiles(recent) if recent is not None else [math.nan] * len(total)
            computed.append({"name": name, "values": [{"cumulative": _num(c), "interval": _num(i)}
                                                      for c, i in zip(total, last)]})
        stats.append({"histograms": {"supported_quantiles": list(histogram.PERCENTS),
                                     "computed_quantiles": computed}})
    return {"stats": stats}


def _num(x: float) -> float | int | None:
    if math.isnan(x):
        return None
    return int(x) if x == int(x) else x


def render_prometheus(snap: dict[str, Any], name_filter: Any = None, tags: TagProducer | None = None) -> str:
    """Envoy's exposition: counters, then gauges, then histograms, each family sorted by name;
    metric names and labels come from ``tags``, Envoy's tag extraction (stats_tags.py; its
    default tags when None)."""
    if tags is None:
        tags = default_producer()
    families: dict[str, tuple[str, list[str]]] = {}
    for prefix, _, _, _, stats in snap["scopes"]:
        for name, value, counter in stats:
            metric, labels = _prom_name(tags, f"{prefix}.{name}")
            families.setdefault(metric, ("counter" if counter else "gauge", []))[1].append(
                f"{metric}{{{labels}}} {value}")
    for k, v in snap["server"].items():
        metric, labels = _prom_name(tags, f"server.{k}")
        families.setdefault(metric, ("gauge", []))[1].append(f"{metric}{{{labels}}} {v}")
    for prefix, _, _, _, name, cumulative, _ in snap.get("histograms", ()):
        metric, labels = _prom_name(tags, f"{prefix}.{name}")
        families.setdefault(metric, ("histogram", []))[1].extend(
            _prom_histogram(metric, labels, histogram.dense(cumulative)))
    istio = snap.get("istio")
    if istio:
        for kind, metric, lines in prometheus_families(istio["rows"], set(istio["dropped"]),
                                                       {k: set(v) for k, v in istio["removed"].items()},
                                                       istio["version"]):
            families[metric] = (kind, lines)
    out = []
    for kind in ("counter", "gauge", "histogram"):
        for metric in sorted(m for m, (k, _) in families.items() if k == kind):
            if name_filter is not None and not name_filter.search(metric):
                continue
            out.append(f"# TYPE {metric} {kind}")
            out.extend(families[metric][1])
    return "\n".join(out) + "\n"


def _prom_histogram(metric: str, label: str, counts: list[int]) -> list[str]:
    """``_bucket{…,le="…"}`` at Envoy's default bounds, ``+Inf``, ``_sum`` and ``_count``."""
    sep = "," if label else ""
    lines = [f'{metric}_bucket{{{label}{sep}le="{format(b, ".32g")}"}} {n}'
             for b, n in zip(histogram.DEFAULT_BUCKETS, histogram.buckets(counts))]
    count = histogram.sample_count(counts)
    lines.append(f'{metric}_bucket{{{label}{sep}le="+Inf"}} {count}')
    lines.append(f"{metric}_sum{{{label}}} {format(histogram.sample_sum(counts), '.32g')}")
    lines.append(f"{metric}_count{{{label}}} {count}")
    return lines


def _prom_name(tags: TagProducer, stat: str) -> tuple[str, str]:
    """(metric name, label text) of a full stat name, as Envoy's PrometheusStatsFormatter."""
    extracted, found = tags.produce(stat)
    labels = ",".join(f'{_sanitize(k)}="{_escape(v)}"' for k, v in found)
    return _sanitize(f"envoy_{extracted}"), labels


_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")


def _sanitize(name: str) -> str:
    """Prometheus names are ``[a-zA-Z_][a-zA-Z0-9_]*``: anything else becomes ``_``."""
    name = _UNSAFE.sub("_", name)
    return f"_{name}" if name[:1].isdigit() else name


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
