"""Typed errors for config handling. Library code raises these; only the CLI prints them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Position:
    """Where a piece of config came from: file (or "-" for stdin) and 1-based line."""

    file: str = ""
    line: int = 0

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


@dataclass
class Verdict:
    """Result of validating one resource: Istio's (warnings, error) pair, as lists."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors
