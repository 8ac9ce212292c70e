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

With ``--descriptors FILE`` it also writes, as a serialized FileDescriptorSet, the compiled
descriptors of the registry's proto files that xds-protos does not ship (the contrib
extensions, Istio's own extension types, and Envoy files newer than xds-protos), taken from the
``rawDesc`` each generated ``.pb.go`` embeds: exactly what istiod links, with no protoc run.
Run it with the project's Python, whose xds-protos decides what is missing.
"""

from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
from pathlib import Path

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


def messages(sources: list[Source], roots: list[str], texts: dict[str, str]) -> tuple[dict[str, set[str]], set[str]]:
    """Declared messages per root package, following imports inside the known repositories;
    ``texts`` gets every generated file read (by Go package and file name)."""
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
        for name, text in source.files(package).items():
            texts[f"{package}/{name}"] = text
            found.setdefault(root, set()).update(n for go_name, n in GO_TYPE.findall(text) if "." not in go_name)
            header = text.split("\n)\n", 1)[0]
            for imported in IMPORT.findall(header):
                if "/" in imported and imported not in seen:
                    queue.append((imported, root))
    return found, external


RAW_STRING = re.compile(r"_rawDesc = \"\" \+\n(.*?)\n\n", re.S)
RAW_BYTES = re.compile(r"_rawDesc = \[\]byte\{(.*?)\n\}", re.S)
GO_LITERAL = re.compile(r'"((?:[^"\\]|\\.)*)"')
GO_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, "'": 39, '"': 34}


def go_string(literal: str) -> bytes:
    """The bytes of a Go interpreted string literal's body (escapes as the Go spec defines them)."""
    out = bytearray()
    i = 0
    while i < len(literal):
        ch = literal[i]
        if ch != "\\":
            out += ch.encode()
            i += 1
            continue
        kind = literal[i + 1]
        if kind in GO_ESCAPES:
            out.append(GO_ESCAPES[kind])
            i += 2
        elif kind == "x":
            out.append(int(literal[i + 2:i + 4], 16))
            i += 4
        elif kind in "01234567":
            out.append(int(literal[i + 1:i + 4], 8))
            i += 4
        else:  # \uXXXX or \UXXXXXXXX
            width = 4 if kind == "u" else 8
            out += chr(int(literal[i + 2:i + 2 + width], 16)).encode()
            i += 2 + width
    return bytes(out)


def raw_descriptor(go_source: str) -> bytes | None:
    """The serialized FileDescriptorProto a protoc-gen-go file embeds (string or []byte form)."""
    match = RAW_STRING.search(go_source)
    if match:
        return b"".join(go_string(lit) for lit in GO_LITERAL.findall(match.group(1)))
    match = RAW_BYTES.search(go_source)
    if match:
        return bytes(int(h, 16) for h in re.findall(r"0x([0-9a-fA-F]{2})", match.group(1)))
    return None


def installed(proto_file: str) -> bool:
    """Whether xds-protos (or protobuf) ships this proto file."""
    from google.protobuf import descriptor_pool

    try:
        importlib.import_module(proto_file.removesuffix(".proto").replace("/", ".").replace("-", "_") + "_pb2")
        descriptor_pool.Default().FindFileByName(proto_file)
    except (ImportError, KeyError):
        return False
    return True


def descriptor_set(texts: dict[str, str], groups: dict[str, set[str]]) -> tuple[bytes, list[str]]:
    """The FileDescriptorSet of the registry's files xds-protos lacks, with the files of ours they
    import; checked by loading it as pilotfish will. Returns it and notes on what was left out."""
    from google.protobuf import descriptor_pb2

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from pilotfish.config.validation.envoy_filter_descriptors import build_pool

    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for text in texts.values():
        raw = raw_descriptor(text)
        if raw is not None:
            fdp = descriptor_pb2.FileDescriptorProto.FromString(raw)
            files[fdp.name] = fdp
    registry = set().union(*groups.values())
    wanted: list[str] = []
    stale = 0
    for name, fdp in sorted(files.items()):
        declared = {f"{fdp.package}.{m.name}" for m in fdp.message_type}
        if not declared & registry:
            continue
        if installed(name):
            stale += bool(declared - _installed_messages(name))
            continue
        wanted.append(name)
    chosen: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    unloadable: list[str] = []

    def closure(name: str, into: dict[str, descriptor_pb2.FileDescriptorProto]) -> bool:
        """Add ``name`` and what it imports to ``into``; False if an import is nowhere to be had."""
        if name in into or installed(name):
            return True
        if name not in files:
            return False
        into[name] = files[name]
        return all(closure(dep, into) for dep in files[name].dependency)

    for name in wanted:
        mine: dict[str, descriptor_pb2.FileDescriptorProto] = dict(chosen)
        if closure(name, mine):
            chosen = mine
        else:
            unloadable.append(name)
    out = descriptor_pb2.FileDescriptorSet(file=[chosen[n] for n in sorted(chosen)])
    build_pool(out)  # fails here, not in a user's validate, if a file does not load
    notes = [f"{len(chosen)} proto files xds-protos lacks, their descriptors read from the .pb.go files above"]
    if unloadable:
        notes.append(f"left out (imports protos neither here nor in xds-protos): {', '.join(unloadable)}")
    if stale:
        notes.append(f"{stale} Envoy files xds-protos ships in an older version (their newer messages checked by name)")
    return out.SerializeToString(deterministic=True), notes


def _installed_messages(proto_file: str) -> set[str]:
    from google.protobuf import descriptor_pool

    fd = descriptor_pool.Default().FindFileByName(proto_file)
    return {m.full_name for m in fd.message_types_by_name.values()}


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
    parser.add_argument("--descriptors", help="also write the FileDescriptorSet of what xds-protos lacks here")
    args = parser.parse_args()

    gen = git(args.istio, "show", f"{args.commit}:pkg/config/xds/filter_types.gen.go")
    go_mod = git(args.istio, "show", f"{args.commit}:go.mod")
    imports = re.search(r"import \((.*?)\n\)", gen, re.S)
    roots = [p for p in IMPORT.findall(imports.group(1) if imports else "")] + list(EXTRA_IMPORTS)
    sources = [
        Source(args.go_control_plane, pinned(go_mod, GCP + "envoy"), GCP, GCP),
        Source(args.istio_api, pinned(go_mod, "istio.io/api"), ISTIO_API, ISTIO_API),
    ]
    texts: dict[str, str] = {}
    found, external = messages(sources, roots, texts)
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
    if args.descriptors:
        data, notes = descriptor_set(texts, groups)
        Path(args.descriptors).write_bytes(data)
        header += [f"{Path(args.descriptors).name}:", *(f"    {n}." for n in notes)]
    out = [f"# {line}" if line else "#" for line in header]
    for name in ("ENVOY", "CONTRIB", "ISTIO"):
        out.append(f"[{name}]")
        out += sorted(groups[name])
    print("\n".join(out))


if __name__ == "__main__":
    main()
