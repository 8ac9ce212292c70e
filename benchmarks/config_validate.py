"""Load and validate Istio config: the whole shared corpus, then 5,000 resources from it,
in-process and through ``pilotfish validate`` as a user runs it.

Target: 5,000 resources validated in under 2 s (the command, start-up included).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from pilotfish.config.errors import ConfigError, LoadError
from pilotfish.config.loader import UnknownKind, documents_from_text, load_documents, to_resource
from pilotfish.config.validation import validate

CORPUS = Path(os.environ.get("PILOTFISH_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "istio-corpus"))


def _validate_all(docs: list) -> tuple[int, int]:
    valid = invalid = 0
    for doc in docs:
        if isinstance(doc, LoadError):
            invalid += 1
            continue
        try:
            ok = validate(to_resource(doc)).valid
        except UnknownKind:
            continue
        except ConfigError:
            ok = False
        valid += ok
        invalid += not ok
    return valid, invalid


def run() -> list[tuple[str, str, str]]:
    paths = [str(CORPUS / "bookinfo"), str(CORPUS / "testdata")]
    start = time.process_time()
    docs = list(load_documents(paths))
    valid, invalid = _validate_all(docs)
    corpus_cpu = time.process_time() - start

    texts = [Path(p).read_text() for p in sorted(str(f) for f in (CORPUS / "bookinfo").rglob("*.yaml"))]
    texts += [Path(p).read_text() for p in sorted(str(f) for f in (CORPUS / "testdata").rglob("*.yaml"))]
    pool = []
    for i, text in enumerate(texts):
        pool.extend(d for d in documents_from_text(text, f"f{i}") if not isinstance(d, LoadError))
    istio = [d for d in pool if isinstance(d.data, dict) and "istio.io" in str(d.data.get("apiVersion", ""))]
    blob = "---\n".join(yaml.safe_dump(istio[i % len(istio)].data) for i in range(N))
    _validate_all(list(documents_from_text(blob, "warmup")))
    start = time.process_time()
    n_valid, n_invalid = _validate_all(list(documents_from_text(blob, "bench")))
    cpu = time.process_time() - start
    command_cpu, wall = _command(blob)
    return [
        ("corpus: documents loaded", str(len(docs)), f"{valid} valid, {invalid} invalid, {corpus_cpu:.2f} s CPU"),
        (f"{N:,} Istio resources: parse + validate", f"{cpu:.3f} s CPU", f"{(n_valid + n_invalid) / cpu:,.0f} resources/s"),
        (f"pilotfish validate -f ({N:,} resources)", f"{wall:.2f} s wall, {command_cpu:.2f} s CPU", "target < 2 s"),
    ]


N = 5000


def _command(blob: str) -> tuple[float, float]:
    """``pilotfish validate`` on one file of the resources: (CPU, wall) seconds, start-up included."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(blob)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([str(Path(sys.executable).with_name("pilotfish")), "validate", "-f", str(path)],
                       stdout=subprocess.DEVNULL, check=False)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


if __name__ == "__main__":
    for row in run():
        print(" | ".join(row))
    sys.exit(0)
