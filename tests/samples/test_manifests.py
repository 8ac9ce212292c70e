"""The samples' manifests: Istio's Services, ServiceAccounts and Deployments, pilotfish's images,
and a pilotfish.io/run annotation on every Deployment that names a script next to a Dockerfile."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.corpus import corpus_path
from tests.samples.harness import RUN_ANNOTATION, SAMPLES, manifest_docs

MANIFESTS = ["bookinfo/platform/kube/bookinfo.yaml", "httpbin/httpbin.yaml", "sleep/sleep.yaml",
             "curl/curl.yaml", "helloworld/helloworld.yaml"]
CLIENT_IMAGE = "docker.io/curlimages/curl:8.16.0"  # sleep and curl keep Istio's: users run curl in them
PLACEHOLDER = re.compile(r"\{(python|port|port_\d+)\}")


def deployments(relpath: str) -> list[dict[str, Any]]:
    return [d for d in manifest_docs(relpath) if d["kind"] == "Deployment"]


def run_argv(deployment: dict[str, Any]) -> list[str]:
    return shlex.split(deployment["spec"]["template"]["metadata"]["annotations"][RUN_ANNOTATION])


@pytest.mark.parametrize("relpath", MANIFESTS)
def test_every_deployment_runs_a_script_of_the_samples_with_known_placeholders(relpath: str) -> None:
    for deployment in deployments(relpath):
        argv = run_argv(deployment)
        assert argv[0] in ("{python}", "node"), argv
        leftovers = [PLACEHOLDER.sub("", arg) for arg in argv]
        assert not any("{" in arg or "}" in arg for arg in leftovers), argv
        script = (SAMPLES / relpath).parent / argv[1]
        assert script.is_file(), script
        assert SAMPLES in script.resolve().parents
        ports = [p["containerPort"] for p in deployment["spec"]["template"]["spec"]["containers"][0].get("ports", [])]
        assert ("{port}" in argv) == bool(ports), argv


@pytest.mark.parametrize("relpath", MANIFESTS)
def test_images_are_pilotfishs_builds_of_the_scripts_the_annotation_runs(relpath: str) -> None:
    for deployment in deployments(relpath):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        image = container["image"]
        if image == CLIENT_IMAGE:
            continue
        assert re.fullmatch(r"docker\.io/pilotfish/examples-[a-z0-9-]+:[\w.-]+", image), image
        script = (SAMPLES / relpath).parent / run_argv(deployment)[1]
        dockerfile = (script.parent / "Dockerfile").read_text()
        assert f"COPY {script.name}" in dockerfile or f" {script.name} " in dockerfile
        cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))  # type: ignore[union-attr]
        assert cmd[-3:] == [script.name, str(container["ports"][0]["containerPort"]), "0.0.0.0"], cmd


def test_reviews_versions_are_chosen_as_istios_build_args_choose_them() -> None:
    env = {}
    for d in deployments("bookinfo/platform/kube/bookinfo.yaml"):
        if d["metadata"]["labels"]["app"] == "reviews":
            container = d["spec"]["template"]["spec"]["containers"][0]
            env[d["metadata"]["name"]] = {e["name"]: e["value"] for e in container.get("env", [])}
    assert env["reviews-v1"].get("ENABLE_RATINGS", "false") == "false"
    assert (env["reviews-v2"]["ENABLE_RATINGS"], env["reviews-v2"].get("STAR_COLOR", "black")) == ("true", "black")
    assert (env["reviews-v3"]["ENABLE_RATINGS"], env["reviews-v3"]["STAR_COLOR"]) == ("true", "red")
    dockerfile = (SAMPLES / "bookinfo/src/reviews/Dockerfile").read_text()
    for arg, var in (("enable_ratings", "ENABLE_RATINGS"), ("star_color", "STAR_COLOR")):
        assert f"ARG {arg}" in dockerfile and f"ENV {var}=${{{arg}" in dockerfile


def _shape(doc: dict[str, Any]) -> dict[str, Any]:
    """What must match Istio's: kinds, names, labels, ports, selectors, accounts, container names."""
    shape: dict[str, Any] = {"kind": doc["kind"], "name": doc["metadata"]["name"],
                             "labels": doc["metadata"].get("labels")}
    if doc["kind"] == "Service":
        shape["spec"] = doc["spec"]
    elif doc["kind"] == "Deployment":
        pod = doc["spec"]["template"]
        shape.update(selector=doc["spec"]["selector"], pod_labels=pod["metadata"]["labels"],
                     account=pod["spec"].get("serviceAccountName"),
                     containers=[(c["name"], c.get("ports"), c.get("command")) for c in pod["spec"]["containers"]],
                     image=Path(pod["spec"]["containers"][0]["image"].rsplit(":", 1)[0]).name)
    return shape


@pytest.mark.parametrize("relpath", MANIFESTS)
def test_services_accounts_and_deployments_are_istios(relpath: str) -> None:
    istio = corpus_path("bookinfo", "samples", relpath)
    with open(istio) as f:
        theirs = [_shape(d) for d in yaml.safe_load_all(f) if d]
    ours = [_shape(d) for d in manifest_docs(relpath)]
    if relpath == "httpbin/httpbin.yaml":  # Istio runs go-httpbin; ours is examples-httpbin
        theirs = [{**s, "image": "examples-httpbin"} if s["kind"] == "Deployment" else s for s in theirs]
    assert ours == theirs


def test_pilotfish_validates_the_samples() -> None:
    proc = subprocess.run([sys.executable, "-c", "import sys; from pilotfish.cli.main import main; sys.exit(main())",
                           "validate", "-f", str(SAMPLES)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " 0 invalid" in proc.stdout
