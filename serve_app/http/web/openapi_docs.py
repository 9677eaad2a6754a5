"""``/docs`` (Swagger UI) and ``/redoc`` that work offline.

FastAPI's own pages load their JavaScript and CSS from a CDN, so they render blank
without internet. These serve the same pages with the assets shipped by the
``fastapi-offline`` package, under the app's mount point (a Serve route prefix).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from serve_app.http.navigation import base_path

DOCS, REDOC, ASSETS = "/docs", "/redoc", "/docs/assets"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
#: Swagger UI's defaults, less the online validator badge (a request to swagger.io).
SWAGGER_PARAMETERS = {
    "dom_id": "#swagger-ui",
    "layout": "BaseLayout",
    "deepLinking": True,
    "showExtensions": True,
    "showCommonExtensions": True,
    "validatorUrl": None,
}
#: Everything from this service: no page of the docs reaches another host (ReDoc's
#: sidebar logo would come from its CDN). Both pages start with an inline script and
#: style their components inline; ReDoc searches in a ``blob:`` worker.
DOCS_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; worker-src 'self' blob:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def install_offline_docs(app: FastAPI) -> None:
    """Mount the docs pages and their assets; build ``app`` with ``docs_url=None``."""
    app.mount(ASSETS, StaticFiles(packages=[("fastapi_offline", "static")]), name="docs-assets")

    @app.get(DOCS, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        base = base_path(request)
        page = get_swagger_ui_html(
            openapi_url=base + str(app.openapi_url),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{base}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{base}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{base}{ASSETS}/favicon.png",
            oauth2_redirect_url=base + OAUTH2_REDIRECT,
            swagger_ui_parameters=SWAGGER_PARAMETERS,
        )
        page.headers.update(DOCS_SECURITY_HEADERS)
        return page

    @app.get(OAUTH2_REDIRECT, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        base = base_path(request)
        page = get_redoc_html(
            openapi_url=base + str(app.openapi_url),
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{base}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{base}{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        page.headers.update(DOCS_SECURITY_HEADERS)
        return page
