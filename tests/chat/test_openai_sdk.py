"""``/v1`` in process, through the real ``openai`` SDK (sync over TestClient, async over ASGI)."""

from __future__ import annotations

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from serve_app.accounts.users import find_user
from serve_app.http.web.api_reference import build_reference
from tests.chat.conftest import STORY_MODEL, ChatApp
from tests.support.openai_streams import choices_of
from tests.support.uploads import reservations

MODEL = "tiny-qwen2.5-vl"


def sync_client(chat_app: ChatApp, token: str | None = None) -> openai.OpenAI:
    http = TestClient(chat_app.app)  # an httpx.Client running the app in process
    return openai.OpenAI(
        base_url="http://testserver/v1",
        api_key=token or chat_app.admin,
        http_client=http,
        max_retries=0,
    )


def image_message(url: str, text: str = "What is this?") -> dict:
    return {
        "role": "user",
        "content": [
            {"type": "image_url", "image_url": {"url": url}},
            {"type": "text", "text": text},
        ],
    }


def video_message(url: str, text: str = "What happens?") -> dict:
    return {
        "role": "user",
        "content": [
            {"type": "video_url", "video_url": {"url": url}},
            {"type": "text", "text": text},
        ],
    }


def test_models_are_listed(chat_app: ChatApp) -> None:
    models = sync_client(chat_app).models.list()
    assert [(m.id, m.model_extra["modalities"]) for m in models.data] == [
        (MODEL, ["text", "image", "video"]),
        (STORY_MODEL, ["text"]),
    ]


def test_story_model_answers_text(chat_app: ChatApp) -> None:
    messages = [
        {"role": "system", "content": "You write stories."},
        {"role": "user", "content": "A story about a cat."},
    ]
    completion = sync_client(chat_app).chat.completions.create(
        model=STORY_MODEL, messages=messages, max_tokens=4, n=2
    )
    assert completion.model == STORY_MODEL
    assert [c.index for c in completion.choices] == [0, 1]
    assert completion.choices[0].message.content
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    stream = sync_client(chat_app).chat.completions.create(
        model=STORY_MODEL, messages=messages, max_tokens=4, stream=True
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].choices[0].finish_reason


def test_story_model_refuses_media_naming_the_part(chat_app: ChatApp, media) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        sync_client(chat_app, token=chat_app.user).chat.completions.create(
            model=STORY_MODEL,
            messages=[{"role": "user", "content": "Hi"}, image_message(media["jpeg"])],
        )
    assert raised.value.body["param"] == "messages[1].content[0]"
    assert "text-only" in raised.value.message
    assert reservations(chat_app.accounts, chat_app.user_id) == 0


def test_one_image(chat_app: ChatApp, media) -> None:
    completion = sync_client(chat_app).chat.completions.create(
        model=MODEL, messages=[image_message(media["jpeg"])], max_tokens=8
    )
    assert completion.object == "chat.completion"
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    usage = completion.usage
    assert usage.prompt_tokens > 20 and 0 < usage.completion_tokens <= 8
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_several_images_system_prompt_and_history(chat_app: ChatApp, media) -> None:
    messages = [
        {"role": "system", "content": "Answer briefly."},
        image_message(media["jpeg"], "First picture?"),
        {"role": "assistant", "content": "A red square."},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": media["png"]}},
                {"type": "image_url", "image_url": {"url": media["jpeg"]}},
                {"type": "text", "text": "And these two?"},
            ],
        },
    ]
    one = sync_client(chat_app).chat.completions.create(
        model=MODEL, messages=[image_message(media["jpeg"])], max_tokens=4
    )
    many = sync_client(chat_app).chat.completions.create(
        model=MODEL, messages=messages, max_tokens=4
    )
    assert many.usage.prompt_tokens > 2 * one.usage.prompt_tokens  # three images' tokens


