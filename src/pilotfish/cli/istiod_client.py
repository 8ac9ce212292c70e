"""Reading istiod's HTTP API from the command line (proxy-status, proxy-config)."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

import click

DEFAULT_ISTIOD = "http://127.0.0.1:15014"
# istiod is reached directly, whatever HTTP_PROXY says (inside a mesh workload it names the sidecar).
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))



def _default_istiod() -> str:
    """$PILOTFISH_ISTIOD, else the istiod of the local mesh up in this directory, else the default."""
    if os.environ.get("PILOTFISH_ISTIOD"):
        return os.environ["PILOTFISH_ISTIOD"]
    try:
        with open(os.path.join(".pilotfish", "mesh.json")) as f:
            url = json.load(f)["istiod"]["http"]
        return str(url)
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_ISTIOD


istiod_option = click.option(
    "--istiod", "istiod_url", default=_default_istiod,
    show_default="$PILOTFISH_ISTIOD, the local mesh's, or " + DEFAULT_ISTIOD, help="istiod's HTTP API.")
token_option = click.option(
    "--token", default=lambda: os.environ.get("PILOTFISH_TOKEN"), help="Bearer token for istiod's API.")


def get_json(base: str, path: str, token: str | None = None) -> Any:
    """GET ``path`` from istiod as JSON, or exit with a message naming what failed."""
    status, data = call(base, "GET", path, token=token)
    if status >= 400:
        click.echo(f"error: istiod at {base} answered {status}: {_text(data)}", err=True)
        sys.exit(1)
    return data


def call(base: str, method: str, path: str, body: bytes | None = None, token: str | None = None) -> tuple[int, Any]:
    """(status, JSON body or text) of one API request; exits when istiod cannot be reached."""
    request = urllib.request.Request(base.rstrip("/") + path, data=body, method=method)
    if token:
        request.add_header("authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("content-type", "application/yaml")
    try:
        with _DIRECT.open(request, timeout=30) as response:
            return response.status, _decode(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _decode(exc.read())
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        click.echo(f"error: cannot reach istiod at {base}: {reason}", err=True)
        sys.exit(1)


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace").strip()


def _text(data: Any) -> str:
    if isinstance(data, dict) and "errors" in data:
        return "; ".join(map(str, data["errors"]))
    if isinstance(data, dict) and "error" in data:
        return str(data["error"])
    return str(data)
