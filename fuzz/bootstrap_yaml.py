"""Fuzz the config edge and compiler with atheris mutating valid bootstraps (YAML or JSON text).

The seeds (fuzz/corpus/bootstrap_yaml/) are bootstraps the test suite runs and Istio's sidecar
bootstrap. Each input goes the way ``pilotfish proxy --bootstrap`` takes it: YAML → document →
``parse_bootstrap`` (protobuf parse, subset check, ADS settings) → ``compile_bootstrap``.
Invariant: it compiles, or raises ``ProxyConfigError`` naming where (a field path, or the
protobuf parser's message naming the field) — never another exception.
"""

from __future__ import annotations

import random
from typing import Any

import yaml

from _common import check, instrumented, main

with instrumented(__name__):
    from pilotfish.proxy.bootstrap import parse_bootstrap
    from pilotfish.proxy.compile import compile_bootstrap
    from pilotfish.proxy.errors import ProxyConfigError


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


if __name__ == "__main__":
    main(test_one_input)
