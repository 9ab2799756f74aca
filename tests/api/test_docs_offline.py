"""``/docs`` works with no internet: the Swagger UI page loads its script, style and
icon from this service (assets bundled in an installed package), never from a CDN."""

from __future__ import annotations

import re

from tests.api.conftest import Service


def test_docs_page_uses_only_assets_served_here(svc: Service) -> None:
    page = svc.client.get("/docs")
    assert page.status_code == 200
    html = page.text
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html) + re.findall(
        r"""url: ?["']([^"']+)["']""", html)
    assert urls and all(u.startswith("/") for u in urls), urls
    for url in urls:
        response = svc.client.get(url)
        assert response.status_code == 200, url
    assert any(u.endswith("swagger-ui-bundle.js") for u in urls)
    js = svc.client.get(next(u for u in urls if u.endswith("swagger-ui-bundle.js"))).text
    assert "isOAS31" in js  # a Swagger UI that renders FastAPI's OpenAPI 3.1 document
    assert svc.client.get("/openapi.json").json()["openapi"].startswith("3.1")


def test_redoc_page_is_offline_too(svc: Service) -> None:
    html = svc.client.get("/redoc").text
    assert "fonts.googleapis.com" not in html and "cdn.jsdelivr.net" not in html
