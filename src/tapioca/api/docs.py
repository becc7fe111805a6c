"""The API's documentation pages, `/docs` (Swagger UI) and `/redoc` (ReDoc).

Their scripts, styles and icon are served by Tapioca itself, from the files the
fastapi-offline package ships (swagger-ui-dist's bundle and CSS, ReDoc's standalone
bundle): the pages work on a machine without internet.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from tapioca.api.access import Access, access

ASSETS_URL = "/docs/assets"


def install_docs(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets (the app is made with docs_url=None and
    redoc_url=None, so that FastAPI's own pages, which load them from a CDN, are off)."""
    assets = StaticFiles(packages=[("fastapi_offline", "static")])
    app.mount(ASSETS_URL, assets, name="docs_assets")

    @app.get("/docs", include_in_schema=False, **access(Access.OPEN))
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} API",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False, **access(Access.OPEN))
    async def redoc(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} API",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )


def _root(request: Request) -> str:
    """The path the app is mounted under behind a proxy (ASGI root_path), if any."""
    return str(request.scope.get("root_path", "")).rstrip("/")
