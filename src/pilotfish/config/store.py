"""A persistent, watchable config store: one YAML file per resource under a directory.

Writes are atomic (temp file, fsync, rename, fsync of the directory), so a crash leaves
either the old or the new version of a file, never half of one; a write is acknowledged
only after that. Invalid resources are refused before anything touches the disk. Every
object carries a resourceVersion; update and delete can require the version the caller
last saw (optimistic concurrency), as the Kubernetes API does.
"""

from __future__ import annotations

import asyncio
import copy
import enum
import os
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .base import Resource
from .errors import ConfigError
from .loader import Document, load_documents, to_resource
from .validation import validate

_TMP_PREFIX = ".tmp-"
Key = tuple[str, str, str]  # (kind, namespace, name)


class StoreError(ConfigError):
    """A store operation that cannot be carried out."""


class NotFound(StoreError):
    pass


class AlreadyExists(StoreError):
    pass


class Conflict(StoreError):
    """The caller's resourceVersion is not the stored one: someone else changed it first."""


class EventType(enum.StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


@dataclass(frozen=True)
class Event:
    type: EventType
    resource: Resource


class ConfigStore:
    """The directory store. Safe to call from several threads; watchers are asyncio iterators."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._index: dict[Key, Resource] = {}
        self._version = 0
        self._watchers: set[_Watcher] = set()
        self._load()

    # ------------------------------------------------------------ reading

    def _load(self) -> None:
        for leftover in self.root.rglob(f"{_TMP_PREFIX}*"):
            leftover.unlink(missing_ok=True)  # a write that never reached its rename
        files = sorted(str(p) for p in self.root.rglob("*.yaml"))
        for doc in load_documents(files) if files else ():
            if not isinstance(doc, Document):
                raise StoreError(f"corrupt store file: {doc}")
            resource = to_resource(doc)
            self._index[_key(resource)] = resource
            self._version = max(self._version, int(resource.metadata.resource_version or 0))

    def get(self, kind: str, namespace: str, name: str) -> Resource:
        with self._lock:
            try:
                return self._index[(kind, namespace, name)]
            except KeyError:
                raise NotFound(f"{kind} {namespace}/{name} not found", kind=kind, namespace=namespace, name=name) from None

    def list(self, kind: str | None = None, namespace: str | None = None) -> list[Resource]:
        with self._lock:
            return [
                r for (k, ns, _), r in sorted(self._index.items())
                if (kind is None or k == kind) and (namespace is None or ns == namespace)
            ]

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._index)

    @property
    def resource_version(self) -> str:
        return str(self._version)

    # ------------------------------------------------------------ writing

    def create(self, resource: Resource | dict[str, Any]) -> Resource:
        resource = self._checked(resource)
        with self._lock:
            key = _key(resource)
            if key in self._index:
                raise AlreadyExists(f"{resource.ref} already exists", kind=key[0], namespace=key[1], name=key[2])
            stored = self._write(resource)
            self._publish(Event(EventType.ADDED, stored))
            return stored

    def update(self, resource: Resource | dict[str, Any], *, resource_version: str | None = None) -> Resource:
        """Replace an object. ``resource_version`` (or the object's own) must match the stored one if given."""
        resource = self._checked(resource)
        expected = resource_version if resource_version is not None else resource.metadata.resource_version
        with self._lock:
            key = _key(resource)
            current = self._index.get(key)
            if current is None:
                raise NotFound(f"{resource.ref} not found", kind=key[0], namespace=key[1], name=key[2])
            if expected and expected != current.metadata.resource_version:
                raise Conflict(
                    f"{resource.ref} was modified (resourceVersion {current.metadata.resource_version}, you had {expected})",
                    kind=key[0], namespace=key[1], name=key[2],
                )
            stored = self._write(resource)
            self._publish(Event(EventType.MODIFIED, stored))
            return stored

    def apply(self, resource: Resource | dict[str, Any]) -> Resource:
        """Create or replace, without a version check (``kubectl apply`` semantics for a whole object)."""
        resource = self._checked(resource)
        with self._lock:
            key = _key(resource)
            existed = key in self._index
            stored = self._write(resource)
            self._publish(Event(EventType.MODIFIED if existed else EventType.ADDED, stored))
            return stored

    def delete(self, kind: str, namespace: str, name: str, *, resource_version: str | None = None) -> Resource:
        with self._lock:
            current = self.get(kind, namespace, name)
            if resource_version and resource_version != current.metadata.resource_version:
                raise Conflict(f"{current.ref} was modified (resourceVersion {current.metadata.resource_version})",
                               kind=kind, namespace=namespace, name=name)
            path = self._path(current)
            path.unlink(missing_ok=True)
            _fsync_dir(path.parent)
            del self._index[(kind, namespace, name)]
            self._version += 1
            self._publish(Event(EventType.DELETED, current))
            return current

    def _checked(self, resource: Resource | dict[str, Any]) -> Resource:
        """Parse and validate; nothing is written for a resource that fails either."""
        raw = resource.raw if isinstance(resource, Resource) else resource
        parsed = to_resource(Document(copy.deepcopy(raw), "<store>", 0))
        verdict = validate(parsed)
        if not verdict.valid:
            raise ConfigError("; ".join(verdict.errors), kind=parsed.kind, namespace=parsed.namespace, name=parsed.name)
        return parsed

    def _write(self, resource: Resource) -> Resource:
        self._version += 1
        raw = copy.deepcopy(resource.raw)
        meta = raw.setdefault("metadata", {})
        meta["resourceVersion"] = str(self._version)
        if not meta.get("namespace") and resource.namespace:
            meta["namespace"] = resource.namespace
        stored = to_resource(Document(raw, "<store>", 0))
        path = self._path(stored)
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, yaml.safe_dump(raw, sort_keys=False).encode())
        stored = stored.model_copy(update={"position": stored.position.__class__(str(path), 1)})
        self._index[_key(stored)] = stored
        return stored

    def _path(self, resource: Resource) -> Path:
        group = resource.group or "core"
        return self.root / group / resource.kind / (resource.namespace or "_cluster") / f"{resource.name}.yaml"

    # ------------------------------------------------------------ watching

    def watch(self, *, initial: bool = True, kind: str | None = None) -> AsyncIterator[Event]:
        """Events from now on (ADDED for existing objects first when ``initial``). Call inside a loop."""
        watcher = _Watcher(self, asyncio.get_running_loop(), kind)
        with self._lock:
            if initial:
                for resource in self.list(kind):
                    watcher.queue.put_nowait(Event(EventType.ADDED, resource))
            self._watchers.add(watcher)
        return watcher

    def _publish(self, event: Event) -> None:
        for watcher in list(self._watchers):
            watcher.offer(event)


class _Watcher:
    def __init__(self, store: ConfigStore, loop: asyncio.AbstractEventLoop, kind: str | None) -> None:
        self.store = store
        self.loop = loop
        self.kind = kind
        self.queue: asyncio.Queue[Event] = asyncio.Queue()

    def offer(self, event: Event) -> None:
        if self.kind is not None and event.resource.kind != self.kind:
            return
        if self.loop.is_closed():
            self.store._watchers.discard(self)
            return
        self.loop.call_soon_threadsafe(self.queue.put_nowait, event)

    def __aiter__(self) -> _Watcher:
        return self

    async def __anext__(self) -> Event:
        return await self.queue.get()

    async def aclose(self) -> None:
        self.store._watchers.discard(self)


def _key(resource: Resource) -> Key:
    return (resource.kind, resource.namespace, resource.name)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
