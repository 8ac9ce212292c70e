"""The local mesh's state under ``.pilotfish/`` in the working directory, and its addresses.

    .pilotfish/config/          istiod's config directory (what ``up -f`` and ``apply`` stored,
                                in config/applied/: kept across ``down`` and ``up``)
    .pilotfish/mesh-config.yaml the MeshConfig istiod serves with (``up --mesh-config``; kept)
    .pilotfish/config/pods/     the Pods of running instances without a sidecar (for the registry)
    .pilotfish/agents/POD.json  each instance's agent spec
    .pilotfish/logs/            istiod.log, mesh.log, POD.agent.log, POD.proxy.log, POD.app.log
    .pilotfish/mesh.json        the running mesh: the supervisor's pid, istiod, every workload
                                and gateway with its address, ports and pids (``status`` reads it)

Each mesh takes a /24 of 127.0.0.0/8 (all of it reaches lo on Linux), chosen from the state
directory's path so that meshes in different directories do not meet: .1 is istiod, .2 the
ingress gateway, .3 the egress gateway, and workload instances from .10 on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_DIR = ".pilotfish"
ISTIOD_HOST, INGRESS_HOST, EGRESS_HOST, FIRST_WORKLOAD_HOST = 1, 2, 3, 10


@dataclass(frozen=True)
class State:
    root: Path

    @staticmethod
    def here(cwd: Path | None = None) -> State:
        return State((cwd or Path.cwd()).resolve() / STATE_DIR)

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def applied_dir(self) -> Path:
        return self.config_dir / "applied"

    @property
    def pods_dir(self) -> Path:
        return self.config_dir / "pods"

    @property
    def mesh_config(self) -> Path:
        return self.root / "mesh-config.yaml"

    @property
    def agents_dir(self) -> Path:
        return self.root / "agents"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def mesh_file(self) -> Path:
        return self.root / "mesh.json"

    def create(self) -> None:
        for d in (self.applied_dir, self.agents_dir, self.logs_dir):
            d.mkdir(parents=True, exist_ok=True)

    def read_mesh(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.mesh_file.read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return None

    def write_mesh(self, data: dict[str, Any]) -> None:
        """Atomically (a reader never sees half a file)."""
        tmp = self.mesh_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        os.replace(tmp, self.mesh_file)

    def clear_mesh(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.mesh_file.unlink()

    def clear_pods(self) -> None:
        if self.pods_dir.exists():
            for pod in self.pods_dir.glob("*.yaml"):
                pod.unlink(missing_ok=True)

    def subnet(self) -> str:
        """``127.A.B.`` for this state directory (A in 16..254, so 127.0.x and 127.1.x stay free)."""
        digest = hashlib.sha256(str(self.root).encode()).digest()
        return f"127.{16 + digest[0] % 239}.{digest[1]}."

    def address(self, host: int) -> str:
        return f"{self.subnet()}{host}"


def loopback_alias_works(ip: str) -> bool:
    """Whether a socket can bind ``ip`` (Linux routes all of 127/8 to lo; other systems may not)."""
    with socket.socket() as s:
        try:
            s.bind((ip, 0))
        except OSError:
            return False
    return True


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][:1] != "Z"
    except OSError:
        return True
