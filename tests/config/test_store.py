"""The persistent store: CRUD, optimistic concurrency, watch, and crash safety."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from pilotfish.config.errors import ConfigError
from pilotfish.config.store import AlreadyExists, ConfigStore, Conflict, EventType, NotFound


def vs(name: str, host: str = "reviews", namespace: str = "default") -> dict:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"hosts": [host], "http": [{"route": [{"destination": {"host": host}}]}]},
    }


def test_create_get_list_update_delete(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    created = store.create(vs("a"))
    assert created.metadata.resource_version == "1"
    assert store.get("VirtualService", "default", "a").spec.hosts == ["reviews"]
    with pytest.raises(AlreadyExists):
        store.create(vs("a"))
    updated = store.update(vs("a", host="ratings"), resource_version="1")
    assert updated.metadata.resource_version == "2"
    with pytest.raises(Conflict):
        store.update(vs("a", host="details"), resource_version="1")
    assert [r.name for r in store.list("VirtualService")] == ["a"]
    store.delete("VirtualService", "default", "a")
    with pytest.raises(NotFound):
        store.get("VirtualService", "default", "a")


def test_survives_a_restart(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    store.create(vs("a"))
    store.create(vs("b", namespace="other"))
    store.update(vs("a", host="ratings"))
    reopened = ConfigStore(tmp_path)
    assert reopened.get("VirtualService", "default", "a").spec.hosts == ["ratings"]
    assert len(reopened) == 2
    assert reopened.create(vs("c")).metadata.resource_version == "4"


def test_invalid_resource_is_refused_before_writing(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    bad = vs("bad")
    bad["spec"]["hosts"] = []
    bad["spec"]["http"][0]["route"][0]["destination"]["host"] = ""
    with pytest.raises(ConfigError):
        store.create(bad)
    unknown = vs("bad2")
    unknown["spec"]["bogus"] = 1
    with pytest.raises(ConfigError, match="bogus"):
        store.create(unknown)
    assert len(store) == 0
    assert not list(tmp_path.rglob("*.yaml"))


async def test_watch_sees_existing_then_changes(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    store.create(vs("a"))
    events = store.watch()
    store.create(vs("b"))
    store.delete("VirtualService", "default", "a")
    seen = [await asyncio.wait_for(events.__anext__(), 2) for _ in range(3)]
    assert [(e.type, e.resource.name) for e in seen] == [
        (EventType.ADDED, "a"),
        (EventType.ADDED, "b"),
        (EventType.DELETED, "a"),
    ]
    await events.aclose()


WRITER = textwrap.dedent(
    """
    import sys
    from pilotfish.config.store import ConfigStore
    store = ConfigStore(sys.argv[1])
    i = 0
    while True:
        name = f"vs-{i % 40}"
        body = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"hosts": [f"h{i}.example.com"], "http": [{"route": [{"destination": {"host": "x" * 2000}}]}]}}
        store.apply(body)
        print(name, i, flush=True)
        i += 1
    """
)


def test_killing_a_writer_never_loses_or_tears_an_acknowledged_write(tmp_path: Path) -> None:
    root = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root)], stdout=subprocess.PIPE, text=True)
    acked: dict[str, int] = {}
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            name, i = line.split()
            acked[name] = int(i)
            if len(acked) == 40 and int(i) > 150:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    for f in root.rglob("*.yaml"):
        yaml.safe_load(f.read_text())  # every file is whole
    store = ConfigStore(root)
    for name, i in acked.items():
        host = store.get("VirtualService", "default", name).spec.hosts[0]
        # The acknowledged version, or one written after it that wasn't acknowledged yet.
        assert int(host[1:].split(".")[0]) >= i
    assert not list(root.rglob(".tmp-*"))
