"""Sidecar injection as Istio decides it, and kube-inject's rewrite of a manifest."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from pilotfish.local.inject import injection_wanted, kube_inject

from ..istiod.mesh import PILOTFISH

ENABLED = {"istio-injection": "enabled"}


@pytest.mark.parametrize(("ns", "labels", "annotations", "wanted"), [
    (ENABLED, {}, {}, True),  # the namespace is meshed
    (ENABLED, {"sidecar.istio.io/inject": "false"}, {}, False),  # the pod opts out (object selector)
    (ENABLED, {}, {"sidecar.istio.io/inject": "false"}, False),  # the legacy annotation opts out
    (ENABLED, {}, {"sidecar.istio.io/inject": "yes"}, True),
    ({}, {"sidecar.istio.io/inject": "true"}, {}, True),  # a pod opts in where the namespace says nothing
    ({}, {}, {"sidecar.istio.io/inject": "true"}, False),  # the annotation alone does not call the webhook
    ({}, {}, {}, False),
    ({"istio-injection": "disabled"}, {"sidecar.istio.io/inject": "true"}, {}, False),
    ({"istio.io/rev": "default"}, {}, {}, True),
    ({"istio.io/rev": "canary"}, {}, {}, False),  # another revision's injector
])
def test_injection_follows_istio_selectors_then_the_pod_opt_out(ns, labels, annotations, wanted) -> None:
    assert injection_wanted(ns, labels, annotations) is wanted


def test_host_network_pods_and_system_namespaces_are_never_injected() -> None:
    assert not injection_wanted(ENABLED, {}, {}, host_network=True)
    assert not injection_wanted(ENABLED, {}, {}, namespace="kube-system")


DEPLOYMENT = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web-v1}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web, version: v1}}
    spec:
      containers: [{name: web, image: nginx, ports: [{containerPort: 80}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: opted-out}
spec:
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x, sidecar.istio.io/inject: "false"}}
    spec:
      containers: [{name: x, image: nginx}]
"""


def test_kube_inject_prints_the_manifest_with_the_sidecar(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text(DEPLOYMENT)
    out = subprocess.run([*PILOTFISH, "kube-inject", "-f", str(tmp_path / "d.yaml")], capture_output=True,
                         text=True, check=True).stdout
    service, web, opted_out = yaml.safe_load_all(out)
    assert service == yaml.safe_load(DEPLOYMENT.split("---")[0])  # not a workload: unchanged
    pod = web["spec"]["template"]
    assert [c["name"] for c in pod["spec"]["containers"]] == ["web", "istio-proxy"]
    assert pod["metadata"]["labels"]["security.istio.io/tlsMode"] == "istio"
    assert pod["metadata"]["labels"]["service.istio.io/canonical-revision"] == "v1"
    annotations = pod["metadata"]["annotations"]
    assert annotations["kubectl.kubernetes.io/default-container"] == "web"
    assert annotations["prometheus.io/port"] == "15020"
    assert '"containers":["istio-proxy"]' in annotations["sidecar.istio.io/status"]
    assert [c["name"] for c in opted_out["spec"]["template"]["spec"]["containers"]] == ["x"]
    # Injecting twice changes nothing more.
    assert kube_inject(web, "1") == web
