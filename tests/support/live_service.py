"""The real HTTP app (``create_app``) served by uvicorn on a loopback port, in a thread.

For attacks that only show on a real server: slow request bodies, forged
``X-Forwarded-For`` headers (uvicorn rewrites the client address from them for
loopback peers, as it does inside Ray's proxy), raw sockets.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from serve_app.accounts.context import AccountsContext, open_accounts
from serve_app.accounts.users import create_user
from serve_app.config import Settings
from serve_app.engines.factory import build_engine
from serve_app.http.app import create_app
from serve_app.pipeline.describe import DescribePipeline
from tests.api.conftest import unreachable_profile
from tests.conftest import free_port


@dataclass(frozen=True)
class LiveService:
    port: int
    accounts: AccountsContext
    #: An API token of a user with 1000 credits.
    token: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def raw_request(self, head: str, body: bytes = b"") -> socket.socket:
        """A connected socket that has sent ``head`` (CRLF added) and ``body``."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=8)
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        return sock


def read_status(sock: socket.socket) -> int | None:
    """The status code of the response on ``sock`` (None: closed or timed out first)."""
    try:
        data = sock.recv(4096)
    except OSError:
        return None
    if not data.startswith(b"HTTP/1.1 "):
        return None
    return int(data.split(b" ", 2)[1])


@contextmanager
def live_service(settings: Settings) -> Iterator[LiveService]:
    """``create_app`` over a pipeline whose only model is unreachable, on uvicorn."""
    down = unreachable_profile(free_port())
    engine = build_engine(down, settings.data_dir)
    asyncio.run(engine.start())
    pipeline = DescribePipeline.in_process(
        {down.name: (down, engine)}, default_model=down.name, limits=settings.media
    )
    accounts = open_accounts(settings)
    user = create_user(accounts.database, accounts.passwords, "alice", "alice-pass")
    accounts.credits.grant(user.id, 1000)
    token = accounts.tokens.create(user.id, "tests").token
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        create_app(pipeline, settings, accounts), log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield LiveService(port, accounts, token)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        accounts.close()
