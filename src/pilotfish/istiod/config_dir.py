"""The config directory istiod serves: every YAML file under it, each kept at its last good version.

A file is taken whole or not at all. When an edit leaves a file unparsable or one of its
resources invalid, its errors are reported (file:line, resource, field, Istio's message) and the
version that was in force stays in force: nothing is half-applied. A file removed takes its
resources with it; a file replaced by an atomic rename is read like any edit. Resources without
a namespace are in ``default``, as ``kubectl apply`` would put them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..config.base import Resource
from ..config.errors import ConfigError, LoadError, Position, field_path, with_field
from ..config.kinds import with_default_namespace
from ..config.loader import Document, UnknownKind, documents_from_text, read_text, to_resource
from ..config.validation import validate

log = logging.getLogger("pilotfish.istiod")

_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class FileProblem:
    """Why a file's new version was not taken."""

    file: str
    errors: tuple[str, ...]

    def __str__(self) -> str:
        return "; ".join(self.errors)


@dataclass
class _File:
    resources: tuple[Resource, ...] = ()
    problem: FileProblem | None = None  # the latest version's, when it was refused


@dataclass
class ConfigDir:
    """The resources of every YAML file under ``root`` (hidden files and directories skipped)."""

    root: Path
    files: dict[str, _File] = field(default_factory=dict)
    changed_kinds: set[str] = field(default_factory=set)  # kinds changed since the owner last took them
    changed: list[Resource] = field(default_factory=list)  # both versions of each object changed since
    stamps: dict[str, tuple[int, int]] = field(default_factory=dict)  # (mtime_ns, size) when last read

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    def yaml_files(self) -> list[str]:
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            out.extend(os.path.join(dirpath, f) for f in sorted(filenames) if is_config_file(f))
        return out

    def load_all(self) -> list[FileProblem]:
        """Read every file (at start, or to resynchronise after a missed event)."""
        present = set(self.yaml_files())
        self.reload(present | set(self.files))
        return self.problems()

    def reload(self, paths: Iterable[str]) -> bool:
        """Read ``paths`` again (missing ones are removed); whether anything in force changed."""
        changed = False
        for path in sorted(set(paths)):
            if not os.path.exists(path):
                self.stamps.pop(path, None)
                gone = self.files.pop(path, None)
                if gone is not None:
                    self.changed_kinds |= {r.kind for r in gone.resources}
                    self.changed.extend(gone.resources)
                    changed = True
                    log.info("config file removed: %s", path)
                continue
            if not is_config_file(path):
                continue
            self.stamps[path] = _stamp(path)
            resources, errors = parse_file(path)
            entry = self.files.setdefault(path, _File())
            if errors:
                entry.problem = FileProblem(path, tuple(errors))
                for e in errors:
                    log.error("config file %s refused, its previous version stays in force: %s", path, e)
                continue
            entry.problem = None
            if resources != entry.resources:
                diff = _changed(entry.resources, resources)
                self.changed_kinds |= {r.kind for r in diff}
                self.changed.extend(diff)
                entry.resources = resources
                changed = True
        return changed

    def rescan(self) -> bool:
        """Read again the files whose size or modification time changed since they were read,
        new files and removed ones: a safety net for changes a watcher did not report (one
        made before it started watching)."""
        present = self.yaml_files()
        stale = {p for p in present if self.stamps.get(p) != _stamp(p)}
        stale |= set(self.files) - set(present)
        return self.reload(stale) if stale else False

    def resources(self) -> tuple[Resource, ...]:
        """Every resource in force; when two files declare the same object, the first path wins."""
        seen: set[tuple[str, str, str, str]] = set()
        out = []
        for path in sorted(self.files):
            for r in self.files[path].resources:
                key = (r.api_version.rpartition("/")[0], r.kind, r.namespace, r.name)
                if key in seen:
                    log.warning("%s %s/%s in %s is also declared in an earlier file: ignored",
                                r.kind, r.namespace, r.name, path)
                    continue
                seen.add(key)
                out.append(r)
        return tuple(out)

    def problems(self) -> list[FileProblem]:
        return [f.problem for f in self.files.values() if f.problem is not None]

    def owner(self, kind: str, namespace: str, name: str) -> str | None:
        """The file that declares an object, if any."""
        for path in sorted(self.files):
            for r in self.files[path].resources:
                if r.kind == kind and r.namespace == namespace and r.name == name:
                    return path
        return None


def _changed(before: tuple[Resource, ...], after: tuple[Resource, ...]) -> list[Resource]:
    """The objects a file's new version adds, removes or changes (both versions of a changed one)."""
    old = {(r.kind, r.namespace, r.name): r for r in before}
    new = {(r.kind, r.namespace, r.name): r for r in after}
    out = []
    for key in old.keys() | new.keys():
        a, b = old.get(key), new.get(key)
        if a != b:
            out += [r for r in (a, b) if r is not None]
    return out


def _stamp(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (0, -1)
    return (st.st_mtime_ns, st.st_size)


def is_config_file(path: str) -> bool:
    name = os.path.basename(path)
    return name.endswith(_SUFFIXES) and not name.startswith(".")


def parse_file(path: str) -> tuple[tuple[Resource, ...], list[str]]:
    """A file's resources, validated, or the errors that refuse it (each naming file:line,
    the resource and the field where known)."""
    try:
        text = read_text(path)
    except (LoadError, OSError) as exc:
        return (), [str(exc)]
    return parse_text(text, path)


def parse_text(text: str, file: str) -> tuple[tuple[Resource, ...], list[str]]:
    resources: list[Resource] = []
    errors: list[str] = []
    for doc in documents_from_text(text, file):
        if isinstance(doc, LoadError):
            errors.append(str(doc))
            continue
        if doc.data is None:
            continue  # an empty document (a trailing ---)
        try:
            resource = with_default_namespace(to_resource(doc))
        except UnknownKind as exc:
            log.warning("%s: %s: skipped", doc.position, exc.message)
            continue
        except ConfigError as exc:
            errors.append(str(exc))
            continue
        verdict = validate(resource)
        if not verdict.valid:
            errors.extend(doc.locate(resource.ref, e) for e in verdict.errors)
            continue
        for w in verdict.warnings:
            log.warning("%s", doc.locate(resource.ref, w))
        # The document's line map served the messages above; istiod keeps the object without it.
        resources.append(resource.model_copy(update={"position": Position(doc.file, doc.line)}))
    return tuple(resources), errors


def document_resource(doc: Document) -> Resource:
    """One API-submitted document as a validated resource (ConfigError when refused)."""
    resource = with_default_namespace(to_resource(doc))
    verdict = validate(resource)
    if not verdict.valid:
        raise ConfigError("; ".join(with_field(e) for e in verdict.errors),
                          kind=resource.kind, namespace=resource.namespace, name=resource.name,
                          position=Position(doc.file, doc.line_of(field_path(verdict.errors[0]))))
    return resource
