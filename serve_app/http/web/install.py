"""Mount the web UI on an app: ``install_web(app)``."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from serve_app.http.web import pages
from serve_app.http.web.openapi_docs import install_offline_docs
from serve_app.http.web.rendering import STATIC_PREFIX

STATIC_DIR = Path(__file__).parent / "static"


def install_web(app: FastAPI) -> None:
    """Include the pages, ``/docs`` and ``/redoc``; serve static files at ``/ui/static``.

    Needs the accounts (``install_accounts``): pages are shown to signed-in users.
    """
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="ui-static")
    app.include_router(pages.router)
    install_offline_docs(app)
