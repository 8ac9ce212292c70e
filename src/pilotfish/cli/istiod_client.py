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

istiod_option = click.option(
    "--istiod", "istiod_url", default=lambda: os.environ.get("PILOTFISH_ISTIOD", DEFAULT_ISTIOD),
    show_default="$PILOTFISH_ISTIOD or " + DEFAULT_ISTIOD, help="istiod's HTTP API.")
token_option = click.option(
    "--token", default=lambda: os.environ.get("PILOTFISH_TOKEN"), help="Bearer token for istiod's API.")


def get_json(base: str, path: str, token: str | None = None) -> Any:
    """GET ``path`` from istiod as JSON, or exit with a message naming what failed."""
    request = urllib.request.Request(base.rstrip("/") + path)
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace").strip()
        click.echo(f"error: istiod at {base} answered {exc.code}: {body}", err=True)
        sys.exit(1)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        click.echo(f"error: cannot reach istiod at {base}: {reason}", err=True)
        sys.exit(1)
