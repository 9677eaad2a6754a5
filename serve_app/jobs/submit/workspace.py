"""The caller's workspace, projects and versions in the hosted video-inference shape.

The ``roboflow`` SDK reaches a model through ``Roboflow(api_key).workspace()
.project(<model id>).version(n).model`` before it submits a video. Here the workspace
is the caller's account (its URL is the username), each project is a ``model_id`` of
the job model catalog and each version one of its ``model_version`` entries. What the
SDK reads from these answers comes from the catalog and the account; the dataset
fields the service has no use for (images, splits, augmentation) are empty.
"""

from __future__ import annotations

import time
from typing import Any

from serve_app.accounts.users import User
from serve_app.errors import NotFound
from serve_app.frame_models.catalog import CatalogEntry, FrameModelCatalog

#: When this process started serving the catalog (the projects' created/updated times).
LOADED_AT = int(time.time())

_COLORS = ("#C7FC00", "#FF00FF", "#8622FF", "#FE0056", "#00FFCE", "#FF8000")


def check_workspace(user: User, workspace: str) -> None:
    """Raise NotFound unless ``workspace`` is the caller's own."""
    if workspace != user.username:
        raise NotFound(f"no workspace {workspace!r} for this API key")


def _class_names(entry: CatalogEntry) -> list[str]:
    options = entry.parsed_options()
    names = getattr(options, "class_names", None) or []
    if names:
        return [str(name) for name in names]
    name = getattr(options, "class_name", None)
    return [str(name)] if name else []


def _project(user: User, model_id: str, entries: list[CatalogEntry]) -> dict[str, Any]:
    classes = sorted({name for entry in entries for name in _class_names(entry)})
    first = entries[0]
    return {
        "id": f"{user.username}/{model_id}",
        "name": model_id,
        "type": first.inference_type,
        "annotation": ", ".join(classes) or model_id,
        "classes": {name: 0 for name in classes},
        "colors": {name: _COLORS[i % len(_COLORS)] for i, name in enumerate(classes)},
        "created": LOADED_AT,
        "updated": LOADED_AT,
        "images": 0,
        "unannotated": 0,
        "public": False,
        "splits": {},
        "versions": len(entries),
    }


def _by_model(catalog: FrameModelCatalog) -> dict[str, list[CatalogEntry]]:
    grouped: dict[str, list[CatalogEntry]] = {}
    for entry in catalog.models:
        grouped.setdefault(entry.model_id, []).append(entry)
    return grouped


def workspace_info(catalog: FrameModelCatalog, user: User) -> dict[str, Any]:
    """``GET /<workspace>``: the account and one project per job model."""
    projects = [_project(user, mid, entries) for mid, entries in _by_model(catalog).items()]
    return {
        "workspace": {
            "name": user.username,
            "url": user.username,
            "projects": projects,
            "members": [{"user": user.username, "role": "owner" if user.is_admin else "user"}],
        }
    }


def project_info(catalog: FrameModelCatalog, user: User, model_id: str) -> dict[str, Any]:
    """``GET /<workspace>/<model id>``: the project and its versions (one per version)."""
    entries = _by_model(catalog).get(model_id)
    if not entries:
        raise NotFound(f"no model {model_id!r} in this workspace")
    project = _project(user, model_id, entries)
    versions = [
        {
            "id": f"{project['id']}/{entry.model_version}",
            "name": f"{model_id} {entry.model_version}",
            "created": LOADED_AT,
            "images": 0,
            "splits": {},
            "augmentation": {},
            "preprocessing": {},
            "exports": [],
            "model": {
                "id": f"{project['id']}/{entry.model_version}",
                "inference_type": entry.inference_type,
                "implementation": entry.implementation,
            },
        }
        for entry in entries
    ]
    return {"workspace": user.username, "project": project, "versions": versions}
