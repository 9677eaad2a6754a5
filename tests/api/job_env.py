"""What the in-process video-job route tests share (their video is a conftest fixture)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from serve_app.accounts.context import AccountsContext
from serve_app.accounts.users import User
from serve_app.jobs.context import JobsContext
from serve_app.jobs.worker.loop import JobWorker


@dataclass
class Env:
    """An app with video jobs, its worker (drained by the tests) and one user."""

    client: httpx.AsyncClient
    accounts: AccountsContext
    jobs: JobsContext
    worker: JobWorker
    user: User
    token: str

    def key(self, user: User | None = None) -> dict[str, str]:
        if user is None:
            return {"api_key": self.token}
        return {"api_key": self.accounts.tokens.create(user.id, "t").token}
