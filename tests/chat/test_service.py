"""The ``/v1`` use case in process: streaming, aborts and credits, over a scripted engine."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from serve_app.accounts.context import open_accounts
from serve_app.accounts.users import find_user
from serve_app.chat.protocol import ChatCompletionRequest
from serve_app.chat.service import ChatCompletions
from serve_app.config import Settings
from serve_app.engines.base import (
    DeltaStream,
    Engine,
    GenerationDelta,
    GenerationRequest,
    GenerationResult,
)
from serve_app.engines.profile import ModelProfile
from serve_app.errors import GenerationFailed, InsufficientCredits
from serve_app.pipeline.describe import DescribePipeline
from tests.support.uploads import new_user


class ScriptedEngine(Engine):
    """Streams ``pieces`` one per tick; may fail after ``fail_after`` pieces."""

    def __init__(self, pieces: int = 50, fail_after: int | None = None) -> None:
        self.pieces = pieces
        self.fail_after = fail_after
        self.sent = 0
        self.closed_early = False
        self.aborted = 0
        self.requests: list[GenerationRequest] = []

    async def start(self) -> None: ...

    async def check_health(self) -> None: ...

    async def shutdown(self) -> None: ...

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        self.requests.append(request)
        return GenerationResult("whole", 7, 1)

    async def generate_stream(self, request: GenerationRequest) -> DeltaStream:
        self.requests.append(request)
        done = False
        try:
            for i in range(self.pieces):
                if self.fail_after is not None and i == self.fail_after:
                    raise GenerationFailed("the model broke")
                await asyncio.sleep(0.01)
                self.sent += 1
                yield GenerationDelta(text=f"t{i} ")
            done = True
        finally:
            self.closed_early = not done
            self.aborted += not done
        yield GenerationDelta(text="", finish_reason="length", input_tokens=7, output_tokens=50)


def service(
    engine: Engine, tmp_path: Path, credits: int = 10
) -> tuple[ChatCompletions, object, int]:
    settings = Settings(data_dir=tmp_path / "data")
    profile = ModelProfile(name="scripted", backend="transformers", model="none")
    pipeline = DescribePipeline.in_process(
        {"scripted": (profile, engine)}, "scripted", settings.media
    )
    accounts = open_accounts(settings)
    _, user_id = new_user(accounts, "payer", credits=credits)
    return ChatCompletions(pipeline, accounts, settings.chat_config), accounts, user_id


def request(**fields) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "scripted", "messages": [{"role": "user", "content": "Hi"}], **fields}
    )


async def test_leaving_a_stream_aborts_the_generation_and_refunds(tmp_path: Path) -> None:
    engine = ScriptedEngine()
    chat, accounts, _ = service(engine, tmp_path)
    user = find_user(accounts.database, "payer")
    events = chat.stream(user, request(stream=True))
    first = await anext(events)
    assert '"role":"assistant"' in first
    assert "t0" in await anext(events)
    await events.aclose()  # what Starlette does when the client goes away
    assert engine.closed_early and engine.sent < 5
    assert find_user(accounts.database, "payer").balance == 10  # released
    accounts.close()


async def test_leaving_an_n_stream_aborts_every_choice_and_refunds(tmp_path: Path) -> None:
    engine = ScriptedEngine()
    chat, accounts, _ = service(engine, tmp_path, credits=20)
    user = find_user(accounts.database, "payer")
    events = chat.stream(user, request(stream=True, n=2))
    first = await anext(events)
    assert '"index":0' in first and '"index":1' in first
    pieces = [await anext(events) for _ in range(4)]
    assert any('"index":0' in p for p in pieces) and any('"index":1' in p for p in pieces)
    await events.aclose()
    assert engine.aborted == 2 and engine.sent < 10
    assert find_user(accounts.database, "payer").balance == 20  # released
    accounts.close()


async def test_a_whole_stream_is_charged_once(tmp_path: Path) -> None:
    engine = ScriptedEngine(pieces=3)
    chat, accounts, _ = service(engine, tmp_path)
    user = find_user(accounts.database, "payer")
    events = [
        e
        async for e in chat.stream(
            user, request(stream=True, stream_options={"include_usage": True})
        )
    ]
    assert events[-1] == "data: [DONE]\n\n"
    assert '"completion_tokens":50' in events[-2]
    assert find_user(accounts.database, "payer").balance == 0
    with pytest.raises(InsufficientCredits):
        await anext(chat.stream(user, request(stream=True)))
    accounts.close()


async def test_failure_mid_stream_is_an_error_event_and_refunds(tmp_path: Path) -> None:
    engine = ScriptedEngine(fail_after=2)
    chat, accounts, _ = service(engine, tmp_path)
    user = find_user(accounts.database, "payer")
    events = [e async for e in chat.stream(user, request(stream=True))]
    assert '"error"' in events[-1] and "the model broke" in events[-1]
    assert find_user(accounts.database, "payer").balance == 10
    accounts.close()


async def test_conversation_reaches_the_engine(tmp_path: Path) -> None:
    engine = ScriptedEngine()
    chat, accounts, _ = service(engine, tmp_path)
    user = find_user(accounts.database, "payer")
    body = request(
        messages=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": [{"type": "text", "text": "Again"}]},
        ],
        max_tokens=100_000,
        stop="END",
        seed=4,
    )
    reply = await chat.complete(user, body)
    assert reply.body["choices"][0]["message"]["content"] == "whole"
    [sent] = engine.requests
    assert [t.role for t in sent.conversation] == ["system", "user", "assistant", "user"]
    assert sent.sampling.max_tokens == 256  # capped at the profile's max_new_tokens
    assert (sent.sampling.stop, sent.sampling.seed) == (("END",), 4)
    accounts.close()
