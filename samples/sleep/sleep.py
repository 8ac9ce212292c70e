"""The local stand-in for Istio's sleep and curl workloads (``/bin/sleep infinity`` in a curl
image): it waits until SIGTERM or SIGINT and exits 0. Users run their commands "inside" the
workload with its environment, whose HTTP_PROXY is the workload's sidecar.

    python sleep.py
"""

from __future__ import annotations

import os
import signal
import sys


def main() -> int:
    signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)  # taken by sigwait, not by the default action
    proxy = os.environ.get("HTTP_PROXY") or os.environ.get("http_proxy") or "(none)"
    print(f"{os.environ.get('HOSTNAME', 'sleep')}: sleeping until SIGTERM; outbound proxy {proxy}", flush=True)
    signal.sigwait(signals)
    return 0


if __name__ == "__main__":
    sys.exit(main())
