"""A short coverage-guided run of each atheris harness (fuzz/*.py), as part of the test suite.

Each runs in its own process for a few seconds from the checked-in seeds (fuzz/corpus/<target>/);
what it learns goes to a temporary directory. Known bugs are skipped (fuzz/_common.py ``KNOWN``)
so a red run means a new one: save the reproducer it prints to tests/fuzz/crashers/<target>/.
Longer campaigns: ``make fuzz FUZZ_SECONDS=...`` (README, "Fuzzing").
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pilotfish

ROOT = Path(__file__).resolve().parents[2]
SECONDS = int(os.environ.get("FUZZ_SHORT_SECONDS", "6"))

pytestmark = pytest.mark.skipif(importlib.util.find_spec("atheris") is None,
                                reason="atheris is not installed (no wheel for this platform)")


@pytest.mark.parametrize("target", ["http1_server", "http1_client", "downstream", "upstream",
                                    "bootstrap_yaml"])
def test_short_fuzz_run_finds_nothing_new(target: str, tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(pilotfish.__file__).parents[1]), env.get("PYTHONPATH", "")])
    env.pop("FUZZ_STRICT", None)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    cmd = [sys.executable, str(ROOT / "fuzz" / f"{target}.py"), f"-max_total_time={SECONDS}", "-seed=1",
           "-timeout=20", "-rss_limit_mb=2048", f"-artifact_prefix={tmp_path}/", "-print_final_stats=1",
           str(corpus), str(ROOT / "fuzz" / "corpus" / target)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=SECONDS + 120)
    crashes = sorted(p for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-")))
    found = "".join(f"\n{p.name}: {p.read_bytes()!r}" for p in crashes)
    assert proc.returncode == 0 and not crashes, (
        f"{target}: the fuzzer found an input that breaks an invariant; save it as "
        f"tests/fuzz/crashers/{target}/<name>:{found}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    assert "stat::number_of_executed_units" in proc.stderr
