"""Istio's EnvoyFilter type registry (generated data) and the script that generates it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pilotfish.config.validation import envoy_filter_types
from pilotfish.config.validation.envoy_filter_types import CONTRIB_TYPES, ENVOY_TYPES, ISTIO_TYPES
from pilotfish.config.validation.envoyfilter import checked_structurally, resolves

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
    assert not checked_structurally("type.googleapis.com/stats.PluginConfig")
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


def test_structural_checking_does_not_depend_on_other_imports() -> None:
    # The proxy registers its own stats.PluginConfig descriptor in the default pool; validation
    # must still treat Istio's extension types as checked by name only.
    import pilotfish.proxy.compile.istio_config  # noqa: F401

    assert not checked_structurally("type.googleapis.com/stats.PluginConfig")
