"""Schema validation as analysis: webhook errors as IST0106, warnings as IST0133.

Two VirtualService warnings carry their own codes, as in Istio (analyzers/schema): a rule no
request can reach (IST0130) and a match an earlier rule already takes (IST0131).
One analyzer per Istio kind, named ``schema.ValidationAnalyzer.<Kind>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from .. import kinds
from ..errors import ConfigError, field_path
from ..validation import validate
from .context import RUNTIME_KINDS, Entry, Snapshot
from .framework import Analyzer, Message, ResourceRef, new_message
from .messages import message_type

_UNREACHABLE = re.compile(r"virtualService rule (.+?) not used \((.*)\)", re.IGNORECASE)
_INEFFECTIVE = re.compile(
    r"virtualService rule (.+?) match (.+?) is not used \(duplicate/overlapping match in rule (.+?)\)", re.IGNORECASE
)


def _warning_message(entry: Entry, text: str) -> Message:
    path = field_path(text)
    m = _INEFFECTIVE.search(text)
    if m:
        return new_message("VirtualServiceIneffectiveMatch", entry, *m.groups(), path=path)
    m = _UNREACHABLE.search(text)
    if m:
        return new_message("VirtualServiceUnreachableRule", entry, *m.groups(), path=path)
    return new_message("SchemaWarning", entry, text, path=path)


def _validation_analyzer(kind: str, group: str) -> Analyzer:
    def run(snap: Snapshot) -> Iterator[Message]:
        for entry in snap.each((group, kind)):
            verdict = validate(entry.resource)
            for err in verdict.errors:
                yield new_message("SchemaValidationError", entry, err, path=field_path(err))
            for warning in verdict.warnings:
                yield _warning_message(entry, warning)

    return Analyzer(
        f"schema.ValidationAnalyzer.{kind}",
        f"Runs schema validation as an analyzer on '{kind}' resources",
        run,
        (f"schemaValidation.CollectionValidationAnalyzer(collections.{kind})",),
        ((group, kind),),
    )


def _istio_kinds() -> list[tuple[str, str]]:
    return sorted({(info.kind, info.group) for info in kinds.all_kinds() if info.istio})


def load_error_messages(errors: Iterable[ConfigError], *, files_only: bool = False) -> list[Message]:
    """Resources that failed to load, as the IST0106 messages istioctl would print for them.

    With ``files_only`` a Service, Pod, Namespace, Node or Secret that failed is not reported:
    istioctl does not read those kinds from files at all (``context.RUNTIME_KINDS``).
    """
    mtype = message_type("SchemaValidationError")
    skipped = {kind for _, kind in RUNTIME_KINDS} if files_only else set()
    out = []
    for err in errors:
        if err.kind in skipped:
            continue
        ref = ResourceRef(err.kind, err.name, err.namespace) if err.kind else None
        text = f"{err.field_path}: {err.message}" if err.field_path else err.message
        out.append(Message(mtype, mtype.render(text), ref, err.position, "schema.ValidationAnalyzer"))
    return out


ANALYZERS = [_validation_analyzer(kind, group) for kind, group in _istio_kinds()]
