"""The composition root end to end: ``pilotfish proxy`` processes stopped while they start.

A proxy waits up to initial_fetch_timeout (15 s by default) for its first xDS config before its
listeners accept. SIGTERM or SIGINT in that time stops it at once, as it stops Envoy.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pilotfish.xds.testing import FakeAds
from pilotfish.xds.type_urls import CLUSTER

from .ads import ads_bootstrap
from .helpers import PILOTFISH, children


@contextlib.contextmanager
def proxy_process(doc: dict, tmp: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    path = tmp / "envoy.yaml"
    path.write_text(yaml.safe_dump(doc))
    proc = subprocess.Popen([*PILOTFISH, "proxy", "-c", str(path), *args], stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            for pid in children(proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc.kill()
            proc.wait()


async def exited_within(proc: subprocess.Popen[bytes], seconds: float) -> int | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return proc.returncode
        await asyncio.sleep(0.02)
    return None


@pytest.mark.parametrize(("sig", "args"), [
    (signal.SIGTERM, ()),
    (signal.SIGINT, ()),
    (signal.SIGTERM, ("--concurrency", "2")),
], ids=["SIGTERM", "SIGINT", "SIGTERM-concurrency-2"])
async def test_a_signal_during_the_initial_fetch_stops_the_proxy_at_once(
        sig: signal.Signals, args: tuple[str, ...], tmp_path: Path) -> None:
    async with FakeAds(silent=True) as ads:  # takes the stream, never sends config
        with proxy_process(ads_bootstrap(ads.port), tmp_path, *args) as proc:
            await ads.wait_for(lambda r: r.type_url == CLUSTER, timeout=15)  # fetching now
            if args:  # both workers are up: worker 0 fetches, the sibling waits on its relay
                deadline = time.monotonic() + 10
                while len(children(proc.pid)) < 2 and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                await asyncio.sleep(0.3)
            started = time.monotonic()
            proc.send_signal(sig)
            code = await exited_within(proc, 2.0)
            assert code == 0, f"still running {time.monotonic() - started:.1f}s after {sig.name}"
            assert children(proc.pid) == set()
