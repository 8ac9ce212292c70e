"""The config directory: whole files at their last good version, errors naming file and resource."""

from __future__ import annotations

import os
from pathlib import Path

from pilotfish.istiod.config_dir import ConfigDir

VS = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews}}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {{host: reviews, subset: {subset}}}
      weight: {weight}
"""
DR = """apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: bookinfo}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
"""


def subsets(c: ConfigDir) -> list[str]:
    return [d.destination.subset for r in c.resources() if r.kind == "VirtualService"
            for h in r.spec.http for d in h.route]


def test_files_load_with_the_default_namespace_and_hidden_files_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "vs.yaml").write_text(VS.format(subset="v1", weight=100))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "dr.yml").write_text(DR)
    (tmp_path / ".hidden.yaml").write_text(DR.replace("name: reviews,", "name: other,"))
    (tmp_path / "notes.txt").write_text("not config")
    c = ConfigDir(tmp_path)
    assert c.load_all() == []
    assert sorted((r.kind, r.namespace, r.name) for r in c.resources()) == [
        ("DestinationRule", "bookinfo", "reviews"), ("VirtualService", "default", "reviews")]


def test_an_invalid_edit_keeps_the_previous_version_and_names_the_file_and_resource(tmp_path: Path) -> None:
    path = tmp_path / "vs.yaml"
    path.write_text(VS.format(subset="v1", weight=100))
    c = ConfigDir(tmp_path)
    c.load_all()
    path.write_text(VS.format(subset="v2", weight=-5))
    assert c.reload({str(path)}) is False
    assert subsets(c) == ["v1"]
    (problem,) = c.problems()
    assert problem.file == str(path)
    # The field's line and path, with Istio's message.
    assert f"{path}:9: VirtualService default/reviews: spec.http[0].route[0].weight: weight -5 < 0" in problem.errors[0]
    path.write_text(VS.format(subset="v2", weight=100))
    assert c.reload({str(path)}) is True
    assert subsets(c) == ["v2"] and c.problems() == []


def test_a_half_written_file_is_refused_whole(tmp_path: Path) -> None:
    path = tmp_path / "both.yaml"
    path.write_text(VS.format(subset="v1", weight=100) + "---\n" + DR)
    c = ConfigDir(tmp_path)
    c.load_all()
    path.write_text(VS.format(subset="v3", weight=100) + "---\n" + DR + "  trafficPolicy: [unclosed\n")
    assert c.reload({str(path)}) is False
    assert subsets(c) == ["v1"] and len(c.resources()) == 2
    assert str(path) in c.problems()[0].errors[0]


def test_removal_and_atomic_replacement(tmp_path: Path) -> None:
    path = tmp_path / "vs.yaml"
    path.write_text(VS.format(subset="v1", weight=100))
    c = ConfigDir(tmp_path)
    c.load_all()
    tmp = tmp_path / ".vs.yaml.tmp"
    tmp.write_text(VS.format(subset="v2", weight=100))
    os.replace(tmp, path)  # what editors and `kubectl`-like tools do
    assert c.reload({str(path), str(tmp)}) is True and subsets(c) == ["v2"]
    path.unlink()
    assert c.reload({str(path)}) is True and c.resources() == ()


def test_the_same_object_in_two_files_is_taken_once(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(VS.format(subset="v1", weight=100))
    (tmp_path / "b.yaml").write_text(VS.format(subset="v2", weight=100))
    c = ConfigDir(tmp_path)
    c.load_all()
    assert subsets(c) == ["v1"] and c.owner("VirtualService", "default", "reviews") == str(tmp_path / "a.yaml")


def test_the_kinds_an_edit_changes_are_noted_for_a_narrower_push(tmp_path: Path) -> None:
    from pilotfish.istiod.server import types_for
    from pilotfish.xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE

    path = tmp_path / "both.yaml"
    path.write_text(VS.format(subset="v1", weight=100) + "---\n" + DR)
    c = ConfigDir(tmp_path)
    c.load_all()
    c.changed_kinds.clear()
    path.write_text(VS.format(subset="v2", weight=100) + "---\n" + DR)
    assert c.reload({str(path)}) and c.changed_kinds == {"VirtualService"}
    assert types_for(c.changed_kinds) == {LISTENER, ROUTE}
    assert types_for({"DestinationRule"}) == {CLUSTER, ENDPOINT, ROUTE}
    assert types_for({"ServiceEntry"}) == {CLUSTER, ENDPOINT, LISTENER, ROUTE}
    c.changed_kinds.clear()
    path.unlink()
    assert c.reload({str(path)}) and c.changed_kinds == {"VirtualService", "DestinationRule"}


def test_a_rescan_finds_what_changed_since_the_last_read(tmp_path: Path) -> None:
    path = tmp_path / "vs.yaml"
    path.write_text(VS.format(subset="v1", weight=100))
    c = ConfigDir(tmp_path)
    c.load_all()
    assert c.rescan() is False  # nothing changed: nothing is read again
    path.write_text(VS.format(subset="v2", weight=100) + "\n")
    (tmp_path / "dr.yaml").write_text(DR)
    assert c.rescan() is True
    assert subsets(c) == ["v2"] and len(c.resources()) == 2
    path.unlink()
    assert c.rescan() is True and [r.kind for r in c.resources()] == ["DestinationRule"]
