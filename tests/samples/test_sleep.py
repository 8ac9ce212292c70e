"""Istio's client workloads, sleep and curl: locally they wait for SIGTERM and exit 0."""

from __future__ import annotations

import time

import pytest

from tests.samples.harness import AppRunner, ForwardProxy


@pytest.mark.parametrize(("manifest", "name"), [("sleep/sleep.yaml", "sleep"), ("curl/curl.yaml", "curl")])
def test_client_workload_sleeps_until_sigterm(apps: AppRunner, proxy: ForwardProxy, manifest: str, name: str) -> None:
    client = apps.start(manifest, name, proxy=proxy)
    assert client.port is None  # no containerPort: nothing to serve
    log = client.wait_for_log(f"outbound proxy {proxy.url}")
    assert log.startswith(f"{client.pod}: ")
    time.sleep(0.1)
    assert client.process.poll() is None
    started = time.monotonic()
    assert client.stop(timeout=3) == 0
    assert time.monotonic() - started < 1.0
