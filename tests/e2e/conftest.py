"""End-to-end fixtures: meshes brought up with ``pilotfish up`` in directories of their own.

A module's tests share one mesh (module scope); pytest runs with ``--dist loadfile``, so one
worker runs a module's tests, against that one mesh."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ..corpus import corpus_path
from .harness import Mesh


@pytest.fixture(scope="module")
def mesh_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Mesh]]:
    """``mesh_factory(*files, extra=())``: a mesh up with those files; all are stopped after the module."""
    meshes: list[Mesh] = []

    def make(*files: str | Path, extra: tuple[str, ...] = ()) -> Mesh:
        corpus_path("bookinfo", "samples")  # (skips, or fails under CI, without Istio's YAML)
        mesh = Mesh(tmp_path_factory.mktemp("mesh"))
        meshes.append(mesh)
        mesh.up(*files, extra=extra)
        return mesh

    yield make
    for mesh in meshes:
        mesh.down()
