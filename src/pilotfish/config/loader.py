"""Reading config: files, directories, stdin; YAML or JSON; one or many documents.

YAML is read event by event into plain Python data with a line number for every key and
item, so any later error can name file:line and the field path. The reader never recurses
on the input's structure and counts what aliases expand to, so hostile input (binary data,
alias bombs, deep nesting, huge files) ends in a ``LoadError`` in bounded time and memory.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from . import kinds
from .base import ObjectMeta, Resource
from .errors import ConfigError, LoadError, Position, field_path, with_field

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 2_000_000  # nodes after alias expansion, per file
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _GoStyleLoader(yaml.SafeLoader):
    """PyYAML's pure-Python reader with the Go YAML rule for plain scalars in flow context.

    Kubernetes reads YAML with Go's parser, which ends a plain scalar at ``:`` only when a
    blank follows, so ``addresses: [2001:db8::1]`` is a list of one IPv6 address. libyaml
    refuses that text; this slower reader is used only for input libyaml refuses that way.
    """

    def scan_plain(self) -> yaml.tokens.ScalarToken:
        chunks: list[str] = []
        start_mark = end_mark = self.get_mark()
        indent = self.indent + 1
        spaces: list[str] = []
        blank = "\0 \t\r\n\x85\u2028\u2029"
        while True:
            length = 0
            if self.peek() == "#":
                break
            while True:
                ch = self.peek(length)
                if ch in blank or (ch == ":" and self.peek(length + 1) in blank) or (self.flow_level and ch in ",?[]{}"):
                    break
                length += 1
            if length == 0:
                break
            self.allow_simple_key = False
            chunks.extend(spaces)
            chunks.append(self.prefix(length))
            self.forward(length)
            end_mark = self.get_mark()
            spaces = self.scan_plain_spaces(indent, start_mark)
            if not spaces or self.peek() == "#" or (not self.flow_level and self.column < indent):
                break
        return yaml.tokens.ScalarToken("".join(chunks), True, start_mark, end_mark)
_scalar_constructor = yaml.constructor.SafeConstructor()
_PathKey = tuple[str | int, ...]


class SourceError(OSError):
    """A path that cannot be read at all (missing, permission denied)."""


@dataclass
class Document:
    """One YAML document (or one item of a ``kind: List``) with its line map."""

    data: Any
    file: str
    line: int
    lines: dict[_PathKey, int] = field(default_factory=dict, repr=False)
    prefix: _PathKey = ()

    def line_of(self, path: Iterable[str | int]) -> int:
        """Line of the deepest part of ``path`` that exists in the document."""
        key = self.prefix
        best = self.line
        for part in path:
            key = key + (part,)
            if key not in self.lines:
                break
            best = self.lines[key]
        return best

    @property
    def position(self) -> Position:
        return Position(self.file, self.line)

    def locate(self, ref: str, message: str) -> str:
        """``file:line: Kind ns/name: field.path: message``, the line being the field's."""
        return f"{Position(self.file, self.line_of(field_path(message)))}: {ref}: {with_field(message)}"


# ---------------------------------------------------------------- reading sources


