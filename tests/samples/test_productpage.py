"""Bookinfo's product page (samples/bookinfo/src/productpage) with the real details, reviews and
ratings behind the forward proxy that stands in for the sidecars: what a user of Istio's tasks
sees (stars, errors, sign-in) and what the other services receive (end-user, trace headers)."""

from __future__ import annotations

import re
import time
import urllib.parse

from tests.samples.harness import BOOKINFO, TRACE_HEADERS, App, AppRunner, ForwardProxy

DETAILS_ERROR = "Sorry, product details are currently unavailable for this book."
REVIEWS_ERROR = "Sorry, product reviews are currently unavailable for this book."
RATINGS_ERROR = "Ratings service is currently unavailable"
RATINGS_API_ERROR = "Sorry, product ratings are currently unavailable for this book."


def bookinfo(apps: AppRunner, proxy: ForwardProxy, reviews: str = "v2", *, details: bool = True,
             ratings: bool = True, reviews_up: bool = True) -> tuple[App, App | None]:
    """Starts productpage and its services together; returns (productpage, reviews)."""
    started = {}
    if details:
        started["details:9080"] = apps.start(BOOKINFO, "details-v1", wait=False)
    if ratings and reviews != "v1":
        started["ratings:9080"] = apps.start(BOOKINFO, "ratings-v1", wait=False)
    if reviews_up:
        started["reviews:9080"] = apps.start(BOOKINFO, f"reviews-{reviews}", proxy=proxy, wait=False)
    page = apps.start(BOOKINFO, "productpage-v1", proxy=proxy, wait=False)
    apps.ready(page, *started.values())
    for authority, app in started.items():
        proxy.route(authority, app)
    return page, started.get("reviews:9080")


def stars(html: str) -> list[tuple[str, int]]:
    """(color, filled stars) per review, as a user sees them."""
    return [(color, int(n)) for color, n in re.findall(r'class="stars stars-(\w+)[^"]*" data-stars="(\d)"', html)]


def test_product_page_shows_each_reviews_versions_stars(apps: AppRunner, proxy: ForwardProxy, node: str) -> None:
    page, v1 = bookinfo(apps, proxy, "v1")
    proxy.route("ratings:9080", apps.start(BOOKINFO, "ratings-v1", wait=False))
    v2 = apps.start(BOOKINFO, "reviews-v2", proxy=proxy, wait=False)
    v3 = apps.start(BOOKINFO, "reviews-v3", proxy=proxy, wait=False)
    apps.ready(*apps.apps)
    for reviews, expected in ((v1, []), (v2, [("black", 5), ("black", 4)]), (v3, [("red", 5), ("red", 4)])):
        assert reviews is not None
        proxy.route("reviews:9080", reviews)  # as a VirtualService sending all traffic to one version
        resp = page.get("/productpage", {"Host": "productpage:9080"})
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
        html = resp.text
        assert "<title>Simple Bookstore App</title>" in html
        assert "The Comedy of Errors" in html and "William Shakespeare" in html
        assert "PublisherA" in html and "1234567890" in html and "paperback" in html
        assert stars(html) == expected, reviews.pod
        assert html.count("glyphicon-star") == sum(n for _, n in expected)  # Istio's `grep -o glyphicon-star`
        assert html.count(f'Reviews served by: <span class="podname">{reviews.pod}</span>') == 2
        assert "An extremely entertaining play by Shakespeare." in html
        assert 'id="sign-in-button"' in html and 'id="user"' not in html
    assert {s.authority for s in proxy.seen} == {"details:9080", "reviews:9080", "ratings:9080"}
    assert all(s.absolute_form for s in proxy.seen)  # every call went through HTTP_PROXY
    assert page.wait_for_log('"GET /productpage HTTP/1.1" 200 host=productpage:9080')


def test_product_page_shows_istios_errors_when_details_or_reviews_are_down(
        apps: AppRunner, proxy: ForwardProxy) -> None:
    page, _ = bookinfo(apps, proxy, "v1", details=False, reviews_up=False)
    html = page.get("/productpage").text
    assert "Error fetching product details" in html and DETAILS_ERROR in html
    assert "Error fetching product reviews" in html and REVIEWS_ERROR in html
    assert 'id="details-error"' in html and 'id="reviews-error"' in html
    assert len(proxy.to("reviews:9080")) == 2  # the original tries reviews twice


def test_product_page_shows_ratings_unavailable_when_ratings_is_down(apps: AppRunner, proxy: ForwardProxy) -> None:
    page, _ = bookinfo(apps, proxy, "v2", ratings=False)
    html = page.get("/productpage").text
    assert html.count(f'<p class="rating-error">{RATINGS_ERROR}</p>') == 2
    assert stars(html) == [] and REVIEWS_ERROR not in html


