"""The product page's HTML, as Istio's templates (productpage.html, index.html) lay it out.

Self-contained: one local stylesheet (/static/bookinfo.css), a few lines of inline script for the
sign-in dialog, no CDN. Elements a browser test looks for have stable ids and classes:
``#sign-in-button``, ``#login-form`` (fields ``#username``, ``#password`` named ``passwd``),
``#user`` and ``#sign-out``, ``#details`` / ``#details-error``, ``#reviews`` / ``#reviews-error``,
``.review``, ``.stars`` (with ``stars-black`` or ``stars-red``, and Istio's ``text-<color>-500``),
``.star-full`` (also ``glyphicon glyphicon-star``, so Istio's ``grep -o glyphicon-star`` counts
filled stars), ``.star-empty``, ``.rating-error`` and ``.served-by`` / ``.podname``.
"""

from __future__ import annotations

from html import escape
from typing import Any

_HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Simple Bookstore App</title>
<link rel="stylesheet" href="/static/bookinfo.css">
</head>
"""

_DIALOG_SCRIPT = """<script>
window.addEventListener("DOMContentLoaded", () => {
  const dialog = document.querySelector("#dialog");
  const show = document.querySelector("#sign-in-button");
  const close = document.querySelector("#close-dialog");
  if (show) { show.addEventListener("click", () => dialog.showModal()); }
  if (close) { close.addEventListener("click", () => dialog.close()); }
});
</script>
"""

_LOGIN_DIALOG = """<dialog id="dialog">
  <button id="close-dialog" type="button" aria-label="Close">&times;</button>
  <h2>Sign in to BookInfo</h2>
  <form id="login-form" name="login_form" method="post" action="/login">
    <label for="username">Username</label>
    <input id="username" name="username" required>
    <label for="password">Password</label>
    <input id="password" name="passwd" type="password" required>
    <button id="login-submit" type="submit">Sign in</button>
  </form>
</dialog>
"""


def _nav(user: str) -> str:
    if user:
        who = (f'<span id="user" class="user">{escape(user)}</span>\n'
               '    <a id="sign-out" class="sign-out" href="/logout">Sign out</a>')
    else:
        who = '<button type="button" id="sign-in-button">Sign in</button>'
    return f"""<nav class="navbar">
  <a href="#" class="brand">BookInfo Sample</a>
  <div class="account">
    {who}
  </div>
</nav>
"""


def _details(status: int, details: dict[str, Any]) -> str:
    if status != 200:
        return f"""<section id="details" class="details">
  <p id="details-error" class="error">Error fetching product details</p>
  <p class="error-text">{escape(str(details.get("error", "")))}</p>
</section>
"""
    columns = ("ISBN-10", "Publisher", "Pages", "Type", "Language")
    keys = ("ISBN-10", "publisher", "pages", "type", "language")
    head = "".join(f"<th>{c}</th>" for c in columns)
    cells = "".join(f'<td class="detail-{k.lower()}">{escape(str(details.get(k, "")))}</td>' for k in keys)
    return f"""<section id="details" class="details">
  <h4>Book Details</h4>
  <table class="details-table">
    <thead><tr>{head}</tr></thead>
    <tbody><tr>{cells}</tr></tbody>
  </table>
</section>
"""


def _stars(rating: dict[str, Any]) -> str:
    if "error" in rating:
        return f'<p class="rating-error">{escape(str(rating["error"]))}</p>'
    stars = rating.get("stars")
    if not isinstance(stars, int) or not stars:
        return ""
    stars = max(0, min(stars, 5))
    color = escape(str(rating.get("color", "black")))
    full = '<span class="star star-full glyphicon glyphicon-star" aria-hidden="true">&#9733;</span>' * stars
    empty = '<span class="star star-empty" aria-hidden="true">&#9734;</span>' * (5 - stars)
    return (f'<div class="stars stars-{color} text-{color}-500" data-stars="{stars}" data-color="{color}"'
            f' aria-label="{stars} of 5 stars">{full}{empty}</div>')


def _reviews(status: int, reviews: dict[str, Any]) -> str:
    if status != 200:
        return f"""<section id="reviews" class="reviews">
  <p id="reviews-error" class="error">Error fetching product reviews</p>
  <p class="error-text">{escape(str(reviews.get("error", "")))}</p>
</section>
"""
    podname = escape(str(reviews.get("podname", "")))
    cluster = reviews.get("clustername")
    on_cluster = (f' on cluster <span class="clustername">{escape(str(cluster))}</span>'
                  if cluster and cluster != "null" else "")
    items = []
    for review in reviews.get("reviews", []):
        rating = review.get("rating")
        items.append(f"""  <article class="review">
    {_stars(rating) if isinstance(rating, dict) else ""}
    <blockquote class="review-text">"{escape(str(review.get("text", "")))}"</blockquote>
    <div class="reviewer">{escape(str(review.get("reviewer", "")))}</div>
    <div class="served-by">Reviews served by: <span class="podname">{podname}</span>{on_cluster}</div>
  </article>
""")
    return f"""<section id="reviews" class="reviews">
  <h4>Book Reviews</h4>
  <div class="review-list">
{"".join(items)}  </div>
</section>
"""


def product_page(product: dict[str, Any], details_status: int, details: dict[str, Any],
                 reviews_status: int, reviews: dict[str, Any], user: str) -> str:
    # descriptionHtml is the app's own markup (a Wikipedia link, bold text): not escaped, as Istio's
    return f"""{_HEAD}<body>
{_nav(user)}{"" if user else _LOGIN_DIALOG}<main class="container">
<section id="product" class="product">
  <h1 id="product-title">{escape(product["title"])}</h1>
  <p class="description">{product["descriptionHtml"]}</p>
</section>
{_details(details_status, details)}{_reviews(reviews_status, reviews)}</main>
{_DIALOG_SCRIPT}</body>
</html>
"""


def index_page(services: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{escape(s['name'])}</td><td>{escape(s['endpoint'])}</td>"
        f"<td>{escape(', '.join(c['name'] for c in s['children']))}</td></tr>" for s in services)
    return f"""{_HEAD}<body>
<main class="container">
<h3>Hello! This is a simple bookstore application consisting of three services as shown below</h3>
<table class="services"><thead><tr><th>name</th><th>endpoint</th><th>children</th></tr></thead>
<tbody>{rows}</tbody></table>
<p>Click on one of the links below to auto generate a request to the backend as a real user or a tester</p>
<ul>
  <li><a href="/productpage?u=normal">Normal user</a></li>
  <li><a href="/productpage?u=test">Test user</a></li>
</ul>
</main>
</body>
</html>
"""
