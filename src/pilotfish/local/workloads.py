"""Workloads from Kubernetes YAML, as a cluster would run them: each Deployment's pod template,
its replicas, labels, service account, namespace and container ports, plus the local command
from the ``pilotfish.io/run`` annotation.

The annotation is a command line (split as a shell would, without shell features) run in the
manifest file's directory, with placeholders ``{python}`` (the interpreter running pilotfish),
``{port}`` (the app's private port for the first containerPort) and ``{port_N}`` (for
containerPort N). ``up`` and ``apply`` record the manifest's directory in the
``pilotfish.io/workdir`` annotation, since the stored copy lives elsewhere. Environment entries come from the container's ``env``: ``value``, and
``valueFrom.fieldRef`` for the pod's name, namespace, IP, service account and labels.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import shlex
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.base import Resource
from .inject import injection_wanted

RUN_ANNOTATION = "pilotfish.io/run"
WORKDIR_ANNOTATION = "pilotfish.io/workdir"  # where the run command runs: its manifest's directory
_PLACEHOLDER = re.compile(r"\{(python|port|port_\d+)\}")
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' name suffix alphabet (no vowels, no 0/1/3)


class WorkloadError(ValueError):
    """A Deployment the local mesh cannot run; the message names the file, line and field."""


@dataclass(frozen=True)
class Workload:
    """A Deployment to run locally."""

    name: str
    namespace: str
    replicas: int
    labels: Mapping[str, str]  # the pod template's
    annotations: Mapping[str, str]
    service_account: str
    container: str
    ports: tuple[int, ...]  # containerPorts, in order
    env: tuple[tuple[str, Any], ...]  # (name, value or fieldRef path)
    command: tuple[str, ...]  # the run annotation, split, placeholders not yet filled
    cwd: str
    injected: bool
    source: str  # file:line, for messages

    @property
    def template_hash(self) -> str:
        """A stable pod-template-hash-like tag for instance names."""
        digest = hashlib.sha1(repr((self.name, sorted(self.labels.items()), self.command)).encode()).digest()
        return "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:10])

    def instance_name(self) -> str:
        """``<deployment>-<template hash>-<5 random>``, as a ReplicaSet names its pods."""
        return f"{self.name}-{self.template_hash}-{''.join(secrets.choice(_ALPHABET) for _ in range(5))}"

    def argv(self, private_ports: Mapping[int, int]) -> list[str]:
        """The command with placeholders filled: ``private_ports`` maps containerPort → app port."""
        def fill(match: re.Match[str]) -> str:
            key = match.group(1)
            if key == "python":
                return sys.executable
            port = self.ports[0] if key == "port" else int(key[5:])
            return str(private_ports[port])
        return [_PLACEHOLDER.sub(fill, token) for token in self.command]

    def environment(self, pod: str, ip: str) -> dict[str, str]:
        fields = {"metadata.name": pod, "metadata.namespace": self.namespace, "status.podIP": ip,
                  "status.hostIP": ip, "spec.serviceAccountName": self.service_account,
                  "spec.nodeName": "local"}
        out = {}
        for name, value in self.env:
            if isinstance(value, dict):  # a fieldRef
                path = str(value.get("fieldPath", ""))
                label = re.fullmatch(r"metadata\.labels\['(.+)'\]", path)
                out[name] = self.labels.get(label.group(1), "") if label else fields.get(path, "")
            else:
                out[name] = str(value)
        return out


def stamp_workdir(data: Any, file: str) -> None:
    """Record ``file``'s directory on a Deployment document that has a run annotation and no
    workdir yet (stdin: the current directory)."""
    if not isinstance(data, dict) or data.get("kind") != "Deployment":
        return
    template = (data.get("spec") or {}).get("template") or {}
    annotations = (template.get("metadata") or {}).get("annotations")
    if not isinstance(annotations, dict) or RUN_ANNOTATION not in annotations or WORKDIR_ANNOTATION in annotations:
        return
    annotations[WORKDIR_ANNOTATION] = str(Path(file).resolve().parent) if file and file != "-" else str(Path.cwd())


def _pod_template(resource: Resource) -> dict[str, Any]:
    return ((resource.raw.get("spec") or {}).get("template") or {})


def workload_from(resource: Resource, namespace_labels: Mapping[str, str]) -> Workload:
    """The Deployment's workload; WorkloadError when it cannot run locally."""
    template = _pod_template(resource)
    meta = template.get("metadata") or {}
    pod_spec = template.get("spec") or {}
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    annotations = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
    where = str(resource.position)
    containers = pod_spec.get("containers") or []
    if not containers:
        raise WorkloadError(f"{where}: Deployment {resource.namespace}/{resource.name}: "
                            "spec.template.spec.containers: no container to run")
    container = containers[0]
    run = annotations.get(RUN_ANNOTATION)
    if run is None:
        raise WorkloadError(f"{where}: Deployment {resource.namespace}/{resource.name}: "
                            f"spec.template.metadata.annotations: no {RUN_ANNOTATION!r} annotation says how to "
                            "run it locally")
    try:
        command = tuple(shlex.split(run))
    except ValueError as exc:
        raise WorkloadError(f"{where}: Deployment {resource.namespace}/{resource.name}: "
                            f"spec.template.metadata.annotations[{RUN_ANNOTATION}]: {exc}") from None
    ports = tuple(int(p["containerPort"]) for p in container.get("ports") or () if p.get("containerPort"))
    for token in command:
        for key in _PLACEHOLDER.findall(token):
            if key == "port" and not ports or key.startswith("port_") and int(key[5:]) not in ports:
                raise WorkloadError(f"{where}: Deployment {resource.namespace}/{resource.name}: "
                                    f"spec.template.metadata.annotations[{RUN_ANNOTATION}]: {{{key}}} names no "
                                    "containerPort of the first container")
    env = []
    for item in container.get("env") or ():
        if "value" in item:
            env.append((str(item["name"]), item["value"]))
        elif isinstance(item.get("valueFrom"), dict) and isinstance(item["valueFrom"].get("fieldRef"), dict):
            env.append((str(item["name"]), item["valueFrom"]["fieldRef"]))
    replicas = (resource.raw.get("spec") or {}).get("replicas")
    file = resource.position.file
    return Workload(
        name=resource.name, namespace=resource.namespace or "default",
        replicas=1 if replicas is None else int(replicas), labels=labels, annotations=annotations,
        service_account=str(pod_spec.get("serviceAccountName") or pod_spec.get("serviceAccount") or "default"),
        container=str(container.get("name") or resource.name), ports=ports, env=tuple(env), command=command,
        cwd=annotations.get(WORKDIR_ANNOTATION) or (str(Path(file).resolve().parent) if file and file != "-"
                                                   else str(Path.cwd())),
        injected=injection_wanted(namespace_labels, labels, annotations, bool(pod_spec.get("hostNetwork")),
                                  resource.namespace or "default"),
        source=where)


def workloads(resources: Iterable[Resource], namespace_labels: Mapping[str, Mapping[str, str]],
              errors: list[str] | None = None) -> list[Workload]:
    """Every Deployment's workload, in input order; namespace_labels by namespace name. With an
    ``errors`` list, a Deployment that cannot run is reported there and skipped; without, it raises."""
    out = []
    for r in resources:
        if r.kind == "Deployment":
            try:
                w = workload_from(r, namespace_labels.get(r.namespace or "default", {}))
            except WorkloadError as exc:
                if errors is None:
                    raise
                errors.append(str(exc))
                continue
            out.append(w)
    return out
