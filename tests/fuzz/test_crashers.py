"""Every input a fuzzer found that broke an invariant, replayed (tests/fuzz/crashers/<target>/).

An input listed in crashers/known.json reproduces a known bug (fuzz/_common.py ``KNOWN``): it
xfails while it still fails the same way, and fails if it breaks anything else. Once its bug
is fixed it passes; then drop it from known.json and ``KNOWN``.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
from _common import KNOWN, signature

CRASHERS = Path(__file__).parent / "crashers"
_KNOWN_FILES: dict[str, str] = json.loads((CRASHERS / "known.json").read_text())
_CASES = sorted(f"{p.parent.name}/{p.name}" for p in CRASHERS.glob("*/*") if p.is_file())


def test_known_crashers_name_known_bugs() -> None:
    for name, sig in _KNOWN_FILES.items():
        assert (CRASHERS / name).is_file(), f"known.json lists a missing file: {name}"
        assert sig in KNOWN, f"{name}: {sig!r} is not in fuzz/_common.py KNOWN"


@pytest.mark.parametrize("case", _CASES)
def test_crasher_replays_clean(case: str) -> None:
    target = case.split("/", 1)[0]
    harness = importlib.import_module(target)
    data = (CRASHERS / case).read_bytes()
    expected = _KNOWN_FILES.get(case)
    try:
        harness.test_one_input(data)
    except Exception as exc:
        if expected is not None and signature(exc) == expected:
            pytest.xfail(KNOWN[expected])
        raise
