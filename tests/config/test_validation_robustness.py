"""Validators never crash: every leaf of Istio's valid examples replaced by odd values."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import yaml

from pilotfish.config.errors import ConfigError
from pilotfish.config.loader import Document, to_resource
from pilotfish.config.validation import validate
from tests.corpus import corpus_path

ODD_VALUES: list[Any] = ["", 0, -1, None, [], {}, "*", "a" * 300, 4294967296, True]


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, path + (i,))
    yield path


def _replaced(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


def test_odd_values_give_verdicts_not_crashes() -> None:
    cases = yaml.safe_load(corpus_path("validation", "cases.yaml").read_text())
    checked = 0
    for case in cases:
        if not case["valid"]:
            continue
        resource = case["resource"]
        for path in _leaves(resource.get("spec") or {}):
            if not path:
                continue
            for value in ODD_VALUES:
                data = copy.deepcopy(resource)
                data["spec"] = _replaced(resource["spec"], path, value)
                try:
                    parsed = to_resource(Document(data, "case", 1))
                except ConfigError:
                    continue
                validate(parsed)  # must return a Verdict, whatever the input
                checked += 1
    assert checked > 500
