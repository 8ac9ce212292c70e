"""Typed errors for config handling. Library code raises these; only the CLI prints them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Position:
    """Where a piece of config came from: file (or "-" for stdin) and 1-based line; for an object
    read from YAML, also the line of each of its fields (the loader's line map), so a message
    about one field can point at it. Positions compare by file and line alone."""

    file: str = ""
    line: int = 0
    field_line: Callable[[FieldPath], int] | None = field(default=None, compare=False, repr=False)

    def of(self, path: FieldPath) -> Position:
        """Where the field at ``path`` is (the deepest part of it that exists), else this."""
        if self.field_line is None or not path or not self.file:
            return self
        return Position(self.file, self.field_line(path))

    def __str__(self) -> str:
        if not self.file:
            return ""
        return f"{self.file}:{self.line}" if self.line else self.file


class ConfigError(Exception):
    """Config that cannot be used, with everything a user needs to find it."""

    def __init__(
        self,
        message: str,
        *,
        position: Position | None = None,
        kind: str = "",
        namespace: str = "",
        name: str = "",
        field_path: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.position = position or Position()
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.field_path = field_path

    @property
    def resource(self) -> str:
        if not self.kind:
            return ""
        ref = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {ref}".strip()

    def __str__(self) -> str:
        parts = [str(self.position)] if str(self.position) else []
        if self.resource:
            parts.append(self.resource)
        if self.field_path:
            parts.append(self.field_path)
        prefix = ": ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


class LoadError(ConfigError):
    """Input that is not config at all: unreadable, not YAML, too big, too deep."""


FieldPath = tuple["str | int", ...]


class FieldError(str):
    """One of Istio's messages (the text, unchanged) with the field it is about, as a path of
    YAML keys and list indexes from the object's root; a plain ``str`` where it is not known.
    A validator gives the path below what it was handed; its caller puts its own in front
    (``at``), so every message ends up naming its field from ``spec``."""

    path: FieldPath

    def __new__(cls, text: str, path: FieldPath = ()) -> FieldError:
        self = super().__new__(cls, text)
        self.path = path
        return self


def at(prefix: FieldPath, messages: list[str]) -> list[str]:
    """``messages`` about the field at ``prefix`` (their own paths, if any, continue it)."""
    return [FieldError(m, prefix + getattr(m, "path", ())) for m in messages]


def crd_error(path: FieldPath, text: str) -> FieldError:
    """A CRD schema or CEL message, which names its field itself (``spec.x: Required value``)."""
    return FieldError(f"{format_path(path)}: {text}", path)


def field_path(m: str) -> FieldPath:
    return getattr(m, "path", ())


def with_field(message: str) -> str:
    """``spec.http[0].timeout: <Istio's message>``; the message alone when its field is unknown."""
    path = field_path(message)
    if not path:
        return str(message)
    named = format_path(path)
    # The CRDs' messages name their field themselves: "spec.x: Required value", or a field below
    # it: "spec.selector.matchLabels.app: Too long" -- or the end of it ("timeout: Invalid
    # value: ..."), which the API server would have named from the root, as here.
    if message.startswith(named) and message[len(named):len(named) + 1] in (":", ".", "[", " "):
        return str(message)
    for i in range(1, len(path)):
        tail = format_path(path[i:])
        if isinstance(path[i], str) and message.startswith(tail + ":"):
            return named + message[len(tail):]
    return f"{named}: {message}"


def format_path(path: FieldPath) -> str:
    """``spec.http[0].route[0].destination.host``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass
class Verdict:
    """Result of validating one resource: Istio's (warnings, error) pair, as lists."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors

    def under(self, path: FieldPath, check: Callable[[Verdict], object]) -> None:
        """Run a check that fills a Verdict of its own; its messages join these, placed at ``path``."""
        one = Verdict()
        check(one)
        self.errors += at(path, one.errors)
        self.warnings += at(path, one.warnings)
