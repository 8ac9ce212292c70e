"""A pytest plugin that keeps every bootstrap document the tests parse (one JSON file each), the
source of the bootstrap seeds (``seeds.harvest``). Run from the project root:

    PYTHONPATH=fuzz HARVEST_DIR=/tmp/docs python -m pytest -p harvest_bootstraps tests/proxy/compile/test_bootstrap.py ...
    cd fuzz && python -c "import seeds; seeds.harvest('/tmp/docs')"
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pilotfish.proxy.compile.bootstrap_file as _bootstrap

_OUT = Path(os.environ.get("HARVEST_DIR", "harvested-bootstraps"))
_parse = _bootstrap.parse_bootstrap


def _keeping(doc: dict[str, Any]) -> Any:
    try:
        text = json.dumps(doc, sort_keys=True)
    except (TypeError, ValueError):
        return _parse(doc)
    _OUT.mkdir(parents=True, exist_ok=True)
    (_OUT / (hashlib.sha1(text.encode()).hexdigest()[:16] + ".json")).write_text(text)
    return _parse(doc)


_bootstrap.parse_bootstrap = _keeping  # before the test modules import it by name
