"""``pilotfish x explain --config-dir``: answers from Istio YAML before anything runs."""

from __future__ import annotations

from pathlib import Path

from .bookinfo import CLIENT, GATEWAY, REVIEWS, REVIEWS_VS, config_dir, explain_json, gateway_yaml, run

V1 = "outbound|9080|v1|reviews.default.svc.cluster.local"
V2 = "outbound|9080|v2|reviews.default.svc.cluster.local"
V3 = "outbound|9080|v3|reviews.default.svc.cluster.local"


def _client(conf: Path, *args: str) -> dict:
    return explain_json("--config-dir", str(conf), "--proxy-id", CLIENT, "--labels", "app=client", *args)


def test_jason_is_routed_to_reviews_v2_by_the_header_route(tmp_path: Path) -> None:
    conf = config_dir(tmp_path / "conf", REVIEWS, REVIEWS_VS)
    out = _client(conf, "--url", "http://reviews:9080/reviews/1", "-H", "end-user: jason")
    assert out["outcome"] == "routed"
    assert out["listener"]["name"] == "0.0.0.0_9080" and out["listener"]["via"] == "virtualOutbound"
    assert out["route_config"]["name"] == "9080"
    assert out["virtual_host"]["name"] == "reviews.default.svc.cluster.local:9080"
    assert out["virtual_host"]["domain"] == "reviews:9080"
    assert out["route"]["match"]["headers"][0]["name"] == "end-user"
    assert out["route"]["not_matched"] == []
    assert out["cluster"]["name"] == V2 and out["cluster"]["subset"] == "v2"
    assert [(e["address"], e["port"]) for e in out["endpoints"][V2]] == [("10.1.0.12", 9080)]


def test_another_user_is_told_why_the_jason_route_did_not_match(tmp_path: Path) -> None:
    conf = config_dir(tmp_path / "conf", REVIEWS, REVIEWS_VS)
    out = _client(conf, "--url", "http://reviews:9080/reviews/1", "-H", "end-user: bob")
    [skipped] = out["route"]["not_matched"]
    assert skipped["match"]["headers"][0]["name"] == "end-user"
    [why] = skipped["why"]
    assert "end-user" in why and "jason" in why and "'bob'" in why
    without = _client(conf, "--url", "http://reviews:9080/reviews/1")
    assert "absent" in without["route"]["not_matched"][0]["why"][0]


def test_a_weighted_split_lists_every_cluster_with_its_weight_and_endpoints(tmp_path: Path) -> None:
    conf = config_dir(tmp_path / "conf", REVIEWS, REVIEWS_VS)
    out = _client(conf, "--url", "http://reviews:9080/")
    assert out["outcome"] == "routed"
    weighted = out["cluster"]["weighted"]
    assert [(c["name"], c["subset"], c["weight"]) for c in weighted] == [(V1, "v1", 80), (V3, "v3", 20)]
    assert out["cluster"]["total_weight"] == 100
    assert [e["address"] for e in out["endpoints"][V1]] == ["10.1.0.11"]
    assert [e["address"] for e in out["endpoints"][V3]] == ["10.1.0.13"]
    code, text = run("--config-dir", str(conf), "--proxy-id", CLIENT, "--url", "http://reviews:9080/")
    assert code == 0
    assert "80/100" in text and "20/100" in text and "subset v3" in text


def test_a_gateway_host_no_virtualservice_binds_is_not_found_with_the_reason(tmp_path: Path) -> None:
    conf = config_dir(tmp_path / "conf", gateway_yaml(8080))
    args = ("--config-dir", str(conf), "--proxy-id", GATEWAY, "--labels", "istio=ingressgateway")
    out = explain_json(*args, "--url", "http://unbound.example.com:8080/")
    assert out["outcome"] == "not_found" and out["status"] == 404
    assert out["listener"]["name"] == "0.0.0.0_8080"
    assert out["route_config"]["name"] == "http.8080"
    assert out["virtual_host"] is None
    assert "no virtual host" in out["reason"] and "unbound.example.com" in out["reason"]
    bound = explain_json(*args, "--url", "http://bookinfo.example.com:8080/productpage")
    assert bound["outcome"] == "routed"
    assert bound["cluster"]["name"] == "outbound|9080||productpage.default.svc.cluster.local"
    assert "prefix '/api'" in bound["route"]["not_matched"][0]["why"][0]
    neither = explain_json(*args, "--url", "http://bookinfo.example.com:8080/login")
    assert neither["outcome"] == "not_found" and "no route" in neither["reason"]
    assert len(neither["route"]["not_matched"]) == 2


def test_registry_only_blackholes_an_unknown_host(tmp_path: Path) -> None:
    conf = config_dir(tmp_path / "conf", REVIEWS)
    mesh = tmp_path / "mesh.yaml"
    mesh.write_text("outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n")
    redirect = _client(conf, "--mesh-config", str(mesh), "--url", "http://unknown.example.org/")
    assert redirect["outcome"] == "blackhole"
    assert redirect["listener"]["name"] == "virtualOutbound"
    assert redirect["cluster"]["name"] == "BlackHoleCluster"
    local = _client(conf, "--mesh-config", str(mesh), "--interception", "NONE", "--url", "http://unknown.example.org/")
    assert local["outcome"] == "blackhole" and local["status"] == 502
    assert local["listener"]["name"] == "127.0.0.1_15080" and local["route"]["name"] == "block_all"
    allowed = _client(conf, "--url", "http://unknown.example.org/")
    assert allowed["outcome"] == "passthrough"


def test_a_service_without_endpoints_has_no_healthy_upstream(tmp_path: Path) -> None:
    conf = config_dir(tmp_path / "conf", REVIEWS.replace("app: reviews}}", "app: nobody}}"))
    out = _client(conf, "--url", "http://reviews:9080/")
    assert out["outcome"] == "no_healthy_upstream" and out["status"] == 503


def test_bad_input_is_an_error_naming_what_is_wrong(tmp_path: Path) -> None:
    conf = config_dir(tmp_path / "conf", REVIEWS)
    code, out = run("--config-dir", str(conf), "--url", "http://reviews:9080/")
    assert code == 1 and "--proxy-id" in out
    code, out = run("--config-dir", str(conf), "--proxy-id", "nonsense", "--url", "http://reviews:9080/")
    assert code == 1 and "nonsense" in out


def test_a_tcp_service_is_reached_at_its_vip_through_the_tcp_proxy(tmp_path: Path) -> None:
    db = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: mysql, namespace: default}
spec:
  hosts: [mysql.default.svc.cluster.local]
  addresses: [10.0.0.7]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 3306, name: tcp, protocol: TCP}]
  endpoints: [{address: 10.1.0.30}]
"""
    conf = config_dir(tmp_path / "conf", db)
    out = _client(conf, "--host", "mysql", "--port", "3306", "--protocol", "tcp")
    assert out["request"]["address"] == "10.0.0.7"
    assert out["listener"]["name"] == "10.0.0.7_3306" and out["listener"]["via"] == "virtualOutbound"
    assert out["filter_chain"]["filter"] == "envoy.filters.network.tcp_proxy"
    assert out["outcome"] == "tcp_proxy"
    assert [e["address"] for e in out["endpoints"]["outbound|3306||mysql.default.svc.cluster.local"]] == ["10.1.0.30"]
    elsewhere = _client(conf, "--host", "mysql", "--port", "3306", "--protocol", "tcp", "--address", "10.9.9.9")
    assert elsewhere["listener"]["name"] == "virtualOutbound" and elsewhere["outcome"] == "passthrough"
