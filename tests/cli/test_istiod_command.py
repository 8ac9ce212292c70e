"""`pilotfish istiod` as a process: it serves, answers its API, and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

PILOTFISH = [sys.executable, "-c", "from pilotfish.cli.main import main; main()"]


def test_istiod_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "se.yaml").write_text("""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: default}
spec: {hosts: [web.internal], ports: [{number: 80, name: http, protocol: HTTP}], resolution: DNS}
""")
    proc = subprocess.Popen([*PILOTFISH, "istiod", "--config-dir", str(tmp_path), "--xds-port", "0",
                             "--http-port", "0", "--log-level", "warning"], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = ""
        deadline = time.monotonic() + 30
        while "istiod ready" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
        assert "istiod ready" in line, line
        http = line.rsplit("http ", 1)[1].strip()
        with urllib.request.urlopen(f"http://{http}/ready", timeout=5) as r:
            assert r.status == 200
        with urllib.request.urlopen(f"http://{http}/debug/registryz", timeout=5) as r:
            assert b"web.internal" in r.read()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_public_address_needs_a_token_file(tmp_path: Path) -> None:
    done = subprocess.run([*PILOTFISH, "istiod", "--config-dir", str(tmp_path), "--address", "0.0.0.0",
                           "--xds-port", "0", "--http-port", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "needs --token-file" in done.stderr


def test_a_token_file_is_made_private_when_missing(tmp_path: Path) -> None:
    from pilotfish.cli.istiod_command import _token

    path = tmp_path / "token"
    token = _token("0.0.0.0", str(path))
    assert token and path.read_text().strip() == token and (os.stat(path).st_mode & 0o777) == 0o600
    assert _token("127.0.0.1", None) is None
