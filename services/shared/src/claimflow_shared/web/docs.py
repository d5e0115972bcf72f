"""The interactive API docs (/docs, /redoc), served with their scripts and styles from the
service itself.

FastAPI's defaults load Swagger UI and ReDoc from a public CDN: in a cluster without
internet access the pages stay blank, and a Content-Security-Policy has to allow that CDN.
The fastapi-offline wheel carries the same Swagger UI and ReDoc bundles as package data.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs/static"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
SWAGGER_JS = "swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui.css"
REDOC_JS = "redoc.standalone.js"
FAVICON = "favicon.png"


def assets_dir() -> Path:
    """The directory of the packaged Swagger UI and ReDoc files."""
    return Path(str(files("fastapi_offline") / "static"))


def install_docs(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets; the app must be built with docs_url and
    redoc_url None, so FastAPI's CDN-loading pages are not registered as well."""
    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="docs-assets")

    def under_root(request: Request, path: str) -> str:
        # Behind an ingress that strips a path prefix the browser still needs the prefix.
        root: str = request.scope.get("root_path", "")
        return f"{root}{path}"

    def openapi_url(request: Request) -> str:
        assert app.openapi_url is not None, "the docs need the OpenAPI document"
        return under_root(request, app.openapi_url)

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        static = under_root(request, ASSETS_URL)
        return get_swagger_ui_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{static}/{SWAGGER_JS}",
            swagger_css_url=f"{static}/{SWAGGER_CSS}",
            swagger_favicon_url=f"{static}/{FAVICON}",
            oauth2_redirect_url=under_root(request, OAUTH2_REDIRECT_URL),
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        static = under_root(request, ASSETS_URL)
        return get_redoc_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{static}/{REDOC_JS}",
            redoc_favicon_url=f"{static}/{FAVICON}",
            with_google_fonts=False,
        )
