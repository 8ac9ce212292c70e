"""Bookinfo's reviews service (samples/bookinfo/src/reviews), v1/v2/v3 as bookinfo.yaml runs them,
calling ratings through the forward proxy that stands in for its sidecar."""

from __future__ import annotations

import time

from tests.samples.harness import BOOKINFO, TRACE_HEADERS, App, AppRunner, ForwardProxy

UNAVAILABLE = {"error": "Ratings service is currently unavailable"}


def start_reviews(apps: AppRunner, proxy: ForwardProxy, version: str, *, with_ratings: bool = True) -> App:
    if with_ratings:
        proxy.route("ratings:9080", apps.start(BOOKINFO, "ratings-v1"))
    return apps.start(BOOKINFO, f"reviews-{version}", proxy=proxy)


def test_reviews_v1_has_no_ratings_and_never_calls_ratings(apps: AppRunner, proxy: ForwardProxy) -> None:
    reviews = start_reviews(apps, proxy, "v1", with_ratings=False)
    body = reviews.get("/reviews/0", {"Host": "reviews:9080"}).json()
    assert body["id"] == "0"  # the Java original writes it as a string
    assert body["podname"] == reviews.pod and body["podname"].startswith("reviews-v1-")
    assert body["clustername"] == "null"
    assert [r["reviewer"] for r in body["reviews"]] == ["Reviewer1", "Reviewer2"]
    assert body["reviews"][0]["text"].startswith("An extremely entertaining play by Shakespeare.")
    assert all("rating" not in r for r in body["reviews"])
    assert proxy.seen == []
    assert reviews.wait_for_log('"GET /reviews/0 HTTP/1.1" 200 host=reviews:9080')


def test_reviews_v2_black_and_v3_red_stars_from_ratings(apps: AppRunner, proxy: ForwardProxy, node: str) -> None:
    v2 = start_reviews(apps, proxy, "v2")
    v3 = apps.start(BOOKINFO, "reviews-v3", proxy=proxy)
    assert [r["rating"] for r in v2.get("/reviews/0").json()["reviews"]] == [
        {"stars": 5, "color": "black"}, {"stars": 4, "color": "black"}]
    assert [r["rating"] for r in v3.get("/reviews/0").json()["reviews"]] == [
        {"stars": 5, "color": "red"}, {"stars": 4, "color": "red"}]
    calls = proxy.to("ratings:9080")
    assert [(c.method, c.path, c.absolute_form, c.status) for c in calls] == [("GET", "/ratings/0", True, 200)] * 2


def test_reviews_forwards_istios_headers_to_ratings_and_nothing_else(
        apps: AppRunner, proxy: ForwardProxy, node: str) -> None:
    reviews = start_reviews(apps, proxy, "v2")
    reviews.get("/reviews/0", {**TRACE_HEADERS, "x-not-propagated": "1"})
    [call] = proxy.to("ratings:9080")
    assert {k: v for k, v in call.headers.items() if k in TRACE_HEADERS} == TRACE_HEADERS
    assert "x-not-propagated" not in call.headers


def test_reviews_shows_ratings_unavailable_when_ratings_is_down_or_fails(apps: AppRunner, proxy: ForwardProxy) -> None:
    reviews = start_reviews(apps, proxy, "v2", with_ratings=False)  # no route: the proxy answers 503
    assert [r["rating"] for r in reviews.get("/reviews/0").json()["reviews"]] == [UNAVAILABLE] * 2
    proxy.aborts["ratings:9080"] = 500
    assert [r["rating"] for r in reviews.get("/reviews/0").json()["reviews"]] == [UNAVAILABLE] * 2


def test_reviews_v3_gives_up_on_ratings_after_two_and_a_half_seconds(
        apps: AppRunner, proxy: ForwardProxy, node: str) -> None:
    reviews = start_reviews(apps, proxy, "v3")
    proxy.delays["ratings:9080"] = 7.0  # Istio's fault-injection task delays ratings by 7 s
    started = time.monotonic()
    body = reviews.get("/reviews/0").json()
    elapsed = time.monotonic() - started
    assert [r["rating"] for r in body["reviews"]] == [UNAVAILABLE] * 2
    assert 2.4 <= elapsed < 4.0, elapsed


def test_reviews_health_and_unknown_paths(apps: AppRunner, proxy: ForwardProxy) -> None:
    reviews = start_reviews(apps, proxy, "v1", with_ratings=False)
    assert reviews.get("/health").json() == {"status": "Reviews is healthy"}
    assert reviews.get("/reviews/abc").status == 404
    assert reviews.get("/").status == 404
