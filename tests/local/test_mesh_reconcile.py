"""The supervisor's reconcile loop notices every change to the store, deletions included."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pilotfish.config.store import ConfigStore
from pilotfish.local.mesh import Mesh, MeshOptions, store_state
from pilotfish.local.state import State


def deployment(name: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": {
                "metadata": {"labels": {"app": name}, "annotations": {"pilotfish.io/run": "{python} app.py"}},
                "spec": {"containers": [{"name": name, "image": "app"}]}}}}


def test_deleting_an_older_object_changes_the_store_state(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    store.apply(deployment("a"))
    store.apply(deployment("b"))
    before = store_state(ConfigStore(tmp_path).list())
    version = ConfigStore(tmp_path).resource_version
    store.delete("Deployment", "default", "a")
    # the store loaded from its files keeps the highest version left: a's deletion does not show there
    assert ConfigStore(tmp_path).resource_version == version
    assert store_state(ConfigStore(tmp_path).list()) != before


async def test_the_reconcile_loop_sees_a_deployment_deleted(tmp_path: Path) -> None:
    state = State(tmp_path / ".pilotfish")
    state.create()
    store = ConfigStore(state.applied_dir)
    store.apply(deployment("a"))
    store.apply(deployment("b"))
    mesh = Mesh(state, MeshOptions(reconcile_interval=0.01))
    mesh.store_resources()
    seen: list[set[str]] = []

    async def reconcile(resources: list) -> None:  # type: ignore[type-arg]
        seen.append({r.name for r in resources if r.kind == "Deployment"})

    mesh.reconcile = reconcile  # type: ignore[method-assign]
    loop = asyncio.create_task(mesh._reconcile_forever())
    try:
        await asyncio.sleep(0.05)
        assert seen == []  # nothing changed
        store.delete("Deployment", "default", "a")
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
        assert seen == [{"b"}]
    finally:
        loop.cancel()
