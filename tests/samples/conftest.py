"""Fixtures for the samples' tests: apps started from their manifests, and a forward proxy in the
sidecar's place. Each test stops what it started; an app that does not exit 0 on SIGTERM fails it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.samples.harness import AppRunner, ForwardProxy


@pytest.fixture
def apps(tmp_path: Path) -> Iterator[AppRunner]:
    runner = AppRunner(tmp_path)
    yield runner
    problems = runner.stop_all()
    assert not problems, "\n".join(problems)


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    p = ForwardProxy()
    yield p
    p.close()


@pytest.fixture
def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.skip("node is not installed (the ratings service is Node.js)")
    return path
