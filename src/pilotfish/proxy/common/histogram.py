"""Envoy's histograms: log-linear bins as libcircllhist's, read as Envoy's admin reads them.

Envoy records integer milliseconds into a circllhist: two significant digits per bin (0; 1.0,
1.1 … 9.9 for one-digit values; 10 … 99; 100, 110 … 990; 1000, 1100 …). Integer samples fill
only the bins that start at an integer, so the bins here are the integers 0–99 and then two
significant digits, and a sample is counted with one table index (a bisect on ``LOWER`` past
a second) and one ``+= 1``::

    ms = floor(seconds * 1000)
    counts[BIN[ms] if ms < FAST else bisect_right(LOWER, ms)] += 1

Everything else (Prometheus buckets with Envoy's default bounds, the approximate sum,
the P0…P100 quantiles) is computed from the counts when the admin is read, with
libcircllhist's formulas (``hist_approx_count_below``, ``hist_approx_sum``,
``hist_approx_quantile``), so the numbers are Envoy's for the same samples.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Iterable

# Lower bounds of the bins after the zero bin; bin i (i >= 1) starts at LOWER[i - 1].
_bounds: list[int] = list(range(1, 100))
_step, _start = 10, 100
while _start < 10**10:  # ~116 days in milliseconds; longer samples share the last bin
    _bounds.extend(range(_start, _start * 10, _step))
    _start, _step = _start * 10, _step * 10
LOWER: tuple[int, ...] = tuple(_bounds)
NBINS = len(LOWER) + 1
#: The bin of every millisecond value below FAST, precomputed: on the request path a tuple index
#: (specialised by the interpreter, unlike an array's); longer samples take the bisect. With
#: ``math.floor`` rather than ``int()`` for the milliseconds, recording a sample costs ~1.0k
#: instructions against ~1.75k (callgrind). 1 s keeps the table at 8 kB per process.
FAST = 1000
BIN: tuple[int, ...] = tuple(bisect_right(LOWER, ms) for ms in range(FAST))


def _width(i: int) -> float:
    """The circllhist bin width of bin i: 0 for the zero bin, 0.1 for 1–9, then 10^(digits-2)."""
    if i == 0:
        return 0.0
    low = LOWER[i - 1]
    return 0.1 if low < 10 else float(10 ** (len(str(low)) - 2))


def _left(i: int) -> float:
    return 0.0 if i == 0 else float(LOWER[i - 1])


_WIDTH = tuple(_width(i) for i in range(NBINS))
_LEFT = tuple(_left(i) for i in range(NBINS))
_MID = tuple(left + w / 2 for left, w in zip(_LEFT, _WIDTH))

#: Envoy's default histogram bucket bounds (HistogramSettingsImpl::defaultBuckets).
DEFAULT_BUCKETS: tuple[float, ...] = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
                                      30000, 60000, 300000, 600000, 1800000, 3600000)
#: How many bins lie wholly at or below each bound (count_below counts a bin when its upper edge
#: is <= the bound).
_BELOW = tuple(sum(1 for i in range(NBINS) if _LEFT[i] + _WIDTH[i] <= b) for b in DEFAULT_BUCKETS)
#: Envoy's supported quantiles, and the same as shown (``P{:g}`` of 100 q).
QUANTILES: tuple[float, ...] = (0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1)
PERCENTS: tuple[float, ...] = (0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100)


def new_counts() -> list[int]:
    return [0] * NBINS


def record(counts: list[int], ms: int) -> None:
    """Count one sample (for callers off the request path; hot paths inline the line)."""
    counts[BIN[ms] if ms < FAST else bisect_right(LOWER, ms)] += 1


def sparse(counts: list[int]) -> dict[str, int]:
    """Non-zero bins as a JSON-safe dict, for snapshots."""
    return {str(i): n for i, n in enumerate(counts) if n}


def dense(bins: dict[str, int] | None) -> list[int]:
    out = new_counts()
    for i, n in (bins or {}).items():
        out[int(i)] += n
    return out


def add_sparse(into: dict[str, int], bins: dict[str, int]) -> None:
    for i, n in bins.items():
        into[i] = into.get(i, 0) + n


def sample_count(counts: Iterable[int]) -> int:
    return sum(counts)


def sample_sum(counts: list[int]) -> float:
    """libcircllhist's hist_approx_sum: each bin's midpoint times its count."""
    return sum(_MID[i] * n for i, n in enumerate(counts) if n)


def buckets(counts: list[int]) -> list[int]:
    """Cumulative counts at Envoy's default bounds (``_bucket{le=…}``)."""
    out, running, upto = [], 0, 0
    for below in _BELOW:
        running += sum(counts[upto:below])
        upto = below
        out.append(running)
    return out


def quantiles(counts: list[int]) -> list[float]:
    """libcircllhist's hist_approx_quantile at Envoy's supported quantiles (nan when empty)."""
    total = sum(counts)
    if total == 0:
        return [math.nan] * len(QUANTILES)
    used = [i for i, n in enumerate(counts) if n]
    b = 0
    i = used[0]
    width, left, lower, upper = _WIDTH[i], _LEFT[i], 0.0, float(counts[i])
    out = []
    for q in QUANTILES:
        target = total * q
        while b < len(used) - 1 and upper < target:
            b += 1
            i = used[b]
            width, left, lower, upper = _WIDTH[i], _LEFT[i], upper, upper + counts[i]
        if lower == target:
            out.append(left)
        elif upper == target:
            out.append(left + width)
        elif width == 0:
            out.append(left)
        else:
            out.append(left + (target - lower) / (upper - lower) * width)
    return out


def fmt_value(x: float) -> str:
    """fmt's ``{}`` for a double: the shortest round-trip form, ``1`` for 1.0, ``nan``."""
    if math.isnan(x):
        return "nan"
    s = repr(float(x))
    return s[:-2] if s.endswith(".0") else s


def fmt_g(x: float) -> str:
    """fmt's ``{:g}`` (as printf's %g)."""
    return format(x, "g")


def summary(cumulative: list[int], interval: list[int] | None) -> str:
    """Envoy's ParentHistogram::quantileSummary: ``P0(interval,cumulative) P25(…) …``."""
    if not any(cumulative):
        return "No recorded values"
    total = quantiles(cumulative)
    recent = quantiles(interval) if interval is not None else [math.nan] * len(QUANTILES)
    return " ".join(f"P{fmt_g(p)}({fmt_value(a)},{fmt_value(b)})" for p, a, b in zip(PERCENTS, recent, total))
