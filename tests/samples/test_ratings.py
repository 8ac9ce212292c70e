"""Bookinfo's ratings service (samples/bookinfo/src/ratings, Node.js), run from bookinfo.yaml."""

from __future__ import annotations

import http.client
import json
import time

from tests.samples.harness import BOOKINFO, AppRunner


def test_ratings_answers_istios_json(apps: AppRunner, node: str) -> None:
    ratings = apps.start(BOOKINFO, "ratings-v1")
    resp = ratings.get("/ratings/0", {"Host": "ratings:9080"})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.json() == {"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}
    assert ratings.get("/ratings/3").json()["id"] == 3
    assert ratings.wait_for_log('"GET /ratings/0 HTTP/1.1" 200 host=ratings:9080')


def test_ratings_takes_posted_ratings_rejects_bad_input_and_reports_health(apps: AppRunner, node: str) -> None:
    ratings = apps.start(BOOKINFO, "ratings-v1")
    posted = ratings.request("POST", "/ratings/1", {"Content-Type": "application/json"},
                             json.dumps({"Reviewer1": 1, "Reviewer2": 2}).encode())
    assert posted.json() == {"id": 1, "ratings": {"Reviewer1": 1, "Reviewer2": 2}}
    assert ratings.get("/ratings/1").json()["ratings"] == {"Reviewer1": 1, "Reviewer2": 2}
    assert ratings.get("/ratings/0").json()["ratings"] == {"Reviewer1": 5, "Reviewer2": 4}
    assert ratings.request("POST", "/ratings/1", body=b"{not json").status == 400
    bad = ratings.get("/ratings/abc")
    assert (bad.status, bad.json()) == (400, {"error": "please provide numeric product ID"})
    assert ratings.get("/health").json() == {"status": "Ratings is healthy"}


def test_ratings_variants_from_service_version(apps: AppRunner, node: str) -> None:
    faulty = apps.start(BOOKINFO, "ratings-v1", env={"SERVICE_VERSION": "v-faulty"})
    statuses = {faulty.get("/ratings/0").status for _ in range(40)}
    assert statuses == {200, 503}


def test_ratings_exits_promptly_on_sigterm_with_a_connection_open(apps: AppRunner, node: str) -> None:
    ratings = apps.start(BOOKINFO, "ratings-v1")
    conn = http.client.HTTPConnection("127.0.0.1", ratings.port, timeout=5)
    try:
        conn.request("GET", "/ratings/0")
        assert conn.getresponse().read()
        started = time.monotonic()
        assert ratings.stop(timeout=3) == 0
        assert time.monotonic() - started < 1.5
    finally:
        conn.close()
