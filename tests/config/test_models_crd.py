"""Every field of every served version in Istio's CRDs exists in our models, and no more."""

from __future__ import annotations

import types
import typing
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from pilotfish.config import kinds
from tests.corpus import CORPUS, corpus_path


def _crd_versions() -> list[tuple[str, str, str, dict[str, Any]]]:
    path = CORPUS / "crds" / "crd-all.gen.yaml"
    if not path.exists():
        return []
    out = []
    for doc in yaml.safe_load_all(path.read_text()):
        if not doc or doc.get("kind") != "CustomResourceDefinition":
            continue
        group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
        for version in doc["spec"]["versions"]:
            if version.get("served"):
                schema = version["schema"]["openAPIV3Schema"]["properties"].get("spec", {})
                out.append((group, kind, version["name"], schema))
    return out


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold, looking through Optional, list, dict, Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _models_in(args[0])
    if origin in (typing.Union, types.UnionType, list, dict, tuple):
        return [m for a in args for m in _models_in(a)]
    return []


def _compare(schema: dict[str, Any], model: type[BaseModel], path: str, problems: list[str]) -> None:
    props = schema.get("properties")
    if props is None:
        return
    fields = {(info.alias or name): info for name, info in model.model_fields.items()}
    for name in sorted(set(props) - set(fields)):
        problems.append(f"{path}.{name}: in the CRD, missing from {model.__name__}")
    for name in sorted(set(fields) - set(props)):
        problems.append(f"{path}.{name}: in {model.__name__}, not in the CRD")
    for name, sub in props.items():
        if name not in fields or sub.get("x-kubernetes-preserve-unknown-fields"):
            continue
        while sub.get("type") == "array" and "items" in sub:
            sub = sub["items"]
        if isinstance(sub.get("additionalProperties"), dict):
            sub = sub["additionalProperties"]
            while sub.get("type") == "array" and "items" in sub:
                sub = sub["items"]
        if "properties" not in sub:
            continue
        candidates = _models_in(fields[name].annotation)
        if not candidates:
            problems.append(f"{path}.{name}: the CRD has an object, the model a plain value")
            continue
        _compare(sub, candidates[0], f"{path}.{name}", problems)


CASES = _crd_versions()


def test_crds_present() -> None:
    corpus_path("crds", "crd-all.gen.yaml")


@pytest.mark.parametrize("group,kind,version,schema", CASES, ids=[f"{k}.{v}" for _, k, v, _ in CASES])
def test_model_matches_crd(group: str, kind: str, version: str, schema: dict[str, Any]) -> None:
    info = kinds.lookup(f"{group}/{version}", kind)
    assert info is not None, f"{group}/{version} {kind} is not registered"
    problems: list[str] = []
    _compare(schema, info.model, "spec", problems)
    assert not problems, "\n".join(problems)
