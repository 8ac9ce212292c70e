"""Workloads from Kubernetes YAML: the run annotation's placeholders, environment, replicas,
names like a ReplicaSet's pods, and errors that name the file, line and field."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pilotfish.config.loader import documents_from_text, to_resource
from pilotfish.local.plan import namespace_labels, wanted_workloads
from pilotfish.local.up import UpError, load_config
from pilotfish.local.workloads import Workload


def deployment(run: str = "{python} app.py --port {port} --admin {port_9901}", extra: str = "") -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: reviews-v2, namespace: shop}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: reviews}}}}
  template:
    metadata:
      labels: {{app: reviews, version: v2, topology.kubernetes.io/region: eu}}
      annotations: {{pilotfish.io/run: "{run}"}}
    spec:
      serviceAccountName: bookinfo-reviews
      containers:
      - name: reviews
        image: example/reviews
        ports: [{{containerPort: 9080}}, {{containerPort: 9901}}]
        env:
        - {{name: STAR_COLOR, value: black}}
        - name: MY_POD
          valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
        - name: MY_VERSION
          valueFrom: {{fieldRef: {{fieldPath: "metadata.labels['version']"}}}}
        - name: MY_IP
          valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}
{extra}"""


def the_workload(text: str) -> Workload:
    resources = [to_resource(d) for d in documents_from_text(text, "/srv/app/deploy.yaml")]
    (w,) = wanted_workloads(resources)
    return w


def test_run_annotation_placeholders_environment_and_labels() -> None:
    w = the_workload(deployment())
    assert (w.name, w.namespace, w.replicas, w.service_account) == ("reviews-v2", "shop", 3, "bookinfo-reviews")
    assert w.argv({9080: 41000, 9901: 41001}) == [sys.executable, "app.py", "--port", "41000", "--admin", "41001"]
    assert w.cwd == "/srv/app"  # commands run beside their manifest
    assert w.environment("reviews-v2-abc-x", "127.9.9.9") == {
        "STAR_COLOR": "black", "MY_POD": "reviews-v2-abc-x", "MY_VERSION": "v2", "MY_IP": "127.9.9.9"}
    assert w.labels["topology.kubernetes.io/region"] == "eu"
    assert w.injected  # the mesh labels the namespaces it makes for injection


def test_instances_are_named_like_a_replicasets_pods() -> None:
    w = the_workload(deployment())
    a, b = w.instance_name(), w.instance_name()
    assert a != b and a.startswith("reviews-v2-") and b.startswith("reviews-v2-")
    assert a.rsplit("-", 1)[0] == b.rsplit("-", 1)[0]  # the same template hash
    assert len(a.rsplit("-", 2)[1]) == 10 and len(a.rsplit("-", 1)[1]) == 5


def test_a_namespace_in_the_config_decides_injection() -> None:
    text = deployment() + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"
    resources = [to_resource(d) for d in documents_from_text(text, "x.yaml")]
    assert namespace_labels(resources)["shop"] == {}
    assert not wanted_workloads(resources)[0].injected


@pytest.mark.parametrize(("run", "message"), [
    (None, "deploy.yaml:1: Deployment shop/reviews-v2: spec.template.metadata.annotations: no 'pilotfish.io/run'"),
    ("app --port {port_1234}", "annotations[pilotfish.io/run]: {port_1234} names no containerPort"),
    ("app 'unclosed", "annotations[pilotfish.io/run]: No closing quotation"),
])
def test_a_deployment_that_cannot_run_is_refused_naming_file_line_and_field(tmp_path: Path, run, message) -> None:
    text = deployment(run or "x")
    if run is None:
        text = text.replace('      annotations: {pilotfish.io/run: "x"}\n', "")
    (tmp_path / "deploy.yaml").write_text(text)
    with pytest.raises(UpError) as info:
        load_config([str(tmp_path / "deploy.yaml")])
    assert message in info.value.lines[0]


def test_invalid_istio_config_is_refused_with_istios_error(tmp_path: Path) -> None:
    (tmp_path / "vs.yaml").write_text("""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bad}
spec:
  hosts: [web]
  http: [{route: [{destination: {host: web}}], timeout: -1s}]
""")
    with pytest.raises(UpError) as info:
        load_config([str(tmp_path / "vs.yaml")])
    assert "vs.yaml:" in info.value.lines[0] and "VirtualService default/bad" in info.value.lines[0]
    assert "duration must be greater than 1ms" in info.value.lines[0]
