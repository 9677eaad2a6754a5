"""Typed dependency of the video inference job routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from serve_app.jobs.context import JobsContext


def mounted_jobs(request: Request) -> JobsContext | None:
    """The app's video jobs, or None when they are not mounted (``install_jobs``)."""
    jobs = getattr(request.app.state, "jobs", None)
    return jobs if isinstance(jobs, JobsContext) else None


def get_jobs(request: Request) -> JobsContext:
    jobs = mounted_jobs(request)
    if jobs is None:
        raise RuntimeError("install_jobs(app, jobs) was not called")
    return jobs


Jobs = Annotated[JobsContext, Depends(get_jobs)]


def base_url(request: Request) -> str:
    """This app's public root URL as the client reached it (route prefix included)."""
    return str(request.base_url)
