"""Fuzz the config edge and compiler with atheris mutating valid bootstraps (YAML or JSON text).

The seeds (fuzz/corpus/bootstrap_yaml/) are bootstraps the test suite runs and Istio's sidecar
bootstrap. Each input goes the way ``pilotfish proxy --bootstrap`` takes it: YAML → document →
``parse_bootstrap`` (protobuf parse, subset check, ADS settings) → ``compile_bootstrap``.
Invariant: it compiles, or raises ``ProxyConfigError`` naming where (a field path, or the
protobuf parser's message naming the field) — never another exception. Mutations are both
libFuzzer's (bytes) and structural (``custom_mutator``: edits of the parsed document).
"""

from __future__ import annotations

import random
from typing import Any

import yaml

from _common import check, instrumented, main

with instrumented(__name__):
    from pilotfish.proxy.compile.bootstrap_file import parse_bootstrap
    from pilotfish.proxy.compile import compile_bootstrap
    from pilotfish.proxy.common.errors import ProxyConfigError


def compile_document(doc: dict[str, Any]) -> ProxyConfigError | None:
    """The CLI's path from a document to runtime objects: None when it compiles, else the
    ProxyConfigError, which must name where; any other exception propagates."""
    try:
        loaded = parse_bootstrap(doc)
        compile_bootstrap(loaded.message, random.Random(1), loaded.warnings)
    except ProxyConfigError as exc:
        check(exc.field_path or str(exc).startswith(("invalid bootstrap:", "unknown @type")),
              "config: error without a path", str(exc))
        return exc
    return None


def test_one_input(data: bytes) -> None:
    try:
        doc = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return  # read_document's ProxyConfigError ("not valid YAML/JSON"); not what is fuzzed here
    if not isinstance(doc, dict):
        return  # likewise ("a bootstrap must be a mapping")
    compile_document(doc)


# ---- structural mutation -------------------------------------------------------------------
# Byte mutations of YAML mostly break its syntax or a field name, which only exercises the
# parser's first error. Half the time the mutator below edits the document instead: it
# deletes, duplicates or moves a subtree, renames a key to one the seeds use elsewhere, or puts
# an edge value (or a value the seeds use) in place of one; libFuzzer's byte mutations do the rest.
_EDGE_VALUES: list[Any] = [0, -1, 1, 2**31, 2**32, 2**63, -2**63, 1.5, -0.0, float("inf"), "", "x", True, False,
                           None, [], {}, "0s", "-1s", "1.5s", "315576000001s", "0.0000000001s", "NaN",
                           "auto", "round_robin", "STATIC", "ROUND_ROBIN", "*", "/", "\u0000", "a" * 300]
_pool: dict[str, list[Any]] = {}


def _seed_pool() -> dict[str, list[Any]]:
    """Keys and scalar values the seed bootstraps use (fuzz/corpus/bootstrap_yaml/)."""
    if not _pool:
        from pathlib import Path

        keys: set[str] = set()
        values: list[Any] = []
        subtrees: list[Any] = []
        for path in sorted((Path(__file__).parent / "corpus" / "bootstrap_yaml").iterdir()):
            try:
                doc = yaml.safe_load(path.read_text())
            except (yaml.YAMLError, UnicodeDecodeError):
                continue
            for _parent, key, value in _nodes(doc):
                if isinstance(key, str):
                    keys.add(key)
                if isinstance(value, (dict, list)):
                    if len(subtrees) < 2000:
                        subtrees.append(value)
                elif value not in values:
                    values.append(value)
        _pool.update(keys=sorted(keys), values=values, subtrees=subtrees)
    return _pool


def _nodes(doc: Any) -> list[tuple[Any, Any, Any]]:
    """(container, key or index, value) of every node below ``doc``."""
    out: list[tuple[Any, Any, Any]] = []
    stack = [doc]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            out.append((node, key, value))
            stack.append(value)
    return out


def _mutate_doc(doc: dict[str, Any], rng: random.Random) -> None:
    import copy

    pool = _seed_pool()
    nodes = _nodes(doc)
    if not nodes:
        doc[rng.choice(pool["keys"])] = copy.deepcopy(rng.choice(pool["subtrees"] or [{}]))
        return
    parent, key, value = rng.choice(nodes)
    op = rng.randrange(7)
    if op == 0:  # delete
        del parent[key]
    elif op == 1:  # an edge value
        parent[key] = copy.deepcopy(rng.choice(_EDGE_VALUES))
    elif op == 2:  # a value the seeds use
        parent[key] = rng.choice(pool["values"]) if pool["values"] else None
    elif op == 3:  # a subtree from elsewhere
        parent[key] = copy.deepcopy(rng.choice(pool["subtrees"] or [{}]))
    elif op == 4 and isinstance(parent, dict):  # rename the key
        parent[rng.choice(pool["keys"])] = parent.pop(key)
    elif op == 5 and isinstance(parent, list):  # duplicate a list item
        parent.insert(key, copy.deepcopy(value))
    elif isinstance(value, dict):  # add a field the seeds use somewhere
        value[rng.choice(pool["keys"])] = copy.deepcopy(
            rng.choice(pool["values"] + pool["subtrees"][:50] or [None]))
    else:  # a single object where a list is expected, and the reverse
        parent[key] = value[0] if isinstance(value, list) and value else [value]


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    import json

    import atheris

    rng = random.Random(seed)
    if rng.random() < 0.5:
        return atheris.Mutate(data, max_size)
    try:
        doc = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return atheris.Mutate(data, max_size)
    if not isinstance(doc, dict):
        return atheris.Mutate(data, max_size)
    for _ in range(rng.randint(1, 3)):
        _mutate_doc(doc, rng)
    try:
        out = json.dumps(doc).encode()  # JSON is YAML; NaN/Infinity come back as YAML floats
    except (TypeError, ValueError):
        return atheris.Mutate(data, max_size)
    return out if len(out) <= max_size else atheris.Mutate(data, max_size)


if __name__ == "__main__":
    main(test_one_input, custom_mutator)
