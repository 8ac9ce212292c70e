"""A supervised child process: started with its output in a log file, restarted with back-off
when it exits on its own, stopped with SIGTERM and, after a grace period, SIGKILL.

On Linux each child asks the kernel for SIGTERM when its parent dies (PR_SET_PDEATHSIG), so a
killed agent or mesh leaves no process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

log = logging.getLogger("pilotfish.agent")

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Backoff:
    """Delays between restarts: doubling from ``first`` to ``most``, and back to ``first`` once a
    run lasted ``stable`` seconds (a crash loop slows down; a rare crash restarts quickly)."""

    def __init__(self, first: float = 0.5, most: float = 30.0, stable: float = 10.0) -> None:
        self.first, self.most, self.stable = first, most, stable
        self.delay = first

    def next(self, ran_for: float) -> float:
        if ran_for >= self.stable:
            self.delay = self.first
        delay, self.delay = self.delay, min(self.delay * 2, self.most)
        return delay


class Child:
    def __init__(self, name: str, argv: Sequence[str], log_path: Path, *, env: Mapping[str, str] | None = None,
                 cwd: str | None = None, backoff: Backoff | None = None,
                 on_start: Callable[[Child], None] | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.backoff = backoff or Backoff()
        self.on_start = on_start
        self.proc: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self.started_at = 0.0
        self.last_exit: int | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    async def start(self) -> None:
        """Start the process and keep it running until stop()."""
        await self._spawn()
        self._task = asyncio.get_running_loop().create_task(self._supervise())

    async def _spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out, env=self.env, cwd=self.cwd,
                preexec_fn=_die_with_parent)
        self.started_at = time.monotonic()
        log.info("%s: started (pid %d)", self.name, self.proc.pid)
        if self.on_start is not None:
            self.on_start(self)

    async def _supervise(self) -> None:
        while True:
            assert self.proc is not None
            code = await self.proc.wait()
            self.last_exit = code
            if self._stopping:
                return
            delay = self.backoff.next(time.monotonic() - self.started_at)
            log.warning("%s: exited with %s; restarting in %.1fs", self.name, code, delay)
            await asyncio.sleep(delay)
            if self._stopping:
                return
            self.restarts += 1
            try:
                await self._spawn()
            except OSError as exc:
                log.error("%s: cannot start: %s", self.name, exc)

    async def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; no restart afterwards."""
        self._stopping = True
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except asyncio.TimeoutError:
                log.warning("%s: did not stop in %.1fs; killing it", self.name, grace)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The agent's environment plus ``extra``: PATH, HOME and locale carry over, as a container's
    image environment would."""
    env = dict(os.environ)
    env.update(extra)
    return env
