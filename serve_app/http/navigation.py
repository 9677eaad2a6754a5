"""Where a page sends the browser next: safe, same-site redirect targets."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request

HOME = "/ui/analyze"
LOGIN = "/ui/login"


def base_path(request: Request) -> str:
    """The app's mount point as the client sees it (a Serve route prefix, or '')."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def safe_next(value: str | None, base: str) -> str:
    """``value`` if it is a path on this site, else the home page (no open redirects)."""
    if (
        value
        and value.startswith("/")
        and not value.startswith("//")
        and "\\" not in value
        and value.isprintable()
        and len(value) <= 2000
    ):
        return value
    return base + HOME


def login_url(base: str, next_path: str, error: str | None = None) -> str:
    """The sign-in page, coming back to ``next_path`` afterwards."""
    url = f"{base}{LOGIN}?next={quote(next_path, safe='/')}"
    return f"{url}&error={quote(error)}" if error else url
