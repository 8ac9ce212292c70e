"""Helpers for tests of analyzers: resources from inline YAML, messages as (code, resource)."""

from __future__ import annotations

from collections.abc import Iterable

from ..base import Resource
from ..errors import ConfigError
from ..loader import Document, documents_from_text, to_resource
from .framework import Message


def load_yaml(text: str, file: str = "test.yaml") -> list[Resource]:
    """Every resource in a YAML stream; any document that does not load raises its ConfigError."""
    out = []
    for doc in documents_from_text(text, file):
        if isinstance(doc, ConfigError):
            raise doc
        assert isinstance(doc, Document)
        out.append(to_resource(doc))
    return out


def findings(messages: Iterable[Message]) -> list[tuple[str, str]]:
    """Messages as sorted (code, "Kind ns/name") pairs, the shape Istio's analyzer tests compare."""
    return sorted((m.code, str(m.resource)) for m in messages)
