"""Istio's EnvoyFilter type registry (generated data) and the script that generates it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool

from pilotfish.config.analysis.testing import load_yaml
from pilotfish.config.errors import with_field
from pilotfish.config.validation import envoy_filter_descriptors, envoy_filter_types, validate
from pilotfish.config.validation.envoy_filter_types import CONTRIB_TYPES, ENVOY_TYPES, ISTIO_TYPES
from pilotfish.config.validation.envoyfilter import checked_structurally, registry_descriptor, resolves

SCRIPT = Path(__file__).parents[2] / "scripts" / "gen_envoy_filter_types.py"


def test_registry_is_istios_at_the_corpus_commit() -> None:
    assert "86c9f01fd735fb01d8192f5bcaf0d424afb7f14c" in (envoy_filter_types.__doc__ or "")
    assert "istio.envoy.config.filter.network.tcp_cluster_rewrite.v2alpha1.TcpClusterRewrite" in ISTIO_TYPES
    assert "istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig" in ISTIO_TYPES
    assert "stats.PluginConfig" in ISTIO_TYPES
    assert "envoy.extensions.filters.network.mysql_proxy.v3.MySQLProxy" in CONTRIB_TYPES
    assert "envoy.tcp.metadataexchange.config.MetadataExchange" in CONTRIB_TYPES
    assert "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz" in ENVOY_TYPES
    assert not any(".v2." in name or ".v2alpha." in name for name in ENVOY_TYPES | CONTRIB_TYPES)


def test_resolution_and_structural_checking() -> None:
    assert resolves("type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua")
    assert checked_structurally("type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua")
    assert resolves("type.googleapis.com/stats.PluginConfig")
    assert checked_structurally("type.googleapis.com/stats.PluginConfig")  # its descriptor is compiled in
    # Packages istiod links through go-control-plane's imports resolve through xds-protos/protobuf.
    assert resolves("type.googleapis.com/udpa.type.v1.TypedStruct")
    assert resolves("type.googleapis.com/xds.type.v3.TypedStruct")
    assert resolves("type.googleapis.com/google.protobuf.StringValue")
    assert not resolves("type.googleapis.com/envoy.config.filter.network.ext_authz.v2.ExtAuthz")
    assert not resolves("type.googleapis.com/no.such.Type")


def _git_repo(root: Path, files: dict[str, str]) -> str:
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    env = ["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(root), *env, "commit", "-q", "-m", "x"], check=True)
    return str(root / ".git")


def _pb_go(*go_types: str) -> str:
    lines = "\n".join(f"\t{t}" for t in go_types)
    return f'package x\n\nimport (\n\tv3 "github.com/envoyproxy/go-control-plane/envoy/b/v3"\n)\n\nvar goTypes = []any{{\n{lines}\n}}\n'


def test_generator_reads_istios_list(tmp_path: Path) -> None:
    gen = 'package xds\n\nimport (\n\t_ "github.com/envoyproxy/go-control-plane/envoy/a/v3"\n\t_ "istio.io/api/envoy/config/filter/x/v2alpha1"\n)\n'
    go_mod = "require (\n\tgithub.com/envoyproxy/go-control-plane/envoy v1.0.0-0.2026-aaaaaaaaaaaa\n\tistio.io/api v1.0.0-0.2026-bbbbbbbbbbbb\n)\n"
    istio = _git_repo(tmp_path / "istio", {"pkg/config/xds/filter_types.gen.go": gen, "go.mod": go_mod})
    commit = subprocess.run(["git", "--git-dir", istio, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    gcp = _git_repo(
        tmp_path / "gcp",
        {
            "envoy/a/v3/a.pb.go": _pb_go("(A_Mode)(0), // 0: envoy.a.v3.A.Mode", "(*A)(nil), // 1: envoy.a.v3.A", "(*v3.B)(nil), // 2: envoy.b.v3.B"),
            "envoy/a/v3/a.pb.validate.go": _pb_go("(*Z)(nil), // 0: envoy.a.v3.Z"),
            "envoy/b/v3/b.pb.go": "package b\n\nvar goTypes = []any{\n\t(*B)(nil), // 0: envoy.b.v3.B\n\tnil, // 1: envoy.b.v3.B.MapEntry\n}\n",
        },
    )
    api = _git_repo(
        tmp_path / "api",
        {
            "envoy/config/filter/x/v2alpha1/c.pb.go": "package c\n\nvar goTypes = []any{\n\t(*C)(nil), // 0: istio.x.v2alpha1.C\n}\n",
            "envoy/extensions/stats/config.pb.go": "package s\n\nvar goTypes = []any{\n\t(*PluginConfig)(nil), // 0: stats.PluginConfig\n}\n",
        },
    )
    args = [sys.executable, str(SCRIPT), "--istio", istio, "--commit", commit, "--go-control-plane", gcp, "--istio-api", api]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    _, groups = envoy_filter_types.parse(out)
    assert groups["ENVOY"] == frozenset({"envoy.a.v3.A", "envoy.b.v3.B"})
    assert groups["CONTRIB"] == frozenset()
    assert groups["ISTIO"] == frozenset({"istio.x.v2alpha1.C", "stats.PluginConfig"})
    assert "pinned aaaaaaaaaaaa not in checkout" in out


def test_istio_types_are_checked_with_istios_descriptors_whatever_else_is_imported() -> None:
    # The proxy registers a stats.PluginConfig of its own in the default pool; validation reads
    # Istio's, compiled in, which has fields the proxy's lacks.
    import pilotfish.proxy.compile.istio_config  # noqa: F401

    descriptor = registry_descriptor("stats.PluginConfig")
    assert descriptor is not None and descriptor.file.name == "envoy/extensions/stats/config.proto"
    assert descriptor.file.pool is not descriptor_pool.Default()


def test_every_contrib_and_istio_type_has_a_descriptor() -> None:
    missing = sorted(n for n in CONTRIB_TYPES | ISTIO_TYPES if envoy_filter_descriptors.find(n) is None)
    assert missing == []
    # Envoy types xds-protos lacks whole files of are compiled in too (newer extensions).
    assert sum(1 for n in ENVOY_TYPES if registry_descriptor(n) is None) < 50


def _load_script() -> Any:
    spec = importlib.util.spec_from_file_location("gen_envoy_filter_types", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_go_string_literals_decode_as_go_defines_them() -> None:
    go_string = _load_script().go_string
    assert go_string(r"\n\a\b\f\r\t\v\\\"") == b"\n\a\b\f\r\t\v\\\""
    assert go_string(r"\x9a\377\u00e9") == b"\x9a\xff" + "é".encode()
    assert go_string("ň") == "ň".encode()  # a character as itself: its UTF-8 bytes


def _go_literal(data: bytes) -> str:
    """``data`` as protoc-gen-go writes a rawDesc: string literals joined with +, split at newlines."""
    chunks = data.split(b"\n")
    body = ["".join(chr(b) if 32 <= b < 127 and b not in b'"\\' else f"\\x{b:02x}" for b in c) for c in chunks]
    parts = [f'"{c}\\n"' for c in body[:-1]] + [f'"{body[-1]}"']
    return "const file_x_proto_rawDesc = \"\" +\n\t" + " +\n\t".join(parts) + "\n\nvar (\n"


def test_generator_writes_the_descriptors_xds_protos_lacks(tmp_path: Path) -> None:
    fdp = descriptor_pb2.FileDescriptorProto(name="contrib/x/v3/x.proto", package="envoy.x.v3", syntax="proto3",
                                             dependency=["google/protobuf/duration.proto"])
    msg = fdp.message_type.add(name="X")
    msg.field.add(name="timeout", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                  type_name=".google.protobuf.Duration", label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    gen = 'package xds\n\nimport (\n\t_ "github.com/envoyproxy/go-control-plane/contrib/x/v3"\n)\n'
    go_mod = "require (\n\tgithub.com/envoyproxy/go-control-plane/envoy v1.0.0-0.2026-aaaaaaaaaaaa\n\tistio.io/api v1.0.0-0.2026-bbbbbbbbbbbb\n)\n"
    istio = _git_repo(tmp_path / "istio", {"pkg/config/xds/filter_types.gen.go": gen, "go.mod": go_mod})
    commit = subprocess.run(["git", "--git-dir", istio, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    pb_go = "package x\n\nvar goTypes = []any{\n\t(*X)(nil), // 0: envoy.x.v3.X\n}\n\n" + _go_literal(fdp.SerializeToString())
    gcp = _git_repo(tmp_path / "gcp", {"contrib/x/v3/x.pb.go": pb_go})
    api = _git_repo(tmp_path / "api", {"envoy/extensions/stats/config.pb.go": "package s\n"})
    out_file = tmp_path / "d.binpb"
    args = [sys.executable, str(SCRIPT), "--istio", istio, "--commit", commit, "--go-control-plane", gcp,
            "--istio-api", api, "--descriptors", str(out_file)]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    assert "1 proto files xds-protos lacks" in out
    written = descriptor_pb2.FileDescriptorSet.FromString(out_file.read_bytes())
    assert [f.name for f in written.file] == ["contrib/x/v3/x.proto"] and written.file[0] == fdp
    pool = envoy_filter_descriptors.build_pool(written)
    assert pool.FindMessageTypeByName("envoy.x.v3.X").fields_by_name["timeout"].message_type.full_name == "google.protobuf.Duration"


def _network_filter(typed_config: str) -> str:
    return f"""\
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {{name: ef, namespace: default}}
spec:
  configPatches:
  - applyTo: NETWORK_FILTER
    patch:
      operation: INSERT_FIRST
      value:
        name: x
        typed_config: {typed_config}
"""


def test_contrib_and_istio_typed_configs_are_read_field_by_field() -> None:
    def verdict(typed_config: str) -> tuple[list[str], list[str]]:
        (resource,) = load_yaml(_network_filter(typed_config), "ef.yaml")
        v = validate(resource)
        return [with_field(e) for e in v.errors], [with_field(w) for w in v.warnings if "implementation details" not in w]

    mysql = '{"@type": "type.googleapis.com/envoy.extensions.filters.network.mysql_proxy.v3.MySQLProxy", '
    assert verdict(mysql + 'stat_prefix: mysql}') == ([], [])
    assert verdict(mysql + 'stat_prefix: mysql, bogus: 1}') == (
        [], ['spec.configPatches[0].patch.value.typed_config.bogus: unknown field "bogus"'])
    rewrite = '{"@type": "type.googleapis.com/istio.envoy.config.filter.network.tcp_cluster_rewrite.v2alpha1.TcpClusterRewrite", '
    errors, _ = verdict(rewrite + 'cluster_pattern: [not, a, string]}')
    assert errors == ["spec.configPatches[0].patch.value.typed_config.cluster_pattern: Envoy filter: Failed to parse cluster_pattern field: "
                      "expected string or bytes-like object, got 'list'."]