def test_video_data_url_reports_what_was_sampled(chat_app: ChatApp, media) -> None:
    completion = sync_client(chat_app).chat.completions.create(
        model=MODEL,
        messages=[video_message(media["video"])],
        max_tokens=6,
        extra_body={"media_io_kwargs": {"video": {"fps": 1000, "num_frames": 4}}},
    )
    [sampled] = completion.model_extra["sampled_media"]
    # fps clamped to chat.max_fps (8), 4 frames asked for: 2 s at 30 fps.
    assert len(sampled["frame_indices"]) == 4
    assert sampled["source_fps"] == 30.0
    assert sampled["timestamps"][0] == 0.0 and sampled["timestamps"][-1] <= 2.0


def test_video_as_a_list_of_frames(chat_app: ChatApp, media) -> None:
    completion = sync_client(chat_app).chat.completions.create(
        model=MODEL,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "video", "video": [media["jpeg"]] * 3, "fps": 1},
                    {"type": "text", "text": "What happens?"},
                ],
            }
        ],
        max_tokens=4,
    )
    [sampled] = completion.model_extra["sampled_media"]
    assert sampled["frame_indices"] == [0, 1, 2, 2]  # padded to an even count
    assert sampled["timestamps"] == [0.0, 1.0, 2.0, 2.0]


def test_streaming_ends_with_usage_and_done(chat_app: ChatApp, media) -> None:
    client = sync_client(chat_app)
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[image_message(media["jpeg"])],
        max_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish in (["length"], ["stop"])
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens <= 6
    whole = client.chat.completions.create(
        model=MODEL, messages=[image_message(media["jpeg"])], max_tokens=6, temperature=0
    )
    streamed = client.chat.completions.create(
        model=MODEL,
        messages=[image_message(media["jpeg"])],
        max_tokens=6,
        temperature=0,
        stream=True,
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == (
        whole.choices[0].message.content
    )
    assert text


def test_n_choices_stream_indexed_and_charged_per_choice(chat_app: ChatApp, media) -> None:
    client = sync_client(chat_app, token=chat_app.user)
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[image_message(media["jpeg"])],
        max_tokens=4,
        n=2,
        seed=3,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert [(c.index, c.delta.role) for c in chunks[0].choices] == [
        (0, "assistant"),
        (1, "assistant"),
    ]
    texts, finished = choices_of(chunks)
    assert sorted(finished) == [0, 1] and sorted(texts) == [0, 1] and all(texts.values())
    assert 0 < chunks[-1].usage.completion_tokens <= 8
    assert find_user(chat_app.accounts.database, "payer").balance == 5  # 25 - 2 x 10


def test_streamed_video_reports_sampling_in_the_first_chunk(chat_app: ChatApp, media) -> None:
    stream = sync_client(chat_app).chat.completions.create(
        model=MODEL,
        messages=[video_message(media["video"])],
        max_tokens=3,
        stream=True,
        extra_body={"media_io_kwargs": {"video": {"num_frames": 4}}},
    )
    first, *_ = list(stream)
    [sampled] = first.model_extra["sampled_media"]
    assert len(sampled["frame_indices"]) == 4


def test_raw_stream_is_server_sent_events(chat_app: ChatApp, media) -> None:
    with TestClient(chat_app.app) as http:
        response = http.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {chat_app.admin}"},
            json={
                "model": MODEL,
                "messages": [image_message(media["jpeg"])],
                "max_tokens": 3,
                "stream": True,
            },
        )
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line for line in response.text.split("\n\n") if line]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"


async def test_async_client(chat_app: ChatApp, media) -> None:
    transport = httpx.ASGITransport(app=chat_app.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        client = openai.AsyncOpenAI(
            base_url="http://test/v1", api_key=chat_app.admin, http_client=http, max_retries=0
        )
        completion = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hello"}], max_tokens=4, seed=3
        )
        assert completion.choices[0].message.content
        stream = await client.chat.completions.create(
            model=MODEL, messages=[image_message(media["png"])], max_tokens=4, stream=True
        )
        chunks = [chunk async for chunk in stream]
        assert chunks[-1].choices[0].finish_reason


