"""Loading: multi-document YAML/JSON, lists, directories, stdin, and hostile input."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pilotfish.config.errors import ConfigError, LoadError
from pilotfish.config.loader import (
    Document,
    SourceError,
    documents_from_text,
    load_documents,
    load_resources,
    to_resource,
)

VS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: bookinfo
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
"""


def _one(text: str, file: str = "f.yaml") -> Document:
    docs = list(documents_from_text(text, file))
    assert len(docs) == 1
    assert isinstance(docs[0], Document), docs[0]
    return docs[0]


def test_multi_document_yaml_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(VS + "---\n" + VS.replace("reviews\n  namespace", "ratings\n  namespace"))
    resources, errors = load_resources([str(path)])
    assert not errors
    assert [r.name for r in resources] == ["reviews", "ratings"]
    assert [r.position.line for r in resources] == [1, 15]
    assert resources[0].spec.hosts == ["reviews"]


def test_json_and_kind_list_and_directories(tmp_path: Path) -> None:
    import yaml

    obj = yaml.safe_load(VS)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "vs.json").write_text(json.dumps(obj))
    (tmp_path / "list.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [obj, obj]}))
    (tmp_path / "notes.txt").write_text("not config")
    resources, errors = load_resources([str(tmp_path)])
    assert not errors
    assert len(resources) == 3


def test_unknown_field_names_file_line_resource_and_path() -> None:
    doc = _one(VS.replace("        subset: v1", "        subset: v1\n        weight: 5"))
    with pytest.raises(ConfigError) as err:
        to_resource(doc)
    text = str(err.value)
    assert "f.yaml:14" in text
    assert "VirtualService bookinfo/reviews" in text
    assert "spec.http[0].route[0].destination.weight" in text
    assert 'unknown field "weight"' in text


def test_wrong_type_names_the_field() -> None:
    doc = _one(VS.replace("  hosts:\n  - reviews", "  hosts: 7"))
    with pytest.raises(ConfigError) as err:
        to_resource(doc)
    assert err.value.field_path == "spec.hosts"
    assert err.value.position.line == 7


def test_unserved_api_version_is_an_error() -> None:
    with pytest.raises(ConfigError, match="not served"):
        to_resource(_one(VS.replace("networking.istio.io/v1", "networking.istio.io/v9")))


def test_missing_path_is_a_source_error() -> None:
    with pytest.raises(SourceError):
        list(load_documents(["/definitely/not/here.yaml"]))


@pytest.mark.parametrize(
    "payload,needle",
    [
        (b"\x00\x01\x02binary\xff" * 100, "binary"),
        (b"\xff\xfe\xfa not utf8", "UTF-8"),
        (b"a: [1, 2\nb: }", "invalid YAML"),
        (b"a: 1\na: 2\n", "duplicate key"),
        (("a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join(["*" + chr(97 + i)] * 9) + "]\n" for i in range(9)
        )).encode(), "alias"),
        (("x: " + "[" * 100 + "]" * 100).encode(), "nest"),
        (("x: " + "{a: " * 100 + "1" + "}" * 100).encode(), "nest"),
    ],
)
def test_hostile_input_ends_in_a_clear_error(tmp_path: Path, payload: bytes, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(payload)
    start = time.monotonic()
    out = list(load_documents([str(path)]))
    assert time.monotonic() - start < 5
    errors = [d for d in out if isinstance(d, LoadError)]
    assert errors, out
    assert needle.lower() in str(errors[0]).lower()
    assert str(path) in str(errors[0])


def test_huge_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with open(path, "wb") as fh:
        fh.write(b"a: " + b"x" * (50 * 1024 * 1024) + b"\n")
    out = list(load_documents([str(path)]))
    assert isinstance(out[0], LoadError)
    assert "larger than" in str(out[0])


def test_not_an_object() -> None:
    with pytest.raises(ConfigError, match="mapping"):
        to_resource(_one("- 1\n- 2\n"))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=2000), st.text(max_size=2000).map(str.encode)))
