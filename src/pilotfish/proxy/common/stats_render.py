"""Envoy's three renderings of a stats snapshot (stats.py): /stats text, /stats?format=json and
/stats/prometheus, histograms included, in Envoy's formats so tools that parse them work."""

from __future__ import annotations

import math
from typing import Any

from . import histogram
from .istio_metrics import prometheus_families, text_lines


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


def render_prometheus(snap: dict[str, Any], name_filter: Any = None) -> str:
    """Envoy's exposition: counters, then gauges, then histograms, each family sorted by name."""
    families: dict[str, tuple[str, list[str]]] = {}
    for prefix, family, tag, tag_value, stats in snap["scopes"]:
        label = _label(prefix, family, tag, tag_value)
        for name, value, counter in stats:
            metric, labels = _prom_name(family, name, label)
            families.setdefault(metric, ("counter" if counter else "gauge", []))[1].append(
                f"{metric}{{{labels}}} {value}")
    for k, v in snap["server"].items():
        families[f"envoy_server_{k}"] = ("gauge", [f"envoy_server_{k}{{}} {v}"])
    for prefix, family, tag, tag_value, name, cumulative, _ in snap.get("histograms", ()):
        metric = f"envoy_{family}_{name}".replace(".", "_")
        label = _label(prefix, family, tag, tag_value)
        families.setdefault(metric, ("histogram", []))[1].extend(
            _prom_histogram(metric, label, histogram.dense(cumulative)))
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


def _label(prefix: str, family: str, tag: str, tag_value: str) -> str:
    label = f'{tag}="{_escape(tag_value)}"' if tag else ""
    if family == "http.rds":  # http.<stat_prefix>.rds.<route>: both are tags in Envoy
        stat_prefix = prefix[len("http."):-len(f".rds.{tag_value}")]
        label = f'envoy_http_conn_manager_prefix="{_escape(stat_prefix)}",{label}'
    return label


def _prom_name(family: str, name: str, label: str) -> tuple[str, str]:
    """Envoy's tag extraction for the response-code stats."""
    for prefix in ("upstream_rq_", "downstream_rq_"):
        if name.startswith(prefix):
            rest = name[len(prefix):]
            if len(rest) == 3 and rest.isdigit():
                return f"envoy_{family}_{prefix[:-1]}", f'envoy_response_code="{rest}",{label}'
            if len(rest) == 3 and rest.endswith("xx") and rest[0].isdigit():
                return f"envoy_{family}_{prefix}xx", f'envoy_response_code_class="{rest[0]}",{label}'
    return f"envoy_{family}_{name}".replace(".", "_"), label


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
