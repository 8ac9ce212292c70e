"""Bookinfo's details service (samples/bookinfo/src/details), run from bookinfo.yaml."""

from __future__ import annotations

import http.client

from tests.samples.harness import BOOKINFO, AppRunner

ISTIO_DETAILS = {
    "id": 0, "author": "William Shakespeare", "year": 1595, "type": "paperback", "pages": 200,
    "publisher": "PublisherA", "language": "English", "ISBN-10": "1234567890", "ISBN-13": "123-1234567890",
}


def test_details_answers_istios_json_in_istios_order(apps: AppRunner) -> None:
    details = apps.start(BOOKINFO, "details-v1")
    resp = details.get("/details/0", {"Host": "details:9080"})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.json() == ISTIO_DETAILS
    assert list(resp.json()) == list(ISTIO_DETAILS)
    assert details.get("/details/7").json()["id"] == 7
    assert details.wait_for_log('"GET /details/0 HTTP/1.1" 200 host=details:9080')


def test_details_rejects_a_non_numeric_id_and_reports_health(apps: AppRunner) -> None:
    details = apps.start(BOOKINFO, "details-v1")
    bad = details.get("/details/abc")
    assert (bad.status, bad.json()) == (400, {"error": "please provide numeric product id"})
    health = details.get("/health")
    assert (health.status, health.json()) == (200, {"status": "Details is healthy"})
    assert details.get("/nowhere").status == 404


def test_details_keeps_the_connection_alive_and_exits_on_sigterm_with_it_open(apps: AppRunner) -> None:
    details = apps.start(BOOKINFO, "details-v1")
    conn = http.client.HTTPConnection("127.0.0.1", details.port, timeout=5)
    try:
        for product in (0, 1, 2):
            conn.request("GET", f"/details/{product}")
            resp = conn.getresponse()
            assert resp.status == 200 and not resp.will_close
            assert b'"id": %d' % product in resp.read()
        assert details.stop(timeout=3) == 0  # an idle keep-alive connection does not hold it
    finally:
        conn.close()
