"""FrameExtractor: decode, sample and resize media on CPU replicas."""

from __future__ import annotations

import asyncio
import logging

from serve_app.deployments.request_context import current_request_id
from serve_app.engines.profile import ModelProfile
from serve_app.media.extract import MediaInfo
from serve_app.media.frames import FrameBatch
from serve_app.media.limits import MediaLimits
from serve_app.media.sampling import SamplingSpec
from serve_app.observability import metrics
from serve_app.observability.logging import bind_request_id, configure_logging
from serve_app.pipeline.protocol import ChatMedia, MediaRef
from serve_app.pipeline.steps import extract, extract_chat_media

logger = logging.getLogger(__name__)
DEPLOYMENT = "FrameExtractor"


class FrameExtractor:
    def __init__(self, limits: MediaLimits, log_json: bool = False) -> None:
        self._limits = limits
        configure_logging(json=log_json)

    async def extract(
        self,
        media: MediaRef,
        spec: SamplingSpec,
        profile: ModelProfile,
        request_id: str = "",
        known: MediaInfo | None = None,
    ) -> FrameBatch:
        """Frames of ``media`` within ``profile``'s pixel budget (numpy, via the object store).

        ``known``: the ingress's probe of ``media``, which is then decoded, not re-probed.
        """
        with (
            bind_request_id(current_request_id(request_id)),
            metrics.track_in_flight(DEPLOYMENT),
        ):
            batch = await asyncio.to_thread(extract, media, spec, profile, self._limits, known)
            metrics.record_frames_decoded(batch.kind.value, batch.num_frames)
            logger.debug(
                "extracted %d %s frames of %dx%d",
                batch.num_frames,
                batch.kind.value,
                batch.width,
                batch.height,
            )
        return batch

    async def extract_chat_media(
        self, item: ChatMedia, profile: ModelProfile, request_id: str = ""
    ) -> FrameBatch:
        """One image or video of a chat request (a file or a list of frames)."""
        with (
            bind_request_id(current_request_id(request_id)),
            metrics.track_in_flight(DEPLOYMENT),
        ):
            batch = await asyncio.to_thread(extract_chat_media, item, profile, self._limits)
            metrics.record_frames_decoded(batch.kind.value, batch.num_frames)
        return batch
