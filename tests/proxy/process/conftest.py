"""Fixtures of the process-layer tests: a fake ADS server (pilotfish.xds.testing)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pilotfish.xds.testing import FakeAds


@pytest.fixture
async def ads() -> AsyncIterator[FakeAds]:
    server = await FakeAds().start()
    yield server
    await server.stop()
