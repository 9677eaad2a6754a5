"""Typed dependencies for routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from serve_app.config import Settings
from serve_app.pipeline.protocol import Pipeline


@dataclass(frozen=True)
class AppContext:
    """What every route may use; built once per app by :func:`create_app`."""

    pipeline: Pipeline
    settings: Settings


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


def get_request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


Context = Annotated[AppContext, Depends(get_context)]
RequestId = Annotated[str, Depends(get_request_id)]
