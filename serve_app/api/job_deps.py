"""Typed dependency of the video inference job routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from serve_app.jobs.context import JobsContext


def get_jobs(request: Request) -> JobsContext:
    jobs = getattr(request.app.state, "jobs", None)
    if not isinstance(jobs, JobsContext):
        raise RuntimeError("install_jobs(app, jobs) was not called")
    return jobs


Jobs = Annotated[JobsContext, Depends(get_jobs)]


def base_url(request: Request) -> str:
    """This app's public root URL as the client reached it (route prefix included)."""
    return str(request.base_url)
