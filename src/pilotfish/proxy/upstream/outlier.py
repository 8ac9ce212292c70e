"""Envoy's outlier detection (Outlier::DetectorImpl) for one cluster, without timers.

The request path reports each upstream result (``put_http_status`` for a response head,
``put_result`` for connect failures, timeouts and, with ``split_external_local_origin_errors``,
connect successes); the owner calls ``on_interval()`` every ``interval`` seconds. Ejection and
return to service go through HostHealth (FAILED_OUTLIER_CHECK), which flips ``Host.healthy``.

Envoy's rules kept here:
* consecutive 5xx / gateway failures (502-504) / local-origin failures count per host; reaching
  the threshold ejects when the enforcing_* percentage lets it and ejecting keeps the ejected
  share of all hosts within ``max_ejection_percent`` (10% by default, strictly: with fewer than
  10 hosts nothing is ejected unless ``always_eject_one_host``);
* the n-th ejection in a row lasts ``min(base_ejection_time * n, max_ejection_time)`` plus a
  jitter in [0, max_ejection_time_jitter]; every interval a host spent healthy lowers n by one;
* success-rate and failure-percentage ejection run on each interval over the previous
  interval's counts of hosts with enough volume.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ...xds.backoff import RandomSource
from .host_health import FAILED_ACTIVE_HC, FAILED_OUTLIER_CHECK, HostHealth

# Outlier::Result
LOCAL_ORIGIN_CONNECT_SUCCESS, LOCAL_ORIGIN_CONNECT_SUCCESS_FINAL, LOCAL_ORIGIN_TIMEOUT, \
    LOCAL_ORIGIN_CONNECT_FAILED, EXT_ORIGIN_REQUEST_SUCCESS, EXT_ORIGIN_REQUEST_FAILED = range(6)
# envoy.data.cluster.v3.OutlierEjectionType
CONSECUTIVE_5XX, CONSECUTIVE_GATEWAY_FAILURE, SUCCESS_RATE, CONSECUTIVE_LOCAL_ORIGIN_FAILURE, \
    SUCCESS_RATE_LOCAL_ORIGIN, FAILURE_PERCENTAGE, FAILURE_PERCENTAGE_LOCAL_ORIGIN = range(7)

_RESULT_CODE = {EXT_ORIGIN_REQUEST_SUCCESS: 200, LOCAL_ORIGIN_CONNECT_SUCCESS_FINAL: 200,
                LOCAL_ORIGIN_TIMEOUT: 504, LOCAL_ORIGIN_CONNECT_FAILED: 503, EXT_ORIGIN_REQUEST_FAILED: 500}


@dataclass(frozen=True, slots=True)
class OutlierSettings:
    """envoy.config.cluster.v3.OutlierDetection with Envoy's defaults (times in seconds)."""

    consecutive_5xx: int = 5
    consecutive_gateway_failure: int = 5
    consecutive_local_origin_failure: int = 5
    interval: float = 10.0
    base_ejection_time: float = 30.0
    max_ejection_time: float = 300.0  # compile: max(300 s, base) when unset
    max_ejection_time_jitter: float = 0.0
    max_ejection_percent: int = 10
    always_eject_one_host: bool = False
    enforcing_consecutive_5xx: int = 100
    enforcing_consecutive_gateway_failure: int = 0
    enforcing_consecutive_local_origin_failure: int = 100
    enforcing_success_rate: int = 100
    enforcing_local_origin_success_rate: int = 100
    enforcing_failure_percentage: int = 0
    enforcing_failure_percentage_local_origin: int = 0
    success_rate_minimum_hosts: int = 5
    success_rate_request_volume: int = 100
    success_rate_stdev_factor: int = 1900  # divided by 1000
    failure_percentage_threshold: int = 85
    failure_percentage_minimum_hosts: int = 5
    failure_percentage_request_volume: int = 50
    split_external_local_origin_errors: bool = False
    successful_active_health_check_uneject_host: bool = True


class _SuccessRate:
    """Two buckets: the one written now and the one from the last full interval."""

    __slots__ = ("total", "success", "last_total", "last_success")

    def __init__(self) -> None:
        self.total = self.success = self.last_total = self.last_success = 0

    def swap(self) -> None:
        self.last_total, self.last_success = self.total, self.success
        self.total = self.success = 0

    def rate_and_volume(self) -> tuple[float, int] | None:
        if not self.last_total:
            return None
        return self.last_success * 100.0 / self.last_total, self.last_total


