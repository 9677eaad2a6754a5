"""A real HTTP server speaking the OpenAI chat-completions and models endpoints.

Test double standing in for vLLM's OpenAI-compatible server: it runs uvicorn on an
ephemeral 127.0.0.1 port in a background thread, records every request body, and
answers with whatever the test configured (text, usage, finish reason, or an HTTP
error status). Nothing is mocked on the client side: the real ``openai`` SDK talks
HTTP to it.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


@dataclass
class Reply:
    """What the next chat completion answers."""

    content: str | None = "A fake description."
    prompt_tokens: int = 123
    completion_tokens: int = 7
    finish_reason: str = "stop"
    status: int = 200
    error_message: str = "fake error"
    headers: dict[str, str] = field(default_factory=dict)


class FakeOpenAIServer:
    """``with FakeOpenAIServer(models=[...]) as server: server.base_url ...``."""

    def __init__(self, models: tuple[str, ...] = ("fake-model",)) -> None:
        self.models = list(models)
        self.reply = Reply()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        config = uvicorn.Config(self._app(), log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        async def models() -> dict[str, Any]:
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models
            ]
            return {"object": "list", "data": data}

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> JSONResponse:
            body = await request.json()
            self.requests.append(body)
            self.headers.append(dict(request.headers))
            reply = self.reply
            if reply.status != 200:
                error = {"message": reply.error_message, "type": "error", "code": reply.status}
                return JSONResponse(
                    {"error": error}, status_code=reply.status, headers=reply.headers
                )
            return JSONResponse(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body.get("model"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply.content},
                            "finish_reason": reply.finish_reason,
                        }
                    ],
                    "usage": {
                        "prompt_tokens": reply.prompt_tokens,
                        "completion_tokens": reply.completion_tokens,
                        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
                    },
                }
            )

        return app

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