def read_text(path: str) -> str:
    """Read one file (or stdin for "-") as text, refusing binary and oversized input."""
    if path == "-":
        data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
    else:
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError as exc:
            raise SourceError(f"{path}: no such file or directory") from exc
        except IsADirectoryError as exc:
            raise SourceError(f"{path}: is a directory") from exc
        except OSError as exc:
            raise SourceError(f"{path}: {exc.strerror or exc}") from exc
    name = "<stdin>" if path == "-" else path
    if len(data) > MAX_FILE_BYTES:
        raise LoadError(f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; not loading it", position=Position(name))
    if b"\x00" in data:
        raise LoadError("binary data (NUL bytes), not YAML or JSON", position=Position(name))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise LoadError(f"not UTF-8 text (byte 0x{data[exc.start]:02x} at column {column})",
                        position=Position(name, line)) from exc


def expand_paths(paths: Iterable[str]) -> list[str]:
    """Files named directly, plus every .yaml/.yml/.json under named directories, sorted."""
    out: list[str] = []
    for p in paths:
        if p == "-":
            if p in out:
                raise SourceError("-: standard input given more than once (it can be read only once)")
            out.append(p)
            continue
        if os.path.isdir(p):
            found = sorted(
                str(f) for f in Path(p).rglob("*") if f.is_file() and f.suffix.lower() in CONFIG_SUFFIXES
            )
            out.extend(found)
        elif os.path.exists(p):
            out.append(p)
        else:
            raise SourceError(f"{p}: no such file or directory")
    return out


# ---------------------------------------------------------------- YAML events to data


class _Merge:
    """The key of a YAML merge (``<<``) while its value is read; merged when the mapping ends."""

    __slots__ = ()


_MERGE = _Merge()


class _Frame:
    __slots__ = ("container", "path", "key", "key_line", "anchor", "nodes", "merge_line")

    def __init__(self, container: Any, path: _PathKey | None, anchor: str | None) -> None:
        self.container = container
        self.path = path
        self.key: Any = None
        self.key_line = 0
        self.anchor = anchor
        self.nodes = 1
        self.merge_line = 0  # the line of the mapping's ``<<`` key, when it has one


def _merge(frame: _Frame, lines: dict[_PathKey, int]) -> None:
    """Apply a mapping's ``<<`` as go-yaml (which kubectl and istioctl use) does: the keys of the
    merged mapping, or of each in a list (the first one listed wins), that the mapping does not
    set itself."""
    container = frame.container
    sources = container.pop(_MERGE)
    for source in sources if isinstance(sources, list) else [sources]:
        if not isinstance(source, dict):
            raise LoadError("a merge (<<) takes a mapping or a list of mappings",
                            position=Position("", frame.merge_line))
        for k, v in source.items():
            if k not in container:
                container[k] = v
                if frame.path is not None:
                    lines[frame.path + (k,)] = frame.merge_line
    if frame.path is not None:
        lines.pop(frame.path + (_MERGE,), None)


def _scalar(event: yaml.ScalarEvent, loader: Any) -> Any:
    if event.style or not event.implicit[0]:
        tag = event.tag if event.tag and event.tag != "!" else "tag:yaml.org,2002:str"
    else:
        tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
    if tag in ("tag:yaml.org,2002:str", "tag:yaml.org,2002:timestamp"):
        return event.value
    ctor = _scalar_constructor.yaml_constructors.get(tag)
    if ctor is None:
        raise LoadError(f"unsupported YAML tag {tag}")
    return ctor(_scalar_constructor, yaml.ScalarNode(tag, event.value))


def parse_documents(text: str, file: str) -> Iterator[Document | LoadError]:
    """Yield each document of a YAML/JSON stream; a broken stream yields its error last."""
    out = list(_parse_documents(text, file, _Loader))
    last = out[-1] if out else None
    if isinstance(last, LoadError) and "unexpected ':'" in last.message and _Loader is not _GoStyleLoader:
        out = list(_parse_documents(text, file, _GoStyleLoader))
    return iter(out)


def _parse_documents(text: str, file: str, loader_class: type) -> Iterator[Document | LoadError]:
    loader = loader_class(text)
    anchors: dict[str, tuple[Any, int]] = {}
    budget = MAX_NODES
    stack: list[_Frame] = []
    lines: dict[_PathKey, int] = {}
    doc_line = 1
    try:
        while True:
            event = loader.get_event()
            if event is None or isinstance(event, yaml.StreamEndEvent):
                return
            if isinstance(event, yaml.DocumentStartEvent):
                lines = {}
                anchors = {}
                doc_line = event.start_mark.line + 1
                root: list[Any] = []
                stack = [_Frame(root, None, None)]
                continue
            if isinstance(event, yaml.DocumentEndEvent):
                data = stack[0].container[0] if stack and stack[0].container else None
                stack = []
                if data is not None:
                    yield Document(data, file, _first_line(lines, doc_line), lines)
                continue
            if isinstance(event, yaml.StreamStartEvent):
                continue
            line = event.start_mark.line + 1
            if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                done = stack.pop()
                if done.merge_line:
                    _merge(done, lines)
                stack[-1].nodes += done.nodes
                if done.anchor:
                    anchors[done.anchor] = (done.container, done.nodes)
                continue
            top = stack[-1]
            if isinstance(event, yaml.AliasEvent):
                if event.anchor not in anchors:
                    raise LoadError(f"unknown alias *{event.anchor}", position=Position("", line))
                value, size = anchors[event.anchor]
                budget -= size
                if budget < 0:
                    raise LoadError(f"aliases expand to more than {MAX_NODES} nodes (an alias bomb?)",
                                    position=Position("", line))
                top.nodes += size
                _place(top, value, line, lines, is_key=False)
                continue
            budget -= 1
            if budget < 0:
                raise LoadError(f"more than {MAX_NODES} nodes in one file", position=Position("", line))
            if isinstance(event, yaml.ScalarEvent):
                is_key = isinstance(top.container, dict) and top.key is None
                value = event.value if is_key else _scalar(event, loader)
                top.nodes += 1
                if is_key:
                    if event.value == "<<" and not event.style:
                        if top.merge_line:
                            raise LoadError(f"duplicate key {value!r}", position=Position("", line))
                        value = _MERGE
                        top.merge_line = line
                    elif value in top.container:
                        raise LoadError(f"duplicate key {value!r}", position=Position("", line))
                    top.key = value
                    top.key_line = line
                    continue
                _place(top, value, line, lines, is_key=False)
                if event.anchor:
                    anchors[event.anchor] = (value, 1)
                continue
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                if isinstance(top.container, dict) and top.key is None:
                    raise LoadError("a mapping or list cannot be a key", position=Position("", line))
                if len(stack) > MAX_DEPTH:
                    raise LoadError(f"nesting deeper than {MAX_DEPTH} levels", position=Position("", line))
                child: Any = {} if isinstance(event, yaml.MappingStartEvent) else []
                path = _place(top, child, line, lines, is_key=False)
                stack.append(_Frame(child, path, event.anchor))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        yield LoadError(f"invalid YAML: {problem}", position=Position(file, mark.line + 1 if mark else 0))
    except LoadError as exc:
        yield LoadError(exc.message, position=Position(file, exc.position.line))
    except RecursionError:
        yield LoadError("input nested too deeply", position=Position(file))


def _first_line(lines: dict[_PathKey, int], default: int) -> int:
    return min((v for k, v in lines.items() if len(k) == 1), default=default)


def _place(top: _Frame, value: Any, line: int, lines: dict[_PathKey, int], *, is_key: bool) -> _PathKey:
    container = top.container
    if isinstance(container, dict):
        key = top.key
        container[key] = value
        path = top.path + (key,)
        lines[path] = top.key_line
        top.key = None
    elif top.path is None:  # the document root
        container.append(value)
        return ()
    else:
        path = top.path + (len(container),)
        container.append(value)
        lines[path] = line
    return path


# ---------------------------------------------------------------- documents to resources


def _is_list(data: Any) -> bool:
    """``kind: List`` and any ``<Kind>List`` (VirtualServiceList, …) with items, as kubectl
    expands them."""
    kind = data.get("kind") if isinstance(data, dict) else None
    return isinstance(kind, str) and kind.endswith("List") and isinstance(data.get("items"), list)


def documents_from_text(text: str, file: str) -> Iterator[Document | LoadError]:
    """Documents with ``kind: List`` and ``<Kind>List`` expanded into their items."""
    for doc in parse_documents(text, file):
        if isinstance(doc, Document) and _is_list(doc.data):
            for i, item in enumerate(doc.data["items"]):
                prefix = ("items", i)
                yield Document(item, file, doc.lines.get(prefix, doc.line), doc.lines, prefix)
        else:
            yield doc


def load_documents(paths: Iterable[str]) -> Iterator[Document | LoadError]:
    """Every document under ``paths``; unreadable paths raise SourceError before anything is yielded."""
    files = expand_paths(paths)
    for path in files:
        name = "<stdin>" if path == "-" else path
        try:
            text = read_text(path)
        except LoadError as exc:
            yield exc
            continue
        yield from documents_from_text(text, name)


class UnknownKind(ConfigError):
    """A well-formed object of a kind the mesh does not know (skipped, not invalid)."""


def to_resource(doc: Document) -> Resource:
    """Turn one document into a typed Resource, or raise ConfigError naming file:line and field."""
    data = doc.data
    pos = doc.position
    if not isinstance(data, dict):
        raise ConfigError(f"expected a Kubernetes object (a mapping), got {type(data).__name__}", position=pos)
    api_version, kind = data.get("apiVersion"), data.get("kind")
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    name = str(meta.get("name") or meta.get("generateName") or "")
    namespace = str(meta.get("namespace") or "")
    ctx = dict(position=pos, kind=str(kind or ""), namespace=namespace, name=name)
    if not isinstance(kind, str) or not kind:
        raise ConfigError("missing field \"kind\"", field_path="kind", **ctx)
    if not isinstance(api_version, str) or not api_version:
        raise ConfigError("missing field \"apiVersion\"", field_path="apiVersion", **ctx)
    info = kinds.lookup(api_version, kind)
    if info is None:
        known = kinds.by_kind(kind)
        group = api_version.rpartition("/")[0]
        same_group = [k for k in known if k.group == group]
        if same_group:
            served = ", ".join(same_group[0].api_versions())
            raise ConfigError(f"apiVersion {api_version} is not served for {kind} (served: {served})", field_path="apiVersion", **ctx)
        raise UnknownKind(f"unknown kind {kind} in {api_version}", **ctx)
    try:
        metadata = ObjectMeta.model_validate(data.get("metadata") or {}, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise _translate(exc, doc, ("metadata",), ctx) from None
    if not metadata.name and not metadata.generate_name:
        raise ConfigError("missing field \"metadata.name\"", field_path="metadata.name", **ctx)
    extra_top = {"apiVersion", "kind", "metadata", "status"}
    if info.spec_key:
        unknown = sorted(set(data) - extra_top - {info.spec_key})
        if unknown and info.istio:
            raise ConfigError(f"unknown field \"{unknown[0]}\"", field_path=unknown[0], position=Position(doc.file, doc.line_of((unknown[0],))), **{k: v for k, v in ctx.items() if k != "position"})
        body = data.get(info.spec_key)
        base: tuple[str, ...] = (info.spec_key,)
    else:
        body = {k: v for k, v in data.items() if k not in extra_top}
        base = ()
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ConfigError(f"expected a mapping, got {type(body).__name__}", field_path=".".join(base), **ctx)
    try:
        spec = info.model.model_validate(body, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise _translate(exc, doc, base, ctx) from None
    return Resource(
        api_version=api_version, kind=kind, metadata=metadata, spec=spec, status=data.get("status"),
        position=Position(doc.file, doc.line, doc.line_of if doc.lines else None), raw=data,
    )


def _translate(exc: ValidationError, doc: Document, base: tuple[str, ...], ctx: dict[str, Any]) -> ConfigError:
    """The first pydantic error as a ConfigError with a data path and its line."""
    err = exc.errors(include_url=False)[0]
    path = _data_path(doc.data, base + tuple(err["loc"]))
    extra = ""
    if err["type"] == "extra_forbidden":
        message = f"unknown field \"{path[-1]}\""
    elif err["type"] == "missing":
        message = f"missing required field \"{err['loc'][-1]}\""
        path = path + (str(err["loc"][-1]),) if path[-1:] != (err["loc"][-1],) else path
    else:
        message = err["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
    if len(exc.errors()) > 1:
        extra = f" (and {len(exc.errors()) - 1} more)"
    fpath = _format_path(path)
    position = Position(doc.file, doc.line_of(path))
    ctx = {k: v for k, v in ctx.items() if k != "position"}
    return ConfigError(message + extra, position=position, field_path=fpath, **ctx)


def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    """Follow a pydantic loc through the data, dropping union-member tags that are not keys."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and not out[-1:] == [part]:
            # A key that is absent (a missing field) or a tag; keep keys that look like fields.
            if part[:1].islower() and "[" not in part and part not in ("str", "int", "float", "bool", "dict", "list"):
                out.append(part)
                node = None
    return tuple(out)


def _format_path(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_resources(paths: Iterable[str]) -> tuple[list[Resource], list[ConfigError]]:
    """All resources under ``paths`` plus every error met; unknown kinds are skipped silently."""
    resources: list[Resource] = []
    errors: list[ConfigError] = []
    for doc in load_documents(paths):
        if isinstance(doc, LoadError):
            errors.append(doc)
            continue
        try:
            resources.append(to_resource(doc))
        except UnknownKind:
            continue
        except ConfigError as exc:
            errors.append(exc)
    return resources, errors
