"""Istio's Bookinfo tasks on the local mesh, with Istio's own YAML unchanged, through the ingress
gateway as a user's browser would reach productpage: request routing (all-v1, jason's v2, the
weighted shifts), fault injection (jason's 7 s ratings delay and abort) and request timeouts.

Which reviews version served a page is what the page shows: no stars (v1), black (v2), red (v3),
and "Reviews served by: reviews-vN-…". Distributions are checked with tolerances wide enough
(about four standard deviations) that a correct split never fails them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest

from .harness import NETWORKING, SAMPLES, Mesh, Reply, request


_SERVED_BY = re.compile(r'class="podname">(reviews-(v\d)-[^<]*)<')
_COLOR = re.compile(r'data-color="(\w+)"')


def version(page: Reply) -> str:
    """v1/v2/v3 as the page shows it, cross-checked against its stars."""
    assert page.status == 200, page.body[:500]
    served = _SERVED_BY.search(page.body)
    assert served, page.body[:2000]
    colors = set(_COLOR.findall(page.body))
    expected = {"v1": set(), "v2": {"black"}, "v3": {"red"}}[served.group(2)]
    assert colors == expected, (served.group(1), colors)
    return served.group(2)


@pytest.fixture(scope="module")
def bookinfo(mesh_factory) -> Iterator[Mesh]:  # type: ignore[no-untyped-def]
    mesh = mesh_factory(SAMPLES / "bookinfo/platform/kube/bookinfo.yaml", NETWORKING / "bookinfo-gateway.yaml")
    mesh.apply(NETWORKING / "destination-rule-all.yaml")
    yield mesh


@pytest.fixture
def routes(bookinfo: Mesh) -> Iterator[Mesh]:
    """Each test starts from Bookinfo with its subsets and no routing rules, and leaves it so."""
    yield bookinfo
    bookinfo.delete(*sorted(NETWORKING.glob("virtual-service-*.yaml")), _REVIEWS_TIMEOUT, _RATINGS_DELAY_2S)


def page(mesh: Mesh, cookie: str | None = None) -> Reply:
    return request(f"{mesh.ingress}/productpage", headers={"cookie": cookie} if cookie else {})


def sign_in(mesh: Mesh, user: str) -> str:
    """Sign in through the gateway as productpage's form does; the session cookie it sets."""
    reply = request(f"{mesh.ingress}/login", method="POST",
                    data=urlencode({"username": user, "passwd": "password"}).encode(),
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert reply.status == 302, reply
    return reply.headers["set-cookie"].split(";", 1)[0]


def versions(mesh: Mesh, n: int, cookie: str | None = None) -> Counter[str]:
    with ThreadPoolExecutor(4) as pool:
        return Counter(pool.map(lambda _: version(page(mesh, cookie)), range(n)))


def test_without_routing_rules_reviews_round_robins_over_its_three_versions(routes: Mesh) -> None:
    seen = versions(routes, 30)
    assert set(seen) == {"v1", "v2", "v3"}, seen
    assert "The Comedy of Errors" in page(routes).body
    assert request(f"{routes.ingress}/static/bookinfo.css").status == 200  # the gateway's /static route
    api = request(f"{routes.ingress}/api/v1/products")
    assert api.status == 200 and '"title"' in api.body
    assert request(f"{routes.ingress}/nowhere").status == 404  # not a path the VirtualService routes


def test_virtual_service_all_v1_sends_everyone_to_v1(routes: Mesh) -> None:
    routes.apply(NETWORKING / "virtual-service-all-v1.yaml")
    assert versions(routes, 20) == {"v1": 20}
    assert versions(routes, 5, sign_in(routes, "jason")) == {"v1": 5}


def test_reviews_test_v2_sends_jason_to_v2_and_others_to_v1(routes: Mesh) -> None:
    routes.apply(NETWORKING / "virtual-service-all-v1.yaml", NETWORKING / "virtual-service-reviews-test-v2.yaml")
    jason = sign_in(routes, "jason")
    signed_in = page(routes, jason)
    assert 'id="user"' in signed_in.body and "jason" in signed_in.body
    assert versions(routes, 10, jason) == {"v2": 10}
    assert versions(routes, 10) == {"v1": 10}
    assert versions(routes, 5, sign_in(routes, "kylie")) == {"v1": 5}
    # Signing out ends the session: back to v1.
    out = request(f"{routes.ingress}/logout", headers={"cookie": jason})
    assert out.status == 302
    assert version(page(routes)) == "v1"


@pytest.mark.parametrize(("task", "split"), [
    ("virtual-service-reviews-50-v3.yaml", {"v1": 0.5, "v3": 0.5}),
    ("virtual-service-reviews-80-20.yaml", {"v1": 0.8, "v2": 0.2}),
    ("virtual-service-reviews-90-10.yaml", {"v1": 0.9, "v2": 0.1}),
    ("virtual-service-reviews-v3.yaml", {"v3": 1.0}),
])
def test_traffic_shifting_follows_the_weights(routes: Mesh, task: str, split: dict[str, float]) -> None:
    routes.apply(NETWORKING / "virtual-service-all-v1.yaml", NETWORKING / task)
    n = 80
    seen = versions(routes, n)
    assert set(seen) <= set(split), seen
    for v, p in split.items():
        sigma = (n * p * (1 - p)) ** 0.5
        assert abs(seen[v] - n * p) <= max(4 * sigma, 0.5), (task, seen)


def test_ratings_delay_for_jason_shows_productpages_own_timeout(routes: Mesh) -> None:
    """Istio's fault-injection task: 7 s ratings delay for jason. reviews v2 waits up to 10 s
    for ratings, but productpage gives reviews 3 s and one retry, so jason's page shows the
    reviews error after about 6 s; everyone else is unaffected."""
    routes.apply(NETWORKING / "virtual-service-all-v1.yaml", NETWORKING / "virtual-service-reviews-test-v2.yaml",
                 NETWORKING / "virtual-service-ratings-test-delay.yaml")
    jason = sign_in(routes, "jason")
    slow = page(routes, jason)
    assert slow.status == 200
    assert "Sorry, product reviews are currently unavailable for this book." in slow.body
    assert 5.5 < slow.seconds < 9, slow.seconds
    other = page(routes)
    assert version(other) == "v1" and other.seconds < 2


def test_ratings_abort_for_jason(routes: Mesh) -> None:
    routes.apply(NETWORKING / "virtual-service-all-v1.yaml", NETWORKING / "virtual-service-reviews-test-v2.yaml",
                 NETWORKING / "virtual-service-ratings-test-abort.yaml")
    jason = page(routes, sign_in(routes, "jason"))
    assert jason.status == 200 and "Ratings service is currently unavailable" in jason.body
    assert _SERVED_BY.search(jason.body).group(2) == "v2"  # type: ignore[union-attr]
    assert version(page(routes)) == "v1"


# Istio's request-timeouts task gives these inline.
_RATINGS_DELAY_2S = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings
  http:
  - fault:
      delay:
        percentage:
          value: 100
        fixedDelay: 2s
    route:
    - destination:
        host: ratings
        subset: v1
"""
_REVIEWS_V2 = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
    - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v2
"""
_REVIEWS_TIMEOUT = _REVIEWS_V2 + "    timeout: 0.5s\n"


def test_request_timeout_on_reviews_cuts_a_slow_ratings_call(routes: Mesh) -> None:
    """Istio's request-timeouts task: with a 2 s ratings delay the page takes ~2 s and shows
    v2's stars; a 0.5 s timeout on reviews makes it return in about 1 s (productpage's one
    retry) with the reviews error."""
    routes.apply(NETWORKING / "virtual-service-all-v1.yaml", _REVIEWS_V2, _RATINGS_DELAY_2S)
    slow = page(routes)
    assert version(slow) == "v2" and 1.9 < slow.seconds < 4, slow.seconds
    routes.apply(_REVIEWS_TIMEOUT)
    cut = page(routes)
    assert cut.status == 200 and "Sorry, product reviews are currently unavailable for this book." in cut.body
    assert 0.9 < cut.seconds < 1.9, cut.seconds
