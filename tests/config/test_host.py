"""Host names: Istio's wildcard matching and short-name resolution."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pilotfish.config.host import Hostname, resolve_short_name

label = st.from_regex(r"[a-z][a-z0-9]{0,5}", fullmatch=True)
name = st.lists(label, min_size=1, max_size=4).map(".".join)
host = st.one_of(name, name.map(lambda n: "*." + n), st.just("*"))


def test_exact_and_wildcard() -> None:
    assert Hostname("reviews.default.svc.cluster.local").matches("*.svc.cluster.local")
    assert Hostname("*.example.com").matches("foo.example.com")
    assert not Hostname("*.example.com").matches("example.org")
    assert Hostname("*").matches("anything.at.all")
    assert Hostname("*.b.com").matches("*.a.b.com")
    assert Hostname("foo.com").subset_of("*.com")
    assert not Hostname("*.com").subset_of("foo.com")
    assert Hostname("*.a.b.com").subset_of("*.b.com")


def test_short_names_resolve_in_namespace() -> None:
    assert resolve_short_name("reviews", "bookinfo") == "reviews.bookinfo.svc.cluster.local"
    assert resolve_short_name("reviews.other", "bookinfo") == "reviews.other"
    assert resolve_short_name("*.example.com", "bookinfo") == "*.example.com"


@given(host, host)
def test_matches_is_symmetric(a: str, b: str) -> None:
    assert Hostname(a).matches(b) == Hostname(b).matches(a)


@given(host, host)
def test_subset_implies_matches(a: str, b: str) -> None:
    if Hostname(a).subset_of(b):
        assert Hostname(a).matches(b)


@given(host)
def test_everything_is_a_subset_of_star_and_itself(a: str) -> None:
    assert Hostname(a).subset_of("*")
    assert Hostname(a).subset_of(a)
