"""Schema validation as analysis: errors IST0106, warnings IST0133, unreachable VirtualService rules."""

from __future__ import annotations

from pilotfish.config.analysis import analyze
from pilotfish.config.analysis.schema import load_error_messages
from pilotfish.config.analysis.testing import findings, load_yaml
from pilotfish.config.errors import ConfigError

DUPLICATES = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: dup}
spec:
  hosts: [sample.foo]
  http:
  - match: [{uri: {prefix: /api}}]
    route: [{destination: {host: a}}]
  - match: [{uri: {prefix: /api}}]
    route: [{destination: {host: b}}]
"""


def test_duplicate_matches_get_their_own_codes() -> None:
    msgs = analyze(load_yaml(DUPLICATES), analyzers=["schema.ValidationAnalyzer.VirtualService"])
    assert findings(msgs) == [("IST0130", "VirtualService dup"), ("IST0131", "VirtualService dup")]


def test_validation_errors_are_ist0106() -> None:
    text = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: []}]
"""
    msgs = analyze(load_yaml(text), analyzers=["schemaValidation.CollectionValidationAnalyzer(collections.Gateway)"])
    assert msgs and {m.code for m in msgs} == {"IST0106"}
    assert all(str(m.resource) == "Gateway default/gw" for m in msgs)


def test_resources_that_do_not_load_become_ist0106() -> None:
    errors = [ConfigError("unknown field \"hostz\"", kind="VirtualService", name="v", namespace="ns", field_path="spec.hostz")]
    (msg,) = load_error_messages(errors)
    assert (msg.code, str(msg.resource)) == ("IST0106", "VirtualService ns/v")
    assert msg.text == 'Schema validation error: spec.hostz: unknown field "hostz"'
