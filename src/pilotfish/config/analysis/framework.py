"""Running analyzers: the Analyzer type, the Message they produce, and ``analyze``.

An analyzer is a named function of a Snapshot yielding Messages. Names are Istio's
(``virtualservice.DestinationHostAnalyzer``) so one can be chosen exactly as with
``istioctl analyze``; Istio's Go type name is accepted as an alias where it differs.
Its ``inputs`` are the kinds Istio declares it reads (``Metadata().Inputs``): an analyzer
that needs a kind the snapshot cannot know is skipped, as istioctl skips it
(``CombinedAnalyzer.RemoveSkipped``) -- with files alone, every analyzer that reads Pods,
Services, Namespaces, Nodes or Secrets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..base import Resource
from ..errors import FieldPath, Position
from ..models.kube import MeshConfig, MeshNetworks
from .context import GVK, Entry, Snapshot
from .messages import Level, MessageType, message_type

SUPPRESS_ANNOTATION = "galley.istio.io/analyze-suppress"


@dataclass(frozen=True)
class ResourceRef:
    """The resource a message is about, named as the input named it (no namespace if it gave none)."""

    kind: str
    name: str
    namespace: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Message:
    """One analysis finding.

    Fields: ``code`` (``IST0101``), ``name`` (``ReferencedResourceNotFound``), ``level``
    (``Level.ERROR`` / ``WARNING`` / ``INFO``), ``text`` (the rendered message), ``resource``
    (kind, name, namespace of the resource concerned, or None), ``position`` (file and line of
    the field it is about, else of that resource's document), ``analyzer`` (the name of the analyzer that reported it).
    ``str(message)`` is istioctl's line: ``Error [IST0101] (VirtualService default/x file:3) ...``.
    """

    type: MessageType
    text: str
    resource: ResourceRef | None = None
    position: Position = field(default_factory=Position)
    analyzer: str = ""
    annotations: tuple[tuple[str, str], ...] = field(default=(), repr=False, compare=False)

    @property
    def code(self) -> str:
        return self.type.code

    @property
    def name(self) -> str:
        return self.type.name

    @property
    def level(self) -> Level:
        return self.type.level

    @property
    def message(self) -> str:
        return self.text

    @property
    def documentation_url(self) -> str:
        return self.type.documentation_url

    @property
    def origin(self) -> str:
        return str(self.resource) if self.resource else ""

    def __str__(self) -> str:
        where = ""
        if self.resource is not None:
            pos = f" {self.position}" if str(self.position) else ""
            where = f" ({self.resource}{pos})"
        return f"{self.level} [{self.code}]{where} {self.text}"

    def to_dict(self) -> dict[str, Any]:
        """istioctl's JSON output shape."""
        out: dict[str, Any] = {"code": self.code, "level": str(self.level), "message": self.text}
        if self.resource is not None:
            out["origin"] = str(self.resource)
            if str(self.position):
                out["reference"] = str(self.position)
        out["documentationUrl"] = self.documentation_url
        return out


def new_message(type_name: str, entry: Entry | None, *args: Any, path: FieldPath = ()) -> Message:
    """A message of catalog type ``type_name`` about ``entry``, its template filled with ``args``;
    ``path`` is the field it is about, whose line the message points at (as Istio's
    ``util.ErrorLine``)."""
    mtype = message_type(type_name)
    if entry is None:
        return Message(mtype, mtype.render(*args))
    res = entry.resource
    ref = ResourceRef(res.kind, res.name, res.namespace)
    return Message(mtype, mtype.render(*args), ref, res.position.of(path), annotations=tuple(res.annotations.items()))


AnalyzeFn = Callable[[Snapshot], Iterable[Message]]


@dataclass(frozen=True)
class Analyzer:
    name: str
    description: str
    fn: AnalyzeFn
    aliases: tuple[str, ...] = ()
    inputs: tuple[GVK, ...] = ()

    def runs_without(self, missing_kinds: frozenset[GVK]) -> bool:
        """False when the analyzer reads one of ``missing_kinds`` (istioctl then skips it)."""
        return missing_kinds.isdisjoint(self.inputs)

    def run(self, snapshot: Snapshot) -> list[Message]:
        """The analyzer's messages; a failure inside it becomes an IST0001 message, not a crash."""
        out: list[Message] = []
        try:
            for m in self.fn(snapshot):
                out.append(_stamp(m, self.name))
        except Exception as exc:  # noqa: BLE001 - one broken analyzer must not hide the others' findings
            mtype = message_type("InternalError")
            out.append(Message(mtype, mtype.render(f"analyzer {self.name} failed: {type(exc).__name__}: {exc}"), analyzer=self.name))
        return out


def _stamp(m: Message, analyzer: str) -> Message:
    return m if m.analyzer else Message(m.type, m.text, m.resource, m.position, analyzer, m.annotations)


def analyzer(
    name: str, description: str, *, inputs: Sequence[GVK], aliases: Sequence[str] = ()
) -> Callable[[AnalyzeFn], Analyzer]:
    """Decorator turning ``fn(snapshot) -> Iterable[Message]`` into a named Analyzer reading ``inputs``."""

    def wrap(fn: AnalyzeFn) -> Analyzer:
        return Analyzer(name, description, fn, tuple(aliases), tuple(inputs))

    return wrap


def select(all_analyzers: Sequence[Analyzer], wanted: Iterable[str | Analyzer] | None) -> list[Analyzer]:
    """The analyzers named in ``wanted`` (names or aliases), or all of them; KeyError on an unknown name."""
    if wanted is None:
        return list(all_analyzers)
    by_name: dict[str, Analyzer] = {}
    for a in all_analyzers:
        by_name[a.name] = a
        for alias in a.aliases:
            by_name.setdefault(alias, a)
    out = []
    for w in wanted:
        if isinstance(w, Analyzer):
            out.append(w)
        elif w in by_name:
            out.append(by_name[w])
        else:
            raise KeyError(f"unknown analyzer {w!r}")
    return out


def _suppressed(m: Message) -> bool:
    codes = dict(m.annotations).get(SUPPRESS_ANNOTATION, "")
    return bool(codes) and any(c.strip() in ("*", m.code) for c in codes.split(","))


def _sort_key(m: Message) -> tuple[int, str, str, str]:
    return (m.level.sort_order, m.code, str(m.resource) if m.resource else "", str(m))


def finish(messages: Iterable[Message]) -> list[Message]:
    """Drop suppressed messages, sort as istioctl does, and drop exact duplicates."""
    out: list[Message] = []
    seen: set[str] = set()
    for m in sorted((m for m in messages if not _suppressed(m)), key=_sort_key):
        text = str(m)
        if text in seen:
            continue
        seen.add(text)
        out.append(m)
    return out


def run_analyzers(
    resources: Iterable[Resource],
    analyzers: Sequence[Analyzer],
    *,
    mesh_config: MeshConfig | None = None,
    mesh_networks: MeshNetworks | None = None,
    now: datetime | None = None,
    files_only: bool = False,
) -> Iterator[Message]:
    snapshot = Snapshot.build(resources, mesh_config, mesh_networks, now=now, files_only=files_only)
    for a in analyzers:
        if a.runs_without(snapshot.missing_kinds):
            yield from a.run(snapshot)
