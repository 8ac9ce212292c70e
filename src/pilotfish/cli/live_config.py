"""A running mesh's config as the analyzers read it: every resource istiod serves (its config
directory and what was applied, Pods and Services included), as ``istioctl analyze`` reads a
live cluster; files given with ``-f`` are layered on top, so a change is checked before it is
applied."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..config.base import Resource
from ..config.errors import ConfigError
from ..config.loader import Document, UnknownKind, to_resource
from .istiod_client import get_json

LIVE = "istiod"  # the "file" live resources come from, in messages


def live_resources(istiod_url: str, token: str | None) -> list[Resource]:
    """Every resource istiod serves now; exits naming istiod when it cannot be asked."""
    items: list[Any] = get_json(istiod_url, "/apis/v1/resources", token).get("items") or []
    out = []
    for item in items:
        try:
            out.append(to_resource(Document(item, LIVE, 0)))
        except (UnknownKind, ConfigError):
            continue  # (istiod took it: it was valid then; a kind unknown here is not analyzed)
    return out


def layered(live: Iterable[Resource], files: Iterable[Resource]) -> list[Resource]:
    """The live config with the files' resources in place of those they name."""
    given = list(files)
    keys = {(r.kind, r.namespace or "default", r.name) for r in given}
    return [r for r in live if (r.kind, r.namespace or "default", r.name) not in keys] + given
