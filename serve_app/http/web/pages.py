"""The page routes: thin, each renders one template for a signed-in viewer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from serve_app.http.capabilities import describe_capabilities
from serve_app.http.context import get_context, mounted_jobs
from serve_app.http.navigation import HOME, base_path, login_url, safe_next
from serve_app.http.web.api_reference import build_reference
from serve_app.http.web.rendering import render
from serve_app.http.web.viewer import Viewer, current_viewer
from serve_app.storage.bucket_cors import url_origin
from serve_app.story.languages import LANGUAGES
from serve_app.summaries.plan import DEFAULT_FRAMES_PER_CHUNK
from serve_app.summaries.spec import SummaryRequest

router = APIRouter(include_in_schema=False)

#: Messages for ``/ui/login?error=`` (set by a form login without JavaScript).
LOGIN_ERRORS = {
    "invalid": "Wrong username or password.",
    "rate_limited": "Too many attempts. Wait a minute and try again.",
    "expired": "Your session has expired. Please sign in again.",
}


def _summary_form(request: Request) -> dict[str, Any]:
    """The Long videos form's starting values and bounds: the API's own defaults."""
    fields = SummaryRequest.model_fields
    settings = get_context(request).settings.summaries
    return {
        "chunk_s": f"{fields['chunk_s'].default:g}",
        "min_chunk_s": f"{settings.min_chunk_s:g}",
        "max_chunk_s": f"{settings.max_chunk_s:g}",
        "overlap_s": f"{fields['overlap_s'].default:g}",
        "frames_per_chunk": DEFAULT_FRAMES_PER_CHUNK,
    }


def _blob_origins(request: Request) -> tuple[str, ...]:
    """The blob store's origin when the page talks to it directly (S3 presigned URLs)."""
    jobs = mounted_jobs(request)
    origin = url_origin(jobs.blobs) if jobs is not None else None
    return (origin,) if origin else ()


def _capabilities(request: Request) -> dict[str, Any]:
    jobs = mounted_jobs(request)
    return describe_capabilities(get_context(request), jobs).model_dump(mode="json")


async def _signed_in(request: Request) -> Viewer | RedirectResponse:
    viewer = await current_viewer(request)
    if viewer is None:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        return RedirectResponse(login_url(base_path(request), target), status_code=303)
    return viewer


@router.get("/")
async def main_page(request: Request) -> Response:
    """What the service does, how to sign in and how to call the API, for everyone.

    Signed-in visitors get the same page with a link to the app: ``GET /`` stays one
    stable page (as the API documents describe it), the app is one click away.
    """
    viewer = await current_viewer(request)
    return render(
        request,
        "home.html",
        title="Image and video understanding",
        viewer=viewer,
        script="shell.js" if viewer is not None else None,
        capabilities=_capabilities(request),
        home=HOME,
    )


@router.get("/ui")
async def app_home(request: Request) -> Response:
    return RedirectResponse(base_path(request) + HOME, status_code=303)


@router.get("/ui/login")
async def login_page(
    request: Request, next: str | None = None, error: str | None = None
) -> Response:
    base = base_path(request)
    target = safe_next(next, base)
    if await current_viewer(request) is not None:
        return RedirectResponse(target, status_code=303)
    return render(
        request,
        "login.html",
        title="Sign in",
        viewer=None,
        script="login.js",
        config={"next": target},
        next=target,
        error=LOGIN_ERRORS.get(error or ""),
    )


async def _page(
    request: Request,
    template: str,
    title: str,
    active: str,
    script: str | None = None,
    media_sources: str = "",
    **context: Any,
) -> Response:
    viewer = await _signed_in(request)
    if isinstance(viewer, Response):
        return viewer
    capabilities = _capabilities(request)
    return render(
        request,
        template,
        title=title,
        viewer=viewer,
        active=active,
        script=script or f"{active}.js",
        config={"capabilities": capabilities},
        capabilities=capabilities,
        media_sources=media_sources,
        connect_origins=_blob_origins(request),
        **context,
    )


@router.get("/ui/analyze")
async def analyze_page(request: Request) -> Response:
    return await _page(request, "analyze.html", "Analyze", "analyze")


@router.get("/ui/story")
async def story_page(request: Request) -> Response:
    return await _page(request, "story.html", "Story", "story")


@router.get("/ui/jobs")
async def jobs_page(request: Request) -> Response:
    return await _page(request, "jobs.html", "Jobs", "jobs")


@router.get("/ui/summaries")
async def summaries_page(request: Request) -> Response:
    return await _page(
        request,
        "summaries.html",
        "Long videos",
        "summaries",
        media_sources="https: http:",
        defaults=_summary_form(request),
        languages=list(LANGUAGES.items()),
    )


@router.get("/ui/tokens")
async def tokens_page(request: Request) -> Response:
    return await _page(request, "tokens.html", "API tokens", "tokens")


@router.get("/ui/stats")
async def stats_page(request: Request) -> Response:
    return await _page(request, "stats.html", "Stats", "stats")


@router.get("/ui/api")
async def api_page(request: Request) -> Response:
    public_base = str(request.base_url).rstrip("/")
    reference = build_reference(request.app.openapi(), public_base)
    return await _page(
        request,
        "api.html",
        "API documentation",
        "api",
        script="shell.js",
        reference=reference,
        api_base=public_base,
    )


@router.get("/ui/{rest:path}")
async def not_found_page(request: Request, rest: str) -> Response:
    viewer = await current_viewer(request)
    return render(request, "not_found.html", title="Page not found", viewer=viewer, status_code=404)