def test_random_input_never_escapes_as_a_traceback(tmp_path_factory: pytest.TempPathFactory, payload: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "in.yaml"
    path.write_bytes(payload)
    for doc in load_documents([str(path)]):
        if isinstance(doc, Document):
            try:
                to_resource(doc)
            except ConfigError:
                pass


@settings(max_examples=200, deadline=None)
@given(st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)),
    max_leaves=30,
))
def test_random_specs_are_accepted_or_refused_with_a_config_error(spec: object) -> None:
    for kind, api in (("VirtualService", "networking.istio.io/v1"), ("AuthorizationPolicy", "security.istio.io/v1"),
                      ("Service", "v1"), ("Sidecar", "networking.istio.io/v1beta1")):
        doc = Document({"apiVersion": api, "kind": kind, "metadata": {"name": "x"}, "spec": spec}, "f.yaml", 1)
        try:
            resource = to_resource(doc)
        except ConfigError:
            continue
        from pilotfish.config.validation import validate

        validate(resource)


# ---------------------------------------------------------------- edges kubectl and istioctl handle


def test_any_kind_list_is_expanded_as_kubectl_does() -> None:
    text = """apiVersion: networking.istio.io/v1
kind: VirtualServiceList
items:
- apiVersion: networking.istio.io/v1
  kind: VirtualService
  metadata: {name: a}
  spec: {hosts: [a]}
- apiVersion: networking.istio.io/v1
  kind: VirtualService
  metadata: {name: b}
  spec: {hosts: [b]}
"""
    docs = list(documents_from_text(text, "list.yaml"))
    assert [(d.data["metadata"]["name"], d.line) for d in docs] == [("a", 4), ("b", 8)]
    assert [to_resource(d).name for d in docs] == ["a", "b"]
    # A kind that merely ends in "List" but has no items is an object like any other.
    (doc,) = documents_from_text("apiVersion: v1\nkind: PodList\nmetadata: {name: x}\n", "x.yaml")
    assert doc.data["kind"] == "PodList"


def test_yaml_merge_keys_merge_as_go_yaml_does() -> None:
    text = """defaults: &defaults
  timeout: 1s
  retries: 2
other: &other
  retries: 9
  weight: 3
one:
  <<: *defaults
  retries: 5
many:
  <<: [*other, *defaults]
literal:
  "<<": kept
"""
    (doc,) = documents_from_text(text, "m.yaml")
    assert doc.data["one"] == {"timeout": "1s", "retries": 5}  # its own key wins
    assert doc.data["many"] == {"retries": 9, "weight": 3, "timeout": "1s"}  # the first listed wins
    assert doc.data["literal"] == {"<<": "kept"}  # a quoted "<<" is a plain key
    assert doc.lines[("one", "timeout")] == 8  # a merged key is placed at the merge


def test_a_merge_of_something_else_than_a_mapping_names_its_line() -> None:
    (err,) = documents_from_text("a: 1\nb:\n  <<: [1, 2]\n", "m.yaml")
    assert isinstance(err, LoadError) and err.position.line == 3 and "merge" in err.message


def test_errors_name_the_line_in_their_position_not_their_message() -> None:
    (err,) = documents_from_text("a: [1, 2\nb: }", "bad.yaml")
    assert isinstance(err, LoadError)
    assert str(err).startswith("bad.yaml:2: invalid YAML: ") and "line" not in err.message
    (dup,) = documents_from_text("a: 1\nb: 2\na: 3\n", "dup.yaml")
    assert str(dup) == "dup.yaml:3: duplicate key 'a'"


def test_a_non_utf8_byte_is_reported_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"apiVersion: v1\nkind: Service\nmetadata: {name: caf\xe9}\n")
    (err,) = load_documents([str(path)])
    assert isinstance(err, LoadError)
    assert err.position.line == 3 and "0xe9" in err.message and "column 21" in err.message


def test_standard_input_given_twice_is_refused() -> None:
    with pytest.raises(SourceError, match="more than once"):
        list(load_documents(["-", "-"]))


def test_an_object_knows_its_fields_lines_yet_compares_by_content() -> None:
    text = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - route:\n    - destination: {host: r}\n"
    first, again = (to_resource(doc) for doc in [*documents_from_text(text, "vs.yaml"), *documents_from_text(text, "vs.yaml")])
    assert first == again  # a config directory re-read unchanged is not a change
    assert first.position.of(("spec", "http", 0, "route", 0, "destination", "host")).line == 8
    assert first.position.of(("spec", "http", 3)).line == 6  # the deepest part that exists
