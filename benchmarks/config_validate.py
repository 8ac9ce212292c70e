"""Load and validate Istio config: the whole shared corpus, then 1,000 resources from it.

Target: 1,000 resources parsed and validated in under 1 s of CPU on one core.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

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
    texts_1000 = []
    import yaml

    for i in range(1000):
        texts_1000.append(yaml.safe_dump(istio[i % len(istio)].data))
    blob = "---\n".join(texts_1000)
    _validate_all(list(documents_from_text(blob, "warmup")))
    start = time.process_time()
    n_valid, n_invalid = _validate_all(list(documents_from_text(blob, "bench")))
    cpu_1000 = time.process_time() - start
    return [
        ("corpus: documents loaded", str(len(docs)), f"{valid} valid, {invalid} invalid, {corpus_cpu:.2f} s CPU"),
        ("1,000 Istio resources: parse + validate", f"{cpu_1000:.3f} s CPU", "target < 1 s on one core"),
        ("  throughput", f"{(n_valid + n_invalid) / cpu_1000:,.0f} resources/s", ""),
    ]


if __name__ == "__main__":
    for row in run():
        print(" | ".join(row))
    sys.exit(0)