class HostMonitor:
    __slots__ = ("consecutive_5xx", "consecutive_gateway_failure", "consecutive_local_origin_failure",
                 "num_ejections", "backoff", "last_ejection", "last_unejection", "jitter",
                 "external", "local")

    def __init__(self) -> None:
        self.consecutive_5xx = self.consecutive_gateway_failure = self.consecutive_local_origin_failure = 0
        self.num_ejections = 0
        self.backoff = 0  # Envoy's eject_time_backoff_
        self.last_ejection: float | None = None
        self.last_unejection: float | None = None
        self.jitter = 0.0
        self.external = _SuccessRate()
        self.local = _SuccessRate()


class OutlierStats:
    COUNTERS = ("ejections_enforced_total", "ejections_overflow", "ejections_total",
                "ejections_consecutive_5xx", "ejections_success_rate",
                "ejections_detected_consecutive_5xx", "ejections_enforced_consecutive_5xx",
                "ejections_detected_consecutive_gateway_failure", "ejections_enforced_consecutive_gateway_failure",
                "ejections_detected_consecutive_local_origin_failure",
                "ejections_enforced_consecutive_local_origin_failure",
                "ejections_detected_success_rate", "ejections_enforced_success_rate",
                "ejections_detected_local_origin_success_rate", "ejections_enforced_local_origin_success_rate",
                "ejections_detected_failure_percentage", "ejections_enforced_failure_percentage",
                "ejections_detected_local_origin_failure_percentage",
                "ejections_enforced_local_origin_failure_percentage")
    __slots__ = COUNTERS + ("ejections_active",)

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def values(self) -> Iterable[tuple[str, int, bool]]:
        """``outlier_detection.*`` stats: (name, value, is_counter)."""
        for name in self.COUNTERS:
            yield "outlier_detection." + name, getattr(self, name), True
        yield "outlier_detection.ejections_active", self.ejections_active, False


_TYPE_STAT = {CONSECUTIVE_5XX: "consecutive_5xx", CONSECUTIVE_GATEWAY_FAILURE: "consecutive_gateway_failure",
              CONSECUTIVE_LOCAL_ORIGIN_FAILURE: "consecutive_local_origin_failure",
              SUCCESS_RATE: "success_rate", SUCCESS_RATE_LOCAL_ORIGIN: "local_origin_success_rate",
              FAILURE_PERCENTAGE: "failure_percentage",
              FAILURE_PERCENTAGE_LOCAL_ORIGIN: "local_origin_failure_percentage"}


