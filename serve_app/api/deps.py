"""Typed dependencies for routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from serve_app.config import Settings
from serve_app.pipeline.protocol import Pipeline
from serve_app.story.pipeline import StoryPipeline


@dataclass(frozen=True)
class AppContext:
    """What every route may use; built once per app by :func:`create_app`."""

    pipeline: Pipeline
    settings: Settings
    #: The Story API's models; ``None`` when the story routes are not mounted.
    story: StoryPipeline | None = None


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


def get_story(request: Request) -> StoryPipeline:
    story = get_context(request).story
    if story is None:
        raise RuntimeError("the story routes are mounted only with a story pipeline")
    return story


def get_request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


Context = Annotated[AppContext, Depends(get_context)]
RequestId = Annotated[str, Depends(get_request_id)]
Story = Annotated[StoryPipeline, Depends(get_story)]