def test_seven_second_ratings_delay_behind_reviews_v2_shows_the_reviews_error(
        apps: AppRunner, proxy: ForwardProxy, node: str) -> None:
    """Istio's fault-injection task: reviews v2 waits up to 10 s for ratings, productpage gives
    reviews 3 s and one retry (details gets the same 3 s), so the page shows the reviews error
    after about 6 s."""
    page, _ = bookinfo(apps, proxy, "v2")
    proxy.delays["ratings:9080"] = 7.0
    started = time.monotonic()
    html = page.get("/productpage", timeout=20).text
    elapsed = time.monotonic() - started
    assert "Error fetching product reviews" in html and REVIEWS_ERROR in html
    assert "PublisherA" in html
    assert 5.8 <= elapsed < 8.0, elapsed
    assert len(proxy.to("reviews:9080")) == 2


def test_sign_in_shows_the_user_and_sends_end_user_downstream_and_sign_out_clears_it(
        apps: AppRunner, proxy: ForwardProxy, node: str) -> None:
    page, _ = bookinfo(apps, proxy, "v2")
    form = urllib.parse.urlencode({"username": "jason", "passwd": "jason"}).encode()
    login = page.request("POST", "/login", {"Content-Type": "application/x-www-form-urlencoded",
                                            "Referer": "http://productpage:9080/productpage"}, form)
    assert login.status == 302 and login.headers["Location"] == "/productpage"
    cookie = login.headers["Set-Cookie"].split(";", 1)[0]
    assert cookie.startswith("session=") and "HttpOnly" in login.headers["Set-Cookie"]

    html = page.get("/productpage", {"Cookie": cookie}).text
    assert '<span id="user" class="user">jason</span>' in html and 'id="sign-out"' in html
    assert 'id="sign-in-button"' not in html
    for authority in ("details:9080", "reviews:9080", "ratings:9080"):  # ratings: forwarded by reviews
        [call] = proxy.to(authority)
        assert call.headers.get("end-user") == "jason", authority
        assert call.headers.get("cookie") == cookie, authority

    logout = page.get("/logout", {"Cookie": cookie, "Referer": "http://productpage:9080/productpage"})
    assert logout.status == 302 and logout.headers["Location"] == "/productpage"
    assert re.match(r"session=;.*Max-Age=0", logout.headers["Set-Cookie"])
    proxy.seen.clear()
    html = page.get("/productpage").text
    assert 'id="sign-in-button"' in html and 'id="user"' not in html
    assert all("end-user" not in s.headers for s in proxy.seen)


def test_a_forged_session_cookie_signs_nobody_in(apps: AppRunner, proxy: ForwardProxy) -> None:
    page, _ = bookinfo(apps, proxy, "v1")
    login = page.request("POST", "/login", {"Content-Type": "application/x-www-form-urlencoded"},
                         b"username=jason&passwd=x")
    assert login.headers["Location"] == "/productpage"  # no Referer
    payload, signature = login.headers["Set-Cookie"].split(";", 1)[0].removeprefix("session=").split(".")
    forged = payload.replace(payload[:4], "eyJ1") + "." + signature[::-1]
    html = page.get("/productpage", {"Cookie": f"session={forged}"}).text
    assert 'id="sign-in-button"' in html
    assert all("end-user" not in s.headers for s in proxy.seen)


def test_product_page_forwards_istios_trace_headers(apps: AppRunner, proxy: ForwardProxy, node: str) -> None:
    page, _ = bookinfo(apps, proxy, "v2")
    incoming = {k: v for k, v in TRACE_HEADERS.items() if k != "end-user"}  # end-user comes from the session
    page.get("/productpage", {**incoming, "x-not-propagated": "1"})
    for authority in ("details:9080", "reviews:9080", "ratings:9080"):
        [call] = proxy.to(authority)
        assert {k: v for k, v in call.headers.items() if k in incoming} == incoming, authority
        assert "x-not-propagated" not in call.headers and "end-user" not in call.headers


def test_product_api(apps: AppRunner, proxy: ForwardProxy, node: str) -> None:
    page, reviews = bookinfo(apps, proxy, "v3")
    [product] = page.get("/api/v1/products").json()
    assert product["id"] == 0 and product["title"] == "The Comedy of Errors"
    assert page.get("/api/v1/products/0").json()["publisher"] == "PublisherA"
    body = page.get("/api/v1/products/0/reviews").json()
    assert reviews is not None and body["podname"] == reviews.pod
    assert body["reviews"][1]["rating"] == {"stars": 4, "color": "red"}
    assert page.get("/api/v1/products/0/ratings").json() == {"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}
    proxy.aborts["ratings:9080"] = 503
    down = page.get("/api/v1/products/0/ratings")
    assert (down.status, down.json()) == (503, {"error": RATINGS_API_ERROR})


def test_health_index_static_and_metrics(apps: AppRunner, proxy: ForwardProxy) -> None:
    page, _ = bookinfo(apps, proxy, "v1")
    assert page.get("/health").text == "Product page is healthy"
    assert "Normal user" in page.get("/").text
    css = page.get("/static/bookinfo.css")
    assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
    assert page.get("/static/../productpage.py").status == 404
    assert page.get("/static/%2e%2e/productpage.py").status == 404
    assert page.get("/nowhere").status == 404
    page.get("/productpage")
    assert 'request_result_total{destination_app="details",response_code="200"} 1.0' in page.get("/metrics").text