class OutlierDetector:
    def __init__(self, settings: OutlierSettings, health: HostHealth, now: Callable[[], float],
                 rng: RandomSource) -> None:
        self.settings = settings
        self.health = health
        self.now = now
        self.rng = rng
        self.monitors: dict[Any, HostMonitor] = {}
        self.stats = OutlierStats()
        s = settings
        self._enforcing = {
            CONSECUTIVE_5XX: s.enforcing_consecutive_5xx,
            CONSECUTIVE_GATEWAY_FAILURE: s.enforcing_consecutive_gateway_failure,
            CONSECUTIVE_LOCAL_ORIGIN_FAILURE: s.enforcing_consecutive_local_origin_failure,
            SUCCESS_RATE: s.enforcing_success_rate,
            SUCCESS_RATE_LOCAL_ORIGIN: s.enforcing_local_origin_success_rate,
            FAILURE_PERCENTAGE: s.enforcing_failure_percentage,
            FAILURE_PERCENTAGE_LOCAL_ORIGIN: s.enforcing_failure_percentage_local_origin,
        }
        self.sr_average = {SUCCESS_RATE: -1.0, SUCCESS_RATE_LOCAL_ORIGIN: -1.0}
        self.sr_threshold = {SUCCESS_RATE: -1.0, SUCCESS_RATE_LOCAL_ORIGIN: -1.0}

    # ---- membership ----------------------------------------------------------------------
    def set_hosts(self, hosts: Iterable[Any]) -> None:
        """The cluster's hosts now: monitors for new ones, removed ones forgotten (a removed
        ejected host no longer counts as active)."""
        current = list(hosts)
        keep = set(map(id, current))
        for host in [h for h in self.monitors if id(h) not in keep]:
            if self.health.get(host, FAILED_OUTLIER_CHECK):
                self.stats.ejections_active -= 1
                self.health.clear(host, FAILED_OUTLIER_CHECK, notify=False)
            del self.monitors[host]
        for host in current:
            if host not in self.monitors:
                self.monitors[host] = HostMonitor()

    def is_ejected(self, host: Any) -> bool:
        return self.health.get(host, FAILED_OUTLIER_CHECK)

    # ---- results from the request path ----------------------------------------------------
    def put_http_status(self, host: Any, code: int) -> None:
        """A response status from the upstream (for gRPC, the grpc-status mapped to HTTP)."""
        m = self.monitors.get(host)
        if m is None:
            return
        s = self.settings
        m.external.total += 1
        if 500 <= code < 600:
            if 502 <= code <= 504:
                m.consecutive_gateway_failure += 1
                if m.consecutive_gateway_failure == s.consecutive_gateway_failure:
                    self._consecutive_error(host, m, CONSECUTIVE_GATEWAY_FAILURE)
            else:
                m.consecutive_gateway_failure = 0
            m.consecutive_5xx += 1
            if m.consecutive_5xx == s.consecutive_5xx:
                self._consecutive_error(host, m, CONSECUTIVE_5XX)
        else:
            m.external.success += 1
            m.consecutive_5xx = 0
            m.consecutive_gateway_failure = 0

    def put_result(self, host: Any, result: int, code: int | None = None) -> None:
        """A local-origin event (connect failed, timeout, connect success) or a non-HTTP result."""
        if not self.settings.split_external_local_origin_errors:
            if code is None:
                code = _RESULT_CODE.get(result)
            if code is not None:
                self.put_http_status(host, code)
            return
        m = self.monitors.get(host)
        if m is None:
            return
        if result in (LOCAL_ORIGIN_CONNECT_SUCCESS, LOCAL_ORIGIN_CONNECT_SUCCESS_FINAL):
            self._local_success(m)
        elif result in (LOCAL_ORIGIN_TIMEOUT, LOCAL_ORIGIN_CONNECT_FAILED):
            m.local.total += 1
            m.consecutive_local_origin_failure += 1
            if m.consecutive_local_origin_failure == self.settings.consecutive_local_origin_failure:
                self._consecutive_error(host, m, CONSECUTIVE_LOCAL_ORIGIN_FAILURE)
        elif result == EXT_ORIGIN_REQUEST_FAILED:
            self.put_http_status(host, 503)
        else:  # EXT_ORIGIN_REQUEST_SUCCESS
            self.put_http_status(host, 200)
            self._local_success(m)

    @staticmethod
    def _local_success(m: HostMonitor) -> None:
        m.local.total += 1
        m.local.success += 1
        m.consecutive_local_origin_failure = 0

    def _consecutive_error(self, host: Any, m: HostMonitor, kind: int) -> None:
        if self.health.get(host, FAILED_OUTLIER_CHECK):
            return
        self._detected(kind)
        self._eject(host, m, kind)
        if kind == CONSECUTIVE_5XX:
            self.stats.ejections_consecutive_5xx += 1  # deprecated counter, kept as Envoy
            m.consecutive_5xx = 0
        elif kind == CONSECUTIVE_GATEWAY_FAILURE:
            m.consecutive_gateway_failure = 0
        else:
            m.consecutive_local_origin_failure = 0

    # ---- ejection ------------------------------------------------------------------------
    def _detected(self, kind: int) -> None:
        name = "ejections_detected_" + _TYPE_STAT[kind]
        setattr(self.stats, name, getattr(self.stats, name) + 1)

    def _enforced(self, kind: int) -> bool:
        percent = self._enforcing[kind]
        return percent >= 100 or (percent > 0 and self.rng.getrandbits(64) % 100 < percent)

    def _eject(self, host: Any, m: HostMonitor, kind: int) -> None:
        s = self.settings
        stats = self.stats
        active = stats.ejections_active
        ejected_percent = 100.0 * (active + 1) / len(self.monitors)
        allowed = ejected_percent <= min(100, s.max_ejection_percent)
        if s.always_eject_one_host and active == 0:
            allowed = True
        if not allowed:
            stats.ejections_overflow += 1
            return
        if kind in (CONSECUTIVE_5XX, SUCCESS_RATE):
            stats.ejections_total += 1  # deprecated counter
        if not self._enforced(kind):
            return
        stats.ejections_active += 1
        stats.ejections_enforced_total += 1
        name = "ejections_enforced_" + _TYPE_STAT[kind]
        setattr(stats, name, getattr(stats, name) + 1)
        m.num_ejections += 1
        m.last_ejection = self.now()
        jitter_ms = int(s.max_ejection_time_jitter * 1000)
        m.jitter = (self.rng.getrandbits(64) % (jitter_ms + 1)) / 1000.0
        if m.backoff * s.base_ejection_time < s.max_ejection_time + s.base_ejection_time:
            m.backoff += 1
        self.health.set(host, FAILED_OUTLIER_CHECK)

    def _uneject(self, host: Any, m: HostMonitor) -> None:
        self.stats.ejections_active -= 1
        m.consecutive_5xx = m.consecutive_gateway_failure = m.consecutive_local_origin_failure = 0
        m.last_unejection = self.now()
        self.health.clear(host, FAILED_OUTLIER_CHECK)

    def on_health_check_success(self, host: Any) -> None:
        """An active health check passed: an ejected host that passes active checking returns
        (successful_active_health_check_uneject_host, on by default)."""
        m = self.monitors.get(host)
        if (m is not None and self.settings.successful_active_health_check_uneject_host
                and not self.health.get(host, FAILED_ACTIVE_HC) and self.health.get(host, FAILED_OUTLIER_CHECK)):
            self._uneject(host, m)

    # ---- the interval timer ------------------------------------------------------------
    def on_interval(self) -> float:
        """One analysis sweep; returns the delay until the next one."""
        now = self.now()
        s = self.settings
        for host, m in self.monitors.items():
            if self.health.get(host, FAILED_OUTLIER_CHECK) and m.last_ejection is not None:
                duration = min(s.base_ejection_time * m.backoff, s.max_ejection_time) + m.jitter
                if now - m.last_ejection >= duration - 1e-9:
                    self._uneject(host, m)
            m.external.swap()
            m.local.swap()
        self._rate_ejections(SUCCESS_RATE)
        self._rate_ejections(SUCCESS_RATE_LOCAL_ORIGIN)
        for host, m in self.monitors.items():
            if (not self.health.get(host, FAILED_OUTLIER_CHECK) and m.last_unejection is not None
                    and now - m.last_unejection >= s.interval and m.backoff):
                m.backoff -= 1
        return s.interval

    def _rate_ejections(self, kind: int) -> None:
        s = self.settings
        local = kind == SUCCESS_RATE_LOCAL_ORIGIN
        self.sr_average[kind] = self.sr_threshold[kind] = -1.0
        n_hosts = len(self.monitors)
        if n_hosts < s.success_rate_minimum_hosts and n_hosts < s.failure_percentage_minimum_hosts:
            return
        sr_hosts: list[tuple[Any, HostMonitor, float]] = []
        fp_hosts: list[tuple[Any, HostMonitor, float]] = []
        for host, m in self.monitors.items():
            if self.health.get(host, FAILED_OUTLIER_CHECK):
                continue
            rv = (m.local if local else m.external).rate_and_volume()
            if rv is None:
                continue
            rate, volume = rv
            if volume >= s.success_rate_request_volume:
                sr_hosts.append((host, m, rate))
            if volume >= s.failure_percentage_request_volume:
                fp_hosts.append((host, m, rate))
        if sr_hosts and len(sr_hosts) >= s.success_rate_minimum_hosts:
            mean = sum(r for _, _, r in sr_hosts) / len(sr_hosts)
            stdev = math.sqrt(sum((r - mean) ** 2 for _, _, r in sr_hosts) / len(sr_hosts))
            threshold = mean - (s.success_rate_stdev_factor / 1000.0) * stdev
            self.sr_average[kind], self.sr_threshold[kind] = mean, threshold
            for host, m, rate in sr_hosts:
                if rate < threshold:
                    self.stats.ejections_success_rate += 1  # deprecated counter
                    self._detected(kind)
                    if not self.health.get(host, FAILED_OUTLIER_CHECK):
                        self._eject(host, m, kind)
        if fp_hosts and len(fp_hosts) >= s.failure_percentage_minimum_hosts:
            fp_kind = FAILURE_PERCENTAGE_LOCAL_ORIGIN if local else FAILURE_PERCENTAGE
            for host, m, rate in fp_hosts:
                if 100.0 - rate >= s.failure_percentage_threshold:
                    self._detected(fp_kind)
                    if not self.health.get(host, FAILED_OUTLIER_CHECK):
                        self._eject(host, m, fp_kind)
