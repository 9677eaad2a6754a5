"""The account discovery the ``roboflow`` SDK does before a video job.

``Roboflow(api_key)`` posts to the host root, ``.workspace()`` reads ``/<workspace>``
and ``.project(<model id>).version(n)`` reads ``/<workspace>/<model id>``, each with
``?api_key=``. Included last: any path a page or API route owns matches first, and a
request without credentials to an unknown path still gets a plain 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from serve_app.errors import NotFound
from serve_app.http.api.schemas import error_responses
from serve_app.http.auth import authenticate_request, get_accounts
from serve_app.http.deps import CurrentUserOrApiKey, Jobs
from serve_app.jobs.submit import workspace

router = APIRouter(tags=["video inference"])

_ERRORS = error_responses({401: "No valid API token", 404: "Not your workspace, or no such model"})


def _require_credentials(request: Request) -> None:
    if "api_key" not in request.query_params and "authorization" not in request.headers:
        raise NotFound("Not Found")


# Not in the OpenAPI schema: "/" is the main page's path there (docs/api page lists it).
@router.post("/", include_in_schema=False)
def api_key_workspace(user: CurrentUserOrApiKey) -> dict[str, str]:
    """The workspace of the API key (``Roboflow(api_key=...)`` checks its key here)."""
    return {"workspace": user.username}


@router.get("/{workspace_url}", responses=_ERRORS)
@router.get("/{workspace_url}/", include_in_schema=False)
def get_workspace(workspace_url: str, request: Request, jobs: Jobs) -> dict[str, Any]:
    """The caller's workspace: one project per model that video jobs may name."""
    _require_credentials(request)
    user = authenticate_request(request, get_accounts(request), allow_query_key=True).user
    workspace.check_workspace(user, workspace_url)
    return workspace.workspace_info(jobs.catalog, user)


@router.get("/{workspace_url}/{model_id}", responses=_ERRORS)
@router.get("/{workspace_url}/{model_id}/", include_in_schema=False)
def get_project(workspace_url: str, model_id: str, request: Request, jobs: Jobs) -> dict[str, Any]:
    """One model as a project, its versions listed (``.project(id).version(n)``)."""
    _require_credentials(request)
    user = authenticate_request(request, get_accounts(request), allow_query_key=True).user
    workspace.check_workspace(user, workspace_url)
    return workspace.project_info(jobs.catalog, user, model_id)
