"""Agreement with Istio's own validation verdicts; prints the score and every disagreement."""

from __future__ import annotations

import pytest

from tests.corpus import corpus_path

from .conformance import run, score

TARGET = 97.0


@pytest.mark.parametrize("name", ["cases.yaml", "cases_wrapped.yaml", "crd_cases.yaml"])
def test_agreement_with_istio(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    outcomes = run(corpus_path("validation", name))
    scores = score(outcomes)
    lines = [f"{name}: " + ", ".join(f"{k} {a}/{n} ({100 * a / max(n, 1):.1f}%)" for k, (a, n) in scores.items())]
    lines += ["  disagree: " + o.describe() for o in outcomes if not o.agrees]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    for part in ("valid", "invalid"):
        agree, total = scores[part]
        assert total == 0 or 100 * agree / total >= TARGET, "\n".join(lines)
