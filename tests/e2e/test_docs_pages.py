"""The API's documentation pages work without internet: /docs (Swagger UI) and /redoc
load their scripts, styles and icon from the server itself."""

from __future__ import annotations

import re

import pytest

from support.procs import Launcher, Server

pytestmark = pytest.mark.e2e

# every URL a page names: attributes, and the document Swagger UI's script is given
_URL = re.compile(r"""(?:src|href|spec-url)="([^"]*)"|\burl: '([^']*)'""")
_JAVASCRIPT = {"text/javascript", "application/javascript"}

PAGES = {
    "/docs": {
        "/docs/assets/swagger-ui.css": {"text/css"},
        "/docs/assets/swagger-ui-bundle.js": _JAVASCRIPT,
        "/docs/assets/favicon.png": {"image/png"},
        "/openapi.json": {"application/json"},
    },
    "/redoc": {
        "/docs/assets/redoc.standalone.js": _JAVASCRIPT,
        "/docs/assets/favicon.png": {"image/png"},
        "/openapi.json": {"application/json"},
    },
}


@pytest.fixture(scope="module")
def server(module_launcher: Launcher) -> Server:
    return module_launcher.serve()


def urls_named(html: str) -> set[str]:
    return {attribute or script for attribute, script in _URL.findall(html)}


@pytest.mark.parametrize("page", sorted(PAGES))
def test_a_documentation_page_loads_only_what_the_server_serves(server: Server, page: str) -> None:
    answer = server.client.get(page)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert "http://" not in answer.text and "https://" not in answer.text
    assert urls_named(answer.text) == set(PAGES[page])
    for url, types in PAGES[page].items():
        asset = server.client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].split(";")[0] in types, url
        assert len(asset.content) > 1000, url


def test_the_assets_are_the_packaged_swagger_ui_and_redoc(server: Server) -> None:
    script = server.client.get("/docs/assets/swagger-ui-bundle.js").text
    assert "SwaggerUIBundle" in script
    assert "Redoc" in server.client.get("/docs/assets/redoc.standalone.js").text
    missing = server.client.get("/docs/assets/swagger-ui-bundle.js.map")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
