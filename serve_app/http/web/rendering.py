"""Render a page: the Jinja templates, static URLs, navigation and security headers."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from serve_app import __version__
from serve_app.http.navigation import base_path
from serve_app.http.web.viewer import Viewer

STATIC_PREFIX = "/ui/static"
_HERE = Path(__file__).parent
_templates = Jinja2Templates(directory=_HERE / "templates")


def filesize(size: int) -> str:
    """``size`` bytes for people: 10 MB, 1.5 GB (powers of 1024)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if value >= 10 or unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


_templates.env.filters["filesize"] = filesize

#: No inline scripts or styles, nothing from other origins; pages may show local
#: previews (blob:) and the frames the API returns. ``{connect}``: 'self' plus, with
#: an S3 blob store, the bucket's origin (the jobs page uploads to presigned URLs).
_CSP_TEMPLATE = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src {media}; connect-src {connect}; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def content_security_policy(connect_origins: Sequence[str] = (), media_sources: str = "") -> str:
    """The pages' policy; ``connect_origins`` may be fetched from besides 'self', and
    ``media_sources`` are added to ``media-src``."""
    media = " ".join(part for part in ("'self' blob:", media_sources) if part)
    return _CSP_TEMPLATE.format(connect=" ".join(["'self'", *connect_origins]), media=media)


CONTENT_SECURITY_POLICY = content_security_policy()
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def security_headers(
    media_sources: str = "", connect_origins: Sequence[str] = ()
) -> dict[str, str]:
    """The headers of a page (see :func:`content_security_policy`).

    The Long videos page plays a video from the URL the user pasted: it adds
    ``https: http:`` to ``media-src`` (media only; scripts and styles stay same-origin).
    With an S3 blob store, pages may PUT to the bucket's origin (``connect_origins``).
    """
    if not media_sources and not connect_origins:
        return SECURITY_HEADERS
    policy = content_security_policy(connect_origins, media_sources)
    return {**SECURITY_HEADERS, "Content-Security-Policy": policy}


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    path: str


NAVIGATION = (
    NavItem("analyze", "Analyze", "/ui/analyze"),
    NavItem("story", "Story", "/ui/story"),
    NavItem("jobs", "Jobs", "/ui/jobs"),
    NavItem("summaries", "Long videos", "/ui/summaries"),
    NavItem("tokens", "API tokens", "/ui/tokens"),
    NavItem("stats", "Stats", "/ui/stats"),
    NavItem("api", "API docs", "/ui/api"),
)


@cache
def static_version() -> str:
    """A digest of the static files: new URLs whenever one of them changes."""
    digest = hashlib.sha256(__version__.encode())
    for path in sorted((_HERE / "static").rglob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def render(
    request: Request,
    template: str,
    *,
    title: str,
    viewer: Viewer | None,
    active: str = "",
    script: str | None = None,
    config: dict[str, Any] | None = None,
    status_code: int = 200,
    media_sources: str = "",
    connect_origins: Sequence[str] = (),
    **context: Any,
) -> HTMLResponse:
    """``template`` with the page shell; ``config`` reaches the page's script as JSON.

    ``connect_origins``: other origins the page's script may call (its CSP).
    """
    base = base_path(request)
    version = static_version()
    page_config = {"base": base, **(config or {})}
    if viewer is not None:
        page_config["csrfToken"] = viewer.csrf_token
        page_config["user"] = {
            "username": viewer.user.username,
            "isAdmin": viewer.user.is_admin,
            "balance": viewer.user.balance,
        }
    values = {
        "title": title,
        "base": base,
        "viewer": viewer,
        "active": active,
        "nav": [(item, base + item.path) for item in NAVIGATION] if viewer else [],
        "script": script,
        "page_config": page_config,
        "static": lambda name: f"{base}{STATIC_PREFIX}/{name}?v={version}",
        **context,
    }
    response = _templates.TemplateResponse(
        request,
        template,
        values,
        status_code=status_code,
        headers=security_headers(media_sources, connect_origins),
    )
    assert isinstance(response, HTMLResponse)
    return response
