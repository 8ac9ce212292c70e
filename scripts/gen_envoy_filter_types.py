#!/usr/bin/env python3
"""Generate ``pilotfish/config/validation/envoy_filter_types.txt`` from Istio's type registry.

Istio resolves an EnvoyFilter ``typed_config`` ``@type`` against Go's global protobuf registry,
which holds every message of the Go packages istiod links. The list that matters is Istio's
``pkg/config/xds/filter_types.gen.go`` (blank imports of every go-control-plane v3 package, the
contrib packages and Istio's own ``istio.io/api/envoy/config/filter/...`` packages), plus the
packages those import and the few Istio extension packages istiod imports elsewhere.

This script reads those Go sources from git checkouts (nothing is copied into the project but
the message names) and writes the sorted message names per origin:

    scripts/gen_envoy_filter_types.py --istio ISTIO_GIT --commit 86c9f01f... \\
        --go-control-plane GCP_GIT --istio-api API_GIT > src/.../envoy_filter_types.txt

The go-control-plane and istio/api commits are read from Istio's go.mod (pseudo-version
suffixes); if a checkout lacks that commit its newest commit is used and the header says so.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

GCP = "github.com/envoyproxy/go-control-plane/"
ISTIO_API = "istio.io/api/"
# Istio extension packages istiod imports outside filter_types.gen.go (so they are registered):
# pilot/pkg/networking/core/... imports istio.io/api/envoy/extensions/stats (stats.PluginConfig).
EXTRA_IMPORTS = ("istio.io/api/envoy/extensions/stats",)

IMPORT = re.compile(r'^\s*_?\s*(?:\w+\s+)?"([^"]+)"', re.M)
GO_TYPE = re.compile(r"^\s*\(\*(\w+)\)\(nil\),\s*//\s*\d+:\s*(\S+)\s*$", re.M)


def git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", repo, *args], check=True, capture_output=True, text=True).stdout


def has_commit(repo: str, commit: str) -> bool:
    probe = ["git", "--git-dir", repo, "cat-file", "-e", f"{commit}^{{commit}}"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def pinned(go_mod: str, module: str) -> str:
    """The commit in a pseudo-version (v1.2.3-0.2026...-abcdef123456) of a go.mod requirement."""
    match = re.search(rf"^\s*{re.escape(module)}\s+(\S+)", go_mod, re.M)
    if not match:
        sys.exit(f"{module} not in go.mod")
    return match.group(1).rsplit("-", 1)[-1]


class Source:
    """One git checkout at one commit, serving Go package directories."""

    def __init__(self, repo: str, commit: str, prefix: str, strip: str) -> None:
        self.repo, self.prefix, self.strip = repo, prefix, strip
        self.note = ""
        if not has_commit(repo, commit):
            head = git(repo, "rev-parse", "HEAD").strip()
            self.note = f"(pinned {commit} not in checkout; used {head})"
            commit = head
        self.commit = commit

    def files(self, go_package: str) -> dict[str, str]:
        folder = go_package.removeprefix(self.strip)
        names = git(self.repo, "ls-tree", "--name-only", f"{self.commit}:{folder}").split()
        wanted = [n for n in names if n.endswith(".pb.go") and not n.endswith(("_vtproto.pb.go", ".pb.validate.go"))]
        return {n: git(self.repo, "show", f"{self.commit}:{folder}/{n}") for n in wanted}


def messages(sources: list[Source], roots: list[str]) -> tuple[dict[str, set[str]], set[str]]:
    """Declared messages per root package, following imports inside the known repositories."""
    found: dict[str, set[str]] = {}
    external: set[str] = set()
    seen: set[str] = set()
    queue = [(r, r) for r in roots]
    while queue:
        package, root = queue.pop()
        if package in seen:
            continue
        seen.add(package)
        source = next((s for s in sources if package.startswith(s.prefix)), None)
        if source is None:
            external.add(package)
            continue
        for text in source.files(package).values():
            found.setdefault(root, set()).update(n for go_name, n in GO_TYPE.findall(text) if "." not in go_name)
            header = text.split("\n)\n", 1)[0]
            for imported in IMPORT.findall(header):
                if "/" in imported and imported not in seen:
                    queue.append((imported, root))
    return found, external


def origin(go_package: str) -> str:
    if go_package.startswith(GCP + "contrib/"):
        return "CONTRIB"
    if go_package.startswith(GCP):
        return "ENVOY"
    return "ISTIO"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--istio", required=True, help="istio/istio git directory")
    parser.add_argument("--commit", required=True, help="istio/istio commit")
    parser.add_argument("--go-control-plane", required=True, help="envoyproxy/go-control-plane git directory")
    parser.add_argument("--istio-api", required=True, help="istio/api git directory")
    args = parser.parse_args()

    gen = git(args.istio, "show", f"{args.commit}:pkg/config/xds/filter_types.gen.go")
    go_mod = git(args.istio, "show", f"{args.commit}:go.mod")
    imports = re.search(r"import \((.*?)\n\)", gen, re.S)
    roots = [p for p in IMPORT.findall(imports.group(1) if imports else "")] + list(EXTRA_IMPORTS)
    sources = [
        Source(args.go_control_plane, pinned(go_mod, GCP + "envoy"), GCP, GCP),
        Source(args.istio_api, pinned(go_mod, "istio.io/api"), ISTIO_API, ISTIO_API),
    ]
    found, external = messages(sources, roots)
    groups: dict[str, set[str]] = {"ENVOY": set(), "CONTRIB": set(), "ISTIO": set()}
    for root, names in found.items():
        groups[origin(root)] |= names
    # A name reached from several roots belongs to the first origin that declares it.
    groups["CONTRIB"] -= groups["ENVOY"]
    groups["ISTIO"] -= groups["ENVOY"] | groups["CONTRIB"]

    header = [
        "Istio's EnvoyFilter type registry: the protobuf messages istiod can resolve in a",
        "typed_config ``@type``. Generated by scripts/gen_envoy_filter_types.py; do not edit.",
        "",
        f"istio/istio {args.commit} pkg/config/xds/filter_types.gen.go ({len(roots)} Go packages",
        f"with {', '.join(EXTRA_IMPORTS)}) and the packages they import;",
        f"go-control-plane {sources[0].commit} {sources[0].note}".rstrip() + ";",
        f"istio/api {sources[1].commit} {sources[1].note}".rstrip() + ".",
        "Imports outside those repositories (resolved through xds-protos and protobuf):",
    ]
    header += [f"    {p}" for p in sorted(external)]
    out = [f"# {line}" if line else "#" for line in header]
    for name in ("ENVOY", "CONTRIB", "ISTIO"):
        out.append(f"[{name}]")
        out += sorted(groups[name])
    print("\n".join(out))


if __name__ == "__main__":
    main()
