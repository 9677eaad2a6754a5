"""The operations workers run: analyses, chunked uploads, stories, jobs, stats polls.

Paid operations (analyses, stories, jobs) are made by the paying user, or with
``drained_share`` by the user whose credits run out. Some carry an
``Idempotency-Key``; of those some are repeated after they succeeded (the repeat must
be a replay of the same body, and free) or sent twice at once (at most one of the two
may be a fresh success; the other is a replay or a 409).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from scripts.loadtest.client import Answer, Client, is_loopback_url
from scripts.loadtest.config import LoadConfig
from scripts.loadtest.jobs import JobTracker
from scripts.loadtest.ledger import Account, Book
from scripts.loadtest.media import MediaSet
from scripts.loadtest.stats import NO_ANSWER

PROMPTS = (None, "Describe this image.", "What is in the picture?", "List the colours you see.")
VIDEO_PROMPTS = (None, "What happens in this clip?", "Describe the motion.")
STORY_PROMPTS = (None, "A bedtime story for a five-year-old.", "A very short fable.")
INFER_FPS = (1, 2, 5)
DETECTORS = (
    {"model_id": "face-detection", "model_version": "1", "inference_type": "object-detection"},
    {"model_id": "people-detection", "model_version": "1", "inference_params": {"confidence": 0.5}},
)
CAPTIONER = {
    "model_id": "frame-captioner",
    "inference_type": "vlm",
    "inference_params": {"prompt": "One sentence, please."},
}

Send = Callable[[dict[str, str]], Awaitable[Answer]]
Price = Callable[[Answer], int]


@dataclass(frozen=True)
class Accounts:
    """The users of a run (``drained`` and ``admin`` are optional)."""

    payer: Account
    drained: Account | None = None
    admin: Account | None = None

    def all(self) -> list[Account]:
        return [a for a in (self.payer, self.drained, self.admin) if a is not None]


class Traffic:
    """Runs one operation of a given kind; shared by all workers of a run."""

    def __init__(
        self,
        client: Client,
        media: MediaSet,
        accounts: Accounts,
        config: LoadConfig,
        book: Book,
        jobs: JobTracker,
        rng: random.Random,
        story_cost: int,
    ) -> None:
        self.client = client
        self.media = media
        self.accounts = accounts
        self.config = config
        self.book = book
        self.jobs = jobs
        self.rng = rng
        self.story_cost = story_cost
        self._operations: dict[str, Callable[[], Awaitable[None]]] = {
            "analyze_image": self.analyze_image,
            "analyze_video": self.analyze_video,
            "analyze_chunked": self.analyze_chunked,
            "story": self.story,
            "job": self.job,
            "stats": self.stats,
            "me": self.me,
        }

    def available(self, operation: str) -> bool:
        """False for ``job`` while too many jobs are unfinished."""
        return operation != "job" or len(self.jobs.pending) < self.config.max_pending_jobs

    async def run(self, operation: str) -> None:
        await self._operations[operation]()

    # -- analyses and stories ---------------------------------------------------------

    async def analyze_image(self) -> None:
        account = self._paying()
        image = self.rng.choice(self.media.images)
        data = _form(prompt=self.rng.choice(PROMPTS))

        async def send(headers: dict[str, str]) -> Answer:
            return await self.client.call(
                "analyze:image", "POST", "api/analyze", token=account.token, headers=headers,
                files={"file": image.part()}, data=data,
            )  # fmt: skip

        await self._paid(account, send, _tokens_used)

    async def analyze_video(self) -> None:
        account = self._paying()
        data = _form(prompt=self.rng.choice(VIDEO_PROMPTS), interval=self.rng.choice((5, 10, 15)))

        async def send(headers: dict[str, str]) -> Answer:
            return await self.client.call(
                "analyze:video", "POST", "api/analyze", token=account.token, headers=headers,
                files={"file": self.media.video.part()}, data=data,
            )  # fmt: skip

        await self._paid(account, send, _tokens_used)

    async def analyze_chunked(self) -> None:
        """A video in 2-4 chunks (sometimes out of order); the last one runs the analysis."""
        account = self._paying()
        video = self.media.video
        total = self.rng.choice((2, 3, 4))
        size = -(-len(video.data) // total)
        parts = [video.data[i * size : (i + 1) * size] for i in range(total)]
        order = list(range(total))
        if self.rng.random() < 0.3:
            self.rng.shuffle(order)
        upload_id = f"lt-{uuid.uuid4().hex[:20]}"
        prompt = self.rng.choice(VIDEO_PROMPTS)

        async def send_chunk(number: int, kind: str) -> Answer:
            data = _form(
                upload_id=upload_id, chunk_number=number, total_chunks=total,
                filename=video.name, prompt=prompt,
                chunk_sha256=hashlib.sha256(parts[number]).hexdigest()
                if self.rng.random() < 0.5 else None,
            )  # fmt: skip
            files = {"file": ("blob", parts[number], "application/octet-stream")}
            return await self.client.call(
                kind, "POST", "api/analyze", token=account.token, files=files, data=data
            )

        try:
            for position, number in enumerate(order):
                last = position == total - 1
                answer = await send_chunk(
                    number, "analyze:chunk-final" if last else "analyze:chunk"
                )
                if not answer.ok:
                    if last and answer.status == NO_ANSWER:
                        self.book.lost(account.username)
                    return
                if not last and answer.field("complete") is not False:
                    self.client.recorder.anomaly(f"chunk {number} of {upload_id}: {answer.body}")
            if not answer.replayed:
                self.book.charge(account.username, _tokens_used(answer))
            if self.rng.random() < self.config.repeat_share:
                again = await send_chunk(self.rng.randrange(total), "analyze:chunk-repeat")
                self._check_replay(f"re-sent chunk of {upload_id}", answer, again)
        except asyncio.CancelledError:
            self.book.lost(account.username)
            raise

    async def story(self) -> None:
        account = self._paying()
        if self.rng.random() < 0.25:
            files = [("files", self.media.video.part())]
        else:
            count = self.rng.randint(1, 3)
            files = [("files", self.rng.choice(self.media.images).part()) for _ in range(count)]
        language = self.config.story_language if self.rng.random() < 0.8 else None
        data = _form(prompt=self.rng.choice(STORY_PROMPTS), language=language)
        expected = "thai" if (language or "th") == "th" else "translation"

        async def send(headers: dict[str, str]) -> Answer:
            answer = await self.client.call(
                "story", "POST", "analyze/", token=account.token, headers=headers,
                files=files, data=data,
            )  # fmt: skip
            if answer.ok and not (answer.field("english") and answer.field(expected)):
                self.client.recorder.anomaly(f"story without english/{expected}: {answer.body}")
            return answer

        cost = 0 if self.book.admin.get(account.username) else self.story_cost
        await self._paid(account, send, lambda _answer: cost)

    # -- batch jobs -------------------------------------------------------------------

    async def job(self) -> None:
        """Signed URL, upload, submit; sometimes cancel. The tracker polls the job."""
        account = self._paying()
        video = self.media.video
        signed = await self.client.call(
            "job:signed_url", "POST", "video_upload_signed_url/", token=account.token,
            json={"file_name": video.name},
        )  # fmt: skip
        url = signed.field("signed_url")
        if not signed.ok or not isinstance(url, str):
            return
        if not is_loopback_url(url):
            self.client.recorder.anomaly(f"upload URL is not on loopback: {url[:80]}")
            return
        put = await self.client.call("job:upload", "PUT", url, content=video.data)
        if not put.ok:
            return
        models: list[dict[str, Any]] = list(DETECTORS)
        if self.rng.random() < self.config.captioner_share:
            models.append(CAPTIONER)
        body = {"input_url": url, "infer_fps": self.rng.choice(INFER_FPS), "models": models}
        try:
            submitted = await self.client.call(
                "job:submit", "POST", "videoinfer/", params={"api_key": account.token}, json=body
            )
        except asyncio.CancelledError:
            self.book.lost(account.username)
            raise
        job_id = submitted.field("job_id")
        if submitted.status == NO_ANSWER:
            self.book.lost(account.username)
        if not submitted.ok or not isinstance(job_id, str):
            return
        self.jobs.add(job_id, account)
        if self.rng.random() < self.config.cancel_share:
            await self.client.call(
                "job:cancel", "DELETE", "videoinfer/", token=account.token,
                params={"job_id": job_id},
            )  # fmt: skip

    # -- polls ------------------------------------------------------------------------

    async def stats(self) -> None:
        account = self.accounts.admin or self.accounts.payer
        answer = await self.client.call("stats", "GET", "api/stats", token=account.token)
        if answer.ok and answer.field("status") not in ("Idle", "Busy"):
            self.client.recorder.anomaly(f"stats without Idle/Busy status: {answer.body}")

    async def me(self) -> None:
        answer = await self.client.call("me", "GET", "api/me", token=self.accounts.payer.token)
        if answer.ok and not isinstance(answer.field("balance"), int):
            self.client.recorder.anomaly(f"/api/me without a balance: {answer.body}")

    # -- shared -----------------------------------------------------------------------

    def _paying(self) -> Account:
        drained = self.accounts.drained
        if drained is not None and self.rng.random() < self.config.drained_share:
            return drained
        return self.accounts.payer

    async def _paid(self, account: Account, send: Send, price: Price) -> None:
        """Send a paid request (maybe keyed, repeated or doubled) and book its charge."""
        key = f"lt-{uuid.uuid4().hex}" if self.rng.random() < self.config.keyed_share else None
        headers = {"Idempotency-Key": key} if key else {}
        together = key is not None and self.rng.random() < self.config.concurrent_repeat_share
        try:
            if together:
                answers = list(await asyncio.gather(send(headers), send(headers)))
            else:
                answers = [await send(headers)]
            if answers[0].status == NO_ANSWER and key is not None and not together:
                # Ask again with the same key: a replay means the lost attempt was charged.
                answers.append(await send(headers))
                if answers[-1].ok and answers[-1].replayed:
                    self.book.charge(account.username, price(answers[-1]))
        except asyncio.CancelledError:
            self.book.lost(account.username)
            raise
        fresh = [a for a in answers if a.ok and not a.replayed]
        for answer in fresh:
            self.book.charge(account.username, price(answer))
        if answers[0].status == NO_ANSWER and not answers[-1].ok:
            self.book.lost(account.username)
        if together:
            self._check_pair(key, answers)
        elif key is not None and fresh and self.rng.random() < self.config.repeat_share:
            self._check_replay(f"repeat of key {key}", fresh[0], await send(headers))

    def _check_pair(self, key: str | None, answers: list[Answer]) -> None:
        fresh = [a for a in answers if a.ok and not a.replayed]
        if len(fresh) > 1:
            self.client.recorder.anomaly(f"key {key} sent twice at once: two fresh successes")
        # The twin of a success is 409 (its key is in flight) or 429: the per-user cap
        # on requests in flight refuses before the key is looked at; nothing ran.
        if fresh and any(not a.ok and a.status not in (409, 429) for a in answers):
            statuses = [a.status for a in answers]
            self.client.recorder.anomaly(f"key {key} sent twice at once: statuses {statuses}")

    def _check_replay(self, what: str, first: Answer, again: Answer) -> None:
        if again.status == NO_ANSWER:
            return
        if not (again.ok and again.replayed and again.body == first.body):
            self.client.recorder.anomaly(
                f"{what}: expected a replay of the first response, got {again.status} "
                f"(replayed={again.replayed}) {str(again.body)[:120]}"
            )


def _tokens_used(answer: Answer) -> int:
    return int(answer.field("tokens_used", 0) or 0)


def _form(**fields: Any) -> dict[str, str]:
    """Multipart form fields, leaving out the ``None`` ones."""
    return {name: str(value) for name, value in fields.items() if value is not None}
