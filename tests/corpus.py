"""Locating Istio's shared corpus: fail loudly under CI, skip with a reason elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CORPUS = Path(os.environ.get("PILOTFISH_CORPUS", Path(__file__).resolve().parents[1].parent / "shared" / "istio-corpus"))


def corpus_path(*parts: str) -> Path:
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Istio corpus missing at {path}; CI needs ../shared/istio-corpus", pytrace=False)
        pytest.skip(f"Istio corpus not found at {path}")
    return path
