"""Scoring our validation against Istio's verdicts (validation/*.yaml in the corpus).

Run directly to see every disagreement for one kind while working on it:
    python -m tests.config.conformance cases.yaml VirtualService
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pilotfish.config.errors import ConfigError, Verdict
from pilotfish.config.loader import Document, UnknownKind, documents_from_text, to_resource
from pilotfish.config.validation import validate


@dataclass
class Outcome:
    case: dict[str, Any]
    verdict: Verdict
    expected_valid: bool

    @property
    def agrees(self) -> bool:
        if self.verdict.valid != self.expected_valid:
            return False
        want_warning = self.case.get("warning")
        if want_warning is not None and bool(self.verdict.warnings) != want_warning:
            return False
        return True

    def describe(self) -> str:
        c = self.case
        want = "valid" if self.expected_valid else "invalid"
        got = "valid" if self.verdict.valid else "invalid"
        detail = "; ".join(self.verdict.errors[:3]) or "-"
        warn = "; ".join(self.verdict.warnings[:2])
        hint = c.get("expected_error_contains") or c.get("expected_crd_error") or c.get("expected_warning_contains") or ""
        return (
            f"{c['id']} [{c['kind']}] {c.get('name', '')!s}: expected {want}"
            f" (warning={c.get('warning')}) {hint!r}; got {got}: {detail}" + (f" | warnings: {warn}" if warn else "")
        )


def check(resource: dict[str, Any] | Document) -> Verdict:
    """Parse (structural/CRD schema) then validate (webhook rules), as an apply would."""
    doc = resource if isinstance(resource, Document) else Document(resource, "case", 1)
    try:
        res = to_resource(doc)
    except UnknownKind as exc:
        return Verdict(errors=[str(exc)])
    except ConfigError as exc:
        return Verdict(errors=[str(exc)])
    return validate(res)


def original_document(case: dict[str, Any], corpus: Path) -> Document | None:
    """The case's document read from its original file with our own loader, when the corpus has it.

    CRD cases come whole from Istio's testdata files; reading the file itself (not the
    re-serialized copy) tests the YAML dialect too, e.g. ``[2001:db8::]`` in flow style.
    """
    source = case.get("source") or {}
    if "doc_index" not in source:
        return None
    path = corpus / "testdata" / source["file"]
    if not path.exists():
        return None
    docs = [d for d in documents_from_text(path.read_text(), str(path)) if isinstance(d, Document)]
    if source["doc_index"] >= len(docs):
        return None
    doc = docs[source["doc_index"]]
    if isinstance(doc.data, dict):
        doc.data.pop("_err", None)  # the expected apiserver error, not part of the object
    return doc


def run(path: Path) -> list[Outcome]:
    cases = yaml.safe_load(path.read_text())
    corpus = path.parent.parent
    out = []
    for case in cases:
        expected = case["valid"] if "valid" in case else case["valid_crd"]
        subject = original_document(case, corpus) or case["resource"]
        out.append(Outcome(case, check(subject), bool(expected)))
    return out


def score(outcomes: list[Outcome]) -> dict[str, tuple[int, int]]:
    """(agreeing, total) for all cases, the valid ones and the invalid ones."""
    def tally(items: list[Outcome]) -> tuple[int, int]:
        return sum(o.agrees for o in items), len(items)

    return {
        "all": tally(outcomes),
        "valid": tally([o for o in outcomes if o.expected_valid]),
        "invalid": tally([o for o in outcomes if not o.expected_valid]),
    }


if __name__ == "__main__":
    from tests.corpus import CORPUS

    file = sys.argv[1] if len(sys.argv) > 1 else "cases.yaml"
    kind = sys.argv[2] if len(sys.argv) > 2 else None
    outcomes = [o for o in run(CORPUS / "validation" / file) if kind is None or o.case["kind"] == kind]
    for o in outcomes:
        if not o.agrees:
            print("DISAGREE", o.describe())
    for k, (a, n) in score(outcomes).items():
        print(f"{k}: {a}/{n} = {100 * a / max(n, 1):.1f}%")
