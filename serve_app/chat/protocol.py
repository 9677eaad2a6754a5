"""The wire format of ``/v1``: OpenAI's chat completion shapes plus vLLM's extras.

Requests accept what the ``openai`` SDK sends (unknown top-level fields are ignored,
as OpenAI-compatible servers do); vLLM's ``media_io_kwargs`` and
``mm_processor_kwargs`` arrive through the SDK's ``extra_body``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ImageURL(_Lenient):
    url: str
    detail: str | None = None


class VideoURL(_Lenient):
    url: str


class TextPart(_Lenient):
    type: Literal["text"]
    text: str


class ImageURLPart(_Lenient):
    type: Literal["image_url"]
    image_url: ImageURL


class VideoURLPart(_Lenient):
    """A video file by URL (``data:video/mp4;base64,...`` or ``http(s)://``)."""

    type: Literal["video_url"]
    video_url: VideoURL


class VideoFramesPart(_Lenient):
    """A video given as its frames: image URLs taken ``fps`` apart (vLLM's list form)."""

    type: Literal["video"]
    video: list[str] = Field(min_length=1)
    fps: float | None = Field(default=None, gt=0)


ContentPart = Annotated[
    TextPart | ImageURLPart | VideoURLPart | VideoFramesPart, Field(discriminator="type")
]


class ChatMessage(_Lenient):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None
    name: str | None = None


class StreamOptions(_Lenient):
    include_usage: bool = False


class JsonSchema(_Lenient):
    name: str = "response"
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Lenient):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchema | None = None


class VideoIOKwargs(_Lenient):
    fps: float | None = Field(default=None, gt=0)
    num_frames: int | None = Field(default=None, ge=1)


class MediaIOKwargs(_Lenient):
    """vLLM's ``media_io_kwargs``: how to sample videos (clamped to the server's caps)."""

    video: VideoIOKwargs | None = None


class MMProcessorKwargs(_Lenient):
    """vLLM's ``mm_processor_kwargs``: sampling rate and pixel limits (clamped)."""

    fps: float | None = Field(default=None, gt=0)
    max_pixels: int | None = Field(default=None, ge=1)
    min_pixels: int | None = Field(default=None, ge=1)


class ChatCompletionRequest(_Lenient):
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int = Field(default=1, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    media_io_kwargs: MediaIOKwargs | None = None
    mm_processor_kwargs: MMProcessorKwargs | None = None
    #: Extension: ``"transcribe"`` fuses the video's speech into the conversation.
    audio: str | None = None

    def stop_strings(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


# -- responses ---------------------------------------------------------------------


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None


class SampledMedia(BaseModel):
    """What was taken from one video: source frame indices, times (s), effective fps."""

    frame_indices: list[int]
    timestamps: list[float]
    fps: float
    source_fps: float
    width: int
    height: int


class SpeechSegment(BaseModel):
    start_s: float
    end_s: float
    text: str


class SpeechTranscript(BaseModel):
    """The video's speech (``audio: "transcribe"``); ``skipped`` says why it was not used."""

    segments: list[SpeechSegment]
    skipped: str | None = None


class Billing(BaseModel):
    credits_charged: int
    credits_remaining: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    #: Extensions: what was sampled from each video, and what the request cost.
    sampled_media: list[SampledMedia] = Field(default_factory=list)
    billing: Billing | None = None
    #: Extension, only with ``audio: "transcribe"``: the video's speech.
    transcript: SpeechTranscript | None = None


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: str | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    sampled_media: list[SampledMedia] | None = None
    transcript: SpeechTranscript | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "serve_app"
    #: Extension: the inputs the model takes (``["text"]`` for a text-only model).
    modalities: list[Literal["text", "image", "video"]]


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorInfo(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorInfo
