"""Agreement with Istio's analyzer test table (testdata/analyzers_expected.json in the corpus).

Each case runs exactly one analyzer over its input files (plus the defaults istioctl adds)
and compares the multiset of (code, resource) with what Istio expects.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pilotfish.config.analysis import analyze
from pilotfish.config.loader import load_resources
from pilotfish.config.models.kube import load_mesh_config, mesh_networks_from_yaml
from tests.corpus import corpus_path

TARGET = 90.0


@dataclass
class CaseResult:
    case: dict[str, Any]
    got: Counter[tuple[str, str]]
    want: Counter[tuple[str, str]]
    load_errors: list[str]

    @property
    def agrees(self) -> bool:
        return self.got == self.want

    def describe(self) -> str:
        missing = sorted((self.want - self.got).elements())
        extra = sorted((self.got - self.want).elements())
        text = f"{self.case['name']} [{self.case['analyzer']}]"
        if missing:
            text += f"\n      missing: {missing}"
        if extra:
            text += f"\n      extra:   {extra}"
        if self.load_errors:
            text += f"\n      load errors: {self.load_errors[:3]}"
        return text


def run_case(root: Path, case: dict[str, Any]) -> CaseResult:
    resources, errors = load_resources([str(root / f) for f in case["inputFiles"]])
    mesh = load_mesh_config(str(root / case["meshConfigFile"])) if case.get("meshConfigFile") else None
    networks = None
    if case.get("meshNetworksFile"):
        networks = mesh_networks_from_yaml((root / case["meshNetworksFile"]).read_text())
    messages = analyze(resources, mesh_config=mesh, mesh_networks=networks, analyzers=[case["analyzer"]])
    got = Counter((m.code, str(m.resource)) for m in messages)
    want = Counter((m["code"], m["resource"]) for m in case["expected_messages"])
    return CaseResult(case, got, want, [str(e) for e in errors])


def test_agreement_with_istio_analyzers(capsys: pytest.CaptureFixture[str]) -> None:
    table = json.loads(corpus_path("testdata", "analyzers_expected.json").read_text())
    root = corpus_path("testdata")
    results = [run_case(root, c) for c in table["cases"] if c.get("all_files_in_corpus")]
    agree = sum(r.agrees for r in results)
    score = 100 * agree / max(len(results), 1)
    lines = [f"analyzers: {agree}/{len(results)} cases agree ({score:.1f}%)"]
    lines += ["  disagree: " + r.describe() for r in results if not r.agrees]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert score >= TARGET, "\n".join(lines)