def test_n_choices(chat_app: ChatApp, media) -> None:
    completion = sync_client(chat_app).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4, n=2, seed=1
    )
    assert [c.index for c in completion.choices] == [0, 1]


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"logprobs": True}, "logprobs"),
        ({"n": 5}, "n"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"temperature": 7}, "temperature"),
    ],
)
def test_unsupported_parameters_are_named(chat_app: ChatApp, kwargs, param) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        sync_client(chat_app).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}], **kwargs
        )
    assert raised.value.status_code == 400
    assert raised.value.body["param"] == param
    assert raised.value.body["type"] == "invalid_request_error"


def test_errors_come_in_openai_shape(chat_app: ChatApp, media) -> None:
    client = sync_client(chat_app)
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert missing.value.body["code"] == "model_not_found"
    with pytest.raises(openai.AuthenticationError):
        sync_client(chat_app, token="sa_wrong").models.list()
    with pytest.raises(openai.BadRequestError) as bad_url:
        client.chat.completions.create(model=MODEL, messages=[image_message("ftp://x/y.jpg")])
    assert bad_url.value.body["param"] == "messages[0].content[0].image_url"
    with pytest.raises(openai.BadRequestError) as private:
        client.chat.completions.create(
            model=MODEL, messages=[image_message("http://127.0.0.1:9/a.jpg")]
        )
    assert "private" in private.value.message or "loopback" in private.value.message
    with pytest.raises(openai.BadRequestError) as wrong_kind:
        client.chat.completions.create(model=MODEL, messages=[image_message(media["video"])])
    assert "video, not image" in wrong_kind.value.message


def test_credits_are_charged_and_refused(chat_app: ChatApp, media) -> None:
    client = sync_client(chat_app, token=chat_app.user)
    first = client.chat.completions.create(
        model=MODEL, messages=[image_message(media["jpeg"])], max_tokens=3
    )
    assert first.model_extra["billing"] == {"credits_charged": 10, "credits_remaining": 15}
    client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "x"}], max_tokens=3
    )
    with pytest.raises(openai.APIStatusError) as broke:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}], max_tokens=3
        )
    assert broke.value.status_code == 402
    assert broke.value.body["code"] == "insufficient_quota"


def test_idempotency_key_replays_without_charging(chat_app: ChatApp, media) -> None:
    client = sync_client(chat_app, token=chat_app.user)
    headers = {"Idempotency-Key": "chat-1"}
    kwargs = {"model": MODEL, "messages": [image_message(media["jpeg"])], "max_tokens": 3}
    first = client.chat.completions.with_raw_response.create(**kwargs, extra_headers=headers)
    again = client.chat.completions.with_raw_response.create(**kwargs, extra_headers=headers)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert reservations(chat_app.accounts, chat_app.user_id) == 1
    with pytest.raises(openai.UnprocessableEntityError):  # same key, another request
        client.chat.completions.create(**kwargs, extra_headers=headers, stream=True)


def test_api_reference_shows_v1_with_the_sdk_and_curl(chat_app: ChatApp) -> None:
    sections = build_reference(chat_app.app.openapi(), "http://host:8000")
    [openai_section] = [s for s in sections if s.title == "Openai"]
    endpoints = {e.path: e for e in openai_section.endpoints}
    chat = endpoints["/v1/chat/completions"]
    assert chat.python is not None and 'OpenAI(base_url="http://host:8000/v1"' in chat.python
    assert "stream=True" in chat.python and "media_io_kwargs" in chat.python
    assert chat.curl.startswith('curl -H "Authorization: Bearer $TOKEN"')
    assert "image_url" in chat.curl and "$MODEL" in chat.curl
    assert endpoints["/v1/models"].python is not None
