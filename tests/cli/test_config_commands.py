"""``pilotfish validate`` and ``pilotfish analyze`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from pilotfish.cli.main import cli
from tests.corpus import corpus_path

GOOD = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: default
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
"""
BAD = GOOD.replace("host: reviews}", "host: reviews, bogus: 1}")


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin)
    return result.exit_code, result.output


def test_version_and_help() -> None:
    code, out = run("--version")
    assert code == 0 and out.startswith("pilotfish ")
    for cmd in ([], ["validate"], ["analyze"]):
        code, out = run(*cmd, "--help")
        assert code == 0 and "Usage:" in out


def test_validate_exit_codes(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text(BAD)
    assert run("validate", "-f", str(good))[0] == 0
    code, out = run("validate", "-f", str(good), "-f", str(bad))
    assert code == 1
    assert f"{bad}:10: VirtualService default/reviews: invalid" in out
    assert 'unknown field "bogus"' in out
    assert run("validate", "-f", str(tmp_path / "missing.yaml"))[0] == 2
    assert run("validate")[0] == 2


def test_validate_json_and_stdin() -> None:
    code, out = run("validate", "-f", "-", "-o", "json", stdin=BAD + "---\n" + GOOD)
    assert code == 1
    reports = json.loads(out)
    assert [r["valid"] for r in reports] == [False, True]
    assert set(reports[0]) == {"kind", "apiVersion", "name", "namespace", "file", "line", "valid", "errors", "warnings", "messages"}
    assert reports[0]["messages"] == [{"level": "error", "field": "spec.http[0].route[0].destination.bogus", "line": 10,
                                       "message": 'unknown field "bogus"'}]
    assert reports[0]["file"] == "<stdin>" and reports[0]["kind"] == "VirtualService"


def test_validate_bookinfo_networking_all_valid() -> None:
    path = corpus_path("bookinfo", "samples", "bookinfo", "networking")
    code, out = run("validate", "-f", str(path), "-o", "json")
    reports = json.loads(out)
    assert code == 0, [r for r in reports if not r["valid"]]
    assert len(reports) > 20


def test_console_script_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "pilotfish.cli.main", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "pilotfish" in out.stdout


def test_analyze_reports_missing_subset(tmp_path: Path) -> None:
    path = tmp_path / "vs.yaml"
    path.write_text(GOOD.replace("{host: reviews}", "{host: reviews, subset: v9}"))
    code, out = run("analyze", "-f", str(path))
    assert code == 79
    assert 'Error [IST0101] (VirtualService default/reviews) Referenced host+subset in destinationrule not found: "reviews+v9"' in out
    code, out = run("analyze", "-f", str(path), "-o", "json")
    messages = json.loads(out)
    assert messages[0]["code"] == "IST0101"
    assert messages[0]["resource"] == {"kind": "VirtualService", "name": "reviews", "namespace": "default"}
    assert messages[0]["file"] == str(path)


def test_analyze_one_namespace_or_all(tmp_path: Path) -> None:
    bad = GOOD.replace("{host: reviews}", "{host: reviews, subset: v9}")
    path = tmp_path / "vs.yaml"
    path.write_text(bad.replace("  namespace: default\n", "") + "---\n" + bad.replace("namespace: default", "namespace: other"))

    def origins(target: str, *args: str) -> list[str]:
        code, out = run("analyze", "-f", str(path), *args)
        assert code == 79 and out.splitlines()[-2] == f"Error: Analyzers found issues when analyzing {target}."
        return [line.split("(")[1].split(")")[0] for line in out.splitlines() if line.startswith("Error [")]

    # Without a namespace, a resource goes to the one analyzed; others' messages are not shown.
    assert origins("namespace: default") == ["VirtualService default/reviews"]
    assert origins("namespace: other", "-n", "other") == ["VirtualService other/reviews"]  # the same object, twice
    assert sorted(origins("all namespaces", "-A")) == ["VirtualService other/reviews", "VirtualService reviews"]


def test_analyze_files_is_istioctl_without_a_cluster(tmp_path: Path) -> None:
    # As `istioctl analyze --use-kube=false`: checks that need a cluster's Services, Pods or
    # Secrets are skipped, so a host not in the files is not an error ...
    path = tmp_path / "vs.yaml"
    path.write_text(GOOD.replace("{host: reviews}", "{host: istiod.istio-system.svc}"))
    assert run("analyze", "-f", str(path)) == (0, "\u2714 No validation issues found when analyzing the given files.\n")
    # ... and a plain application bundle passes.
    bookinfo = corpus_path("bookinfo", "samples", "bookinfo")
    networking = [bookinfo / "networking" / f for f in ("bookinfo-gateway.yaml", "destination-rule-all.yaml", "virtual-service-all-v1.yaml")]
    code, out = run("analyze", "-f", str(bookinfo / "platform" / "kube" / "bookinfo.yaml"), *(a for f in networking for a in ("-f", str(f))))
    assert code == 0, out


def test_analyze_reports_unloadable_resources_as_ist0106(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    code, out = run("analyze", "-f", str(path))
    assert code == 79
    assert "Error [IST0106] (VirtualService default/reviews)" in out
    assert f"[{path}:10]" in out
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\x00\x01")
    code, out = run("analyze", "-f", str(binary), "-o", "json")
    assert code == 79 and json.loads(out)[0]["resource"] is None
    assert run("analyze", "-f", str(tmp_path / "missing.yaml"))[0] == 2
    assert run("analyze", "-f", str(path), "--analyzer", "no.SuchAnalyzer")[0] == 2


def test_input_that_is_not_config_is_reported_at_its_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(GOOD + "  - oops: [\n")
    code, out = run("validate", "-f", str(tmp_path / "broken.yaml"))
    assert code == 1
    assert out.splitlines()[0].startswith(f"{tmp_path / 'broken.yaml'}:12: invalid YAML: ")
    code, out = run("validate", "-f", "-", "-f", "-", stdin=GOOD)
    assert code == 2 and "more than once" in out


def test_webhook_errors_name_their_field_and_its_line(tmp_path: Path) -> None:
    """Istio's messages, unchanged, with the field they are about and that field's line."""
    (tmp_path / "vs.yaml").write_text(GOOD.replace("destination: {host: reviews}", "destination: {host: \"\"}")
                                      .replace("http:\n", "http:\n  - route: [{destination: {host: ok}}]\n"))
    code, out = run("validate", "-f", str(tmp_path / "vs.yaml"))
    assert code == 1
    assert out.splitlines()[:2] == [
        f"{tmp_path / 'vs.yaml'}:11: VirtualService default/reviews: invalid",
        "  error: spec.http[1].route[0].destination.host: empty domain name not allowed"]
    gateway = """apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
  - port: {number: 81, name: http2, protocol: HTTP}
    hosts: ["a.example.com"]
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*"]
"""
    (tmp_path / "gw.yaml").write_text(gateway)
    code, out = run("validate", "-f", str(tmp_path / "gw.yaml"))
    assert code == 1
    assert out.splitlines()[0] == f"{tmp_path / 'gw.yaml'}:11: Gateway gw: invalid"
    assert out.splitlines()[1] == "  error: spec.servers[2]: server must have TLS settings for HTTPS/TLS protocols"


def test_destination_rule_errors_name_their_subset(tmp_path: Path) -> None:
    (tmp_path / "dr.yaml").write_text("""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r}
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v1
    labels: {version: v2}
    trafficPolicy:
      connectionPool:
        tcp: {maxConnections: -1}
""")
    code, out = run("validate", "-f", str(tmp_path / "dr.yaml"))
    assert code == 1 and out.splitlines()[:3] == [
        f"{tmp_path / 'dr.yaml'}:9: DestinationRule r: invalid",
        "  error: spec.subsets[1].name: duplicate subset names: v1",
        "  error: spec.subsets[1].trafficPolicy.connectionPool.tcp.maxConnections: max connections must be non-negative (line 13)"]


def test_service_entry_errors_name_their_port_and_endpoint(tmp_path: Path) -> None:
    (tmp_path / "se.yaml").write_text("""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [api.example.com]
  resolution: STATIC
  ports:
  - {number: 80, name: http, protocol: HTTP}
  - {number: 80, name: http2, protocol: HTTP}
  endpoints:
  - address: 10.0.0.1
    ports: {web: 8080}
""")
    code, out = run("validate", "-f", str(tmp_path / "se.yaml"))
    assert code == 1 and out.splitlines()[:3] == [
        f"{tmp_path / 'se.yaml'}:9: ServiceEntry se: invalid",
        "  error: spec.ports[1].number: service entry port 80 already defined",
        "  error: spec.endpoints[0].ports.web: endpoint port 8080 is not defined by the service entry (line 12)"]


def test_sidecar_errors_name_their_listener_and_say_a_field_once(tmp_path: Path) -> None:
    (tmp_path / "sc.yaml").write_text("""apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: sc}
spec:
  egress:
  - port: {number: 80, name: http, protocol: HTTP}
""")
    code, out = run("validate", "-f", str(tmp_path / "sc.yaml"))
    assert code == 1 and out.splitlines()[1:3] == [
        "  error: spec.egress[0].hosts: Required value",  # (the CRD's message names its field itself)
        "  error: spec.egress[0].hosts: sidecar: egress listener must contain at least one host"]
