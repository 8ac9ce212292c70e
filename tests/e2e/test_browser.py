"""Bookinfo in a real browser: headless Chromium, driven through ChromeDriver, opens productpage
through the ingress gateway and uses it as a person would while Istio's own routing YAML is
applied unchanged (``destination-rule-all.yaml``, ``virtual-service-reviews-test-v2.yaml``, then
``virtual-service-reviews-v3.yaml``):

- anonymous, the book and its reviews show without stars (reviews v1);
- signed in as ``jason`` through the page's own form, his name shows and the stars are black (v2);
- once the reviews VirtualService sends everyone to v3, a reload shows red stars;
- signed out, the stars stay red.

The browser is Debian's Chromium and ChromeDriver (``scripts/install-system-deps.sh``; nothing is
downloaded by a test tool). Without them the test skips with the reason, and fails under
``CI=true`` (as ``tests/corpus.py`` does for Istio's corpus). ``PILOTFISH_CHROMIUM`` and
``PILOTFISH_CHROMEDRIVER`` point at another pair.

The README's picture, ``docs/productpage.png``, is taken by this test: with
``PILOTFISH_SCREENSHOT=docs/productpage.png`` it saves productpage, signed in as jason with v2's
black stars, to that path. When a step fails, a screenshot and the page's HTML are saved in
the test's ``tmp_path`` and named in the failure.
"""

from __future__ import annotations

import base64
import math
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from .harness import NETWORKING, SAMPLES, Mesh

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # the `chromium` fixture skips (fails under CI) and says so
    webdriver = None  # type: ignore[assignment]


# The flags the machine's notes give for Chromium here: headless, no sandbox (root), and none of
# the background connections to Google's hosts that a closed network refuses.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-proxy-server",  # the gateway is on loopback; a developer's http_proxy has no say
    "--hide-scrollbars",  # (for the screenshot)
)
WINDOW = (1100, 900)
WAIT = 15.0  # seconds for an element or a navigation; the mesh answers in well under one


def _require(what: str, fix: str = "run scripts/install-system-deps.sh") -> NoReturn:
    message = f"{what}; {fix}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser test cannot run: {message}", pytrace=False)
    pytest.skip(message)


def _find(env: str, name: str) -> tuple[str | None, str]:
    """The executable (or None) and where it was looked for."""
    if os.environ.get(env):
        path = os.environ[env]
        return (path if os.access(path, os.X_OK) else None), f"{env}={path}"
    default = f"/usr/bin/{name}"
    return (default if os.access(default, os.X_OK) else shutil.which(name)), f"{default} or {name} on PATH"


@dataclass(frozen=True)
class Chromium:
    binary: str
    driver: str


@pytest.fixture(scope="module")
def chromium() -> Chromium:
    """Chromium and ChromeDriver, or a skip (a failure under CI) saying what is missing."""
    binary, looked = _find("PILOTFISH_CHROMIUM", "chromium")
    if binary is None:
        _require(f"Chromium not found ({looked})")
    driver, looked = _find("PILOTFISH_CHROMEDRIVER", "chromedriver")
    if driver is None:
        _require(f"ChromeDriver not found ({looked})")
    if webdriver is None:
        _require("the selenium package is not installed", "pip install -e '.[dev]'")
    return Chromium(binary, driver)


@pytest.fixture(scope="module")
def bookinfo(chromium: Chromium, mesh_factory) -> Mesh:  # type: ignore[no-untyped-def]
    """Bookinfo behind the ingress gateway, with Istio's subsets and jason's test route to v2."""
    mesh = mesh_factory(SAMPLES / "bookinfo/platform/kube/bookinfo.yaml", NETWORKING / "bookinfo-gateway.yaml")
    mesh.apply(NETWORKING / "destination-rule-all.yaml")
    mesh.apply(NETWORKING / "virtual-service-reviews-test-v2.yaml")
    return mesh


