"""Istio's helloworld (samples/helloworld/src), v1 and v2 as helloworld.yaml runs them."""

from __future__ import annotations

import pytest

from tests.samples.harness import AppRunner


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_hello_names_the_version_and_the_instance(apps: AppRunner, version: str) -> None:
    hello = apps.start("helloworld/helloworld.yaml", f"helloworld-{version}")
    resp = hello.get("/hello", {"Host": "helloworld:5000"})
    assert resp.status == 200
    assert resp.text == f"Hello version: {version}, instance: {hello.pod}\n"
    assert hello.pod.startswith(f"helloworld-{version}-")
    assert hello.get("/health").text == "Helloworld is healthy"
    assert hello.get("/nowhere").status == 404
    assert hello.wait_for_log('"GET /hello HTTP/1.1" 200 host=helloworld:5000')
