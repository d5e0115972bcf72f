"""/docs and /redoc load every script, style and icon from the service itself, so they work
in a cluster without internet access. Every service's apps are built by build_app, so this
holds for each of them (tests/browser renders each service's /docs in a real browser)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html.parser import HTMLParser

import httpx
import pytest
from fastapi import FastAPI

from claimflow_shared.settings import ServiceSettings
from claimflow_shared.web.app import build_app

# Anything that would make the browser reach another host: an absolute or protocol-relative
# URL in an attribute, a script or a style.
EXTERNAL = re.compile(r"(?:[a-z][a-z0-9+.-]*:)?//[^\s'\"<>]+", re.IGNORECASE)


class _Links(HTMLParser):
    """The URLs a page makes the browser fetch: script src, link href, and the spec URL."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: dict[str, str] = {}  # url -> the tag that references it

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and name in {"src", "href", "spec-url"}:
                self.urls[value] = tag


def _links(html: str) -> dict[str, str]:
    parser = _Links()
    parser.feed(html)
    return parser.urls


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    yield


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(
        ServiceSettings(service_name="docs-test"),
        title="Docs test",
        description="t",
        version="1",
        lifespan=_lifespan,
        checks={},
    )

    @app.get("/v1/things", summary="List the things")
    async def things() -> list[str]:
        return []

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as c:
        yield c


EXPECTED_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".json": "application/json",
}


def _expected_type(url: str) -> str:
    suffix = url[url.rfind(".") :]
    return EXPECTED_TYPES[suffix]


@pytest.mark.parametrize(
    ("page", "must_load"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png"}),
    ],
)
async def test_docs_page_references_no_external_host_and_its_assets_are_served(
    client: httpx.AsyncClient, page: str, must_load: set[str]
) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert EXTERNAL.findall(html) == []
    urls = _links(html)
    assert {url.rsplit("/", 1)[-1] for url in urls} >= must_load
    for url in urls:
        assert url.startswith("/"), f"{page} references {url!r}, not a path of this service"
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].startswith(_expected_type(url)), url
        assert len(asset.content) > 1000 or url.endswith(".png"), url


async def test_swagger_ui_loads_this_services_openapi_document(
    client: httpx.AsyncClient,
) -> None:
    html = (await client.get("/docs")).text
    assert "url: '/openapi.json'" in html
    document = (await client.get("/openapi.json")).json()
    assert "/v1/things" in document["paths"]
    # The pages themselves are not API operations.
    assert not {"/docs", "/redoc"} & set(document["paths"])


async def test_docs_pages_honour_the_root_path_an_ingress_strips() -> None:
    app = build_app(
        ServiceSettings(service_name="docs-test"),
        title="Docs test",
        description="t",
        version="1",
        lifespan=_lifespan,
        checks={},
    )
    transport = httpx.ASGITransport(app=app, root_path="/intake")
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as c:
        html = (await c.get("/docs")).text
    assert set(_links(html)) == {
        "/intake/docs/static/swagger-ui.css",
        "/intake/docs/static/favicon.png",
        "/intake/docs/static/swagger-ui-bundle.js",
    }
    assert "url: '/intake/openapi.json'" in html


async def test_swagger_ui_bundle_is_the_real_swagger_ui(client: httpx.AsyncClient) -> None:
    script = (await client.get("/docs/static/swagger-ui-bundle.js")).text
    assert "SwaggerUIBundle" in script
    css = (await client.get("/docs/static/swagger-ui.css")).text
    assert ".swagger-ui" in css


@pytest.mark.parametrize(
    ("environment", "api_docs", "served"),
    [("local", None, True), ("production", None, False), ("production", True, True)],
)
async def test_production_serves_no_docs_unless_asked(
    environment: str, api_docs: bool | None, served: bool
) -> None:
    settings = ServiceSettings(
        service_name="docs-test",
        environment=environment,
        api_docs=api_docs,
        # Production takes only a database it verifies.
        database_url="postgresql://app@db:5432/app?sslmode=verify-full",  # type: ignore[arg-type]
    )
    app = build_app(
        settings, title="Docs test", description="t", version="1", lifespan=_lifespan, checks={}
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://docs") as http:
        statuses = {path: (await http.get(path)).status_code for path in ("/docs", "/redoc")}
        # The OpenAPI document stays: clients generate their code from it.
        assert (await http.get("/openapi.json")).status_code == 200
    assert statuses == dict.fromkeys(("/docs", "/redoc"), 200 if served else 404)
