"""What several process tests share: the CLI as a subprocess, its log, its worker processes,
an HTTP GET over a fresh client connection, and a counter from /stats' text."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..conftest import client

PILOTFISH = [sys.executable, "-c", "from pilotfish.cli.main import main; main()"]


class ProcessLog:
    """A subprocess's stderr, read without blocking until a line appears."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        self.fd = proc.stderr.fileno()
        os.set_blocking(self.fd, False)
        self.text = ""

    async def wait_for(self, needle: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.text += os.read(self.fd, 65536).decode()
            except BlockingIOError:
                pass
            if needle in self.text:
                return self.text
            await asyncio.sleep(0.05)
        raise AssertionError(f"{needle!r} not in log:\n{self.text}")


def children(pid: int) -> set[int]:
    try:
        return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


async def get(port: int, path: str, method: str = "GET") -> Any:
    async with client(port) as c:
        return await c.request(method, path=path)


def stat(text: str, name: str) -> int:
    """The value of ``name`` in /stats' text output."""
    for line in text.splitlines():
        if line.startswith(name + ": "):
            return int(line.split(": ")[1])
    raise AssertionError(f"{name} not in {text}")