@pytest.fixture
def browser(chromium: Chromium, tmp_path: Path) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = chromium.binary
    for flag in (*CHROMIUM_FLAGS, "--window-size={},{}".format(*WINDOW)):
        options.add_argument(flag)
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    options.add_argument(f"--user-data-dir={profile}")
    # A driver path given to Service means Selenium Manager never runs (it would download one).
    service = Service(chromium.driver, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


# ---------------------------------------------------------------------------- reading the page

_RGB = re.compile(r"rgba?\((\d+), (\d+), (\d+)")


def _rgb(css_color: str) -> tuple[int, int, int]:
    match = _RGB.match(css_color)
    assert match, css_color
    r, g, b = (int(v) for v in match.groups())
    return r, g, b


def _looks(color: str, rgb: tuple[int, int, int]) -> bool:
    """Whether a computed CSS colour is what a person would call black or red."""
    r, g, b = rgb
    if color == "black":
        return max(rgb) < 64
    if color == "red":
        return r > 150 and g < 100 and b < 100
    return False


@dataclass(frozen=True)
class Seen:
    """What productpage shows a person: the book, who is signed in, and each review's stars."""

    title: str
    user: str | None
    reviews: int
    stars: tuple[str, ...]  # each review's star colour, "" where it has none
    served_by: str

    @property
    def version(self) -> str:
        return self.served_by.split("-")[1] if self.served_by.startswith("reviews-") else "?"


def seen(driver: Any) -> Seen:
    assert driver.find_elements(By.CSS_SELECTOR, "#details .details-table"), "no book details on the page"
    assert not driver.find_elements(By.ID, "reviews-error"), driver.find_element(By.ID, "reviews").text
    users = driver.find_elements(By.ID, "user")
    reviews = driver.find_elements(By.CSS_SELECTOR, "#reviews .review")
    stars = []
    for review in reviews:
        shown = review.find_elements(By.CSS_SELECTOR, ".stars")
        if not shown:
            stars.append("")
            continue
        color = shown[0].get_attribute("data-color") or "?"
        full = shown[0].find_elements(By.CSS_SELECTOR, ".star-full")
        assert full, "a rating without a filled star"
        # the stylesheet came through the gateway too: the stars are drawn in that colour
        drawn = _rgb(full[0].value_of_css_property("color"))
        assert _looks(color, drawn), f"{color} stars drawn as rgb{drawn}"
        stars.append(color)
    podnames = {e.text for e in driver.find_elements(By.CSS_SELECTOR, "#reviews .podname")}
    assert len(podnames) == 1, podnames
    return Seen(title=driver.find_element(By.ID, "product-title").text,
                user=users[0].text if users else None, reviews=len(reviews), stars=tuple(stars),
                served_by=podnames.pop())


def expect(driver: Any, *, user: str | None, stars: str, version: str, loads: int = 3) -> None:
    """The page as shown now, and after ``loads - 1`` reloads (a lucky round robin is not enough)."""
    for n in range(loads):
        if n:
            driver.refresh()
        page = seen(driver)
        assert page.title == "The Comedy of Errors", page
        assert page.user == user, page
        assert page.reviews == 2, page
        assert page.stars == (stars, stars), page
        assert page.version == version, page


# ---------------------------------------------------------------------------- doing as a person does

def sign_in(driver: Any, user: str, password: str) -> None:
    wait = WebDriverWait(driver, WAIT)
    driver.find_element(By.ID, "sign-in-button").click()
    wait.until(ec.visibility_of_element_located((By.ID, "login-form")))
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login-submit").click()
    wait.until(ec.presence_of_element_located((By.ID, "user")))


def sign_out(driver: Any) -> None:
    driver.find_element(By.ID, "sign-out").click()
    WebDriverWait(driver, WAIT).until(ec.presence_of_element_located((By.ID, "sign-in-button")))


def screenshot(driver: Any, path: Path) -> None:
    """The whole page at the window's width, however long, through the DevTools protocol."""
    width = driver.execute_script("return document.documentElement.clientWidth")
    height = math.ceil(driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]["height"])
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    try:
        png = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(png["data"]))


# ---------------------------------------------------------------------------- the test

def test_reviews_follow_the_routing_a_user_sees(bookinfo: Mesh, browser: Any, tmp_path: Path) -> None:
    step = "open productpage"
    try:
        browser.get(f"{bookinfo.ingress}/productpage")
        step = "anonymous: reviews v1, no stars"
        expect(browser, user=None, stars="", version="v1")

        step = "sign in as jason: reviews v2, black stars"
        sign_in(browser, "jason", "password")
        assert browser.current_url.endswith("/productpage"), browser.current_url
        expect(browser, user="jason", stars="black", version="v2")
        if os.environ.get("PILOTFISH_SCREENSHOT"):
            screenshot(browser, Path(os.environ["PILOTFISH_SCREENSHOT"]))

        step = "apply virtual-service-reviews-v3.yaml, reload: red stars for jason"
        bookinfo.apply(NETWORKING / "virtual-service-reviews-v3.yaml")
        browser.refresh()
        expect(browser, user="jason", stars="red", version="v3")

        step = "sign out: still red, v3 for everyone"
        sign_out(browser)
        expect(browser, user=None, stars="red", version="v3")
    except Exception as exc:
        shot, html = tmp_path / "failed.png", tmp_path / "failed.html"
        try:
            browser.get_screenshot_as_file(str(shot))
            html.write_text(browser.page_source)
            exc.add_note(f"step: {step}; the page as it was: {shot}, {html}")
        except Exception:  # noqa: BLE001 (the browser itself failed; the step still says where)
            exc.add_note(f"step: {step}")
        raise
