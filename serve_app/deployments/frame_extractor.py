"""FrameExtractor: decode, sample and resize media on CPU replicas."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import tempfile
from pathlib import Path

from serve_app.deployments.media_transfer import Arrived, landed
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
from serve_app.storage.node_dir import node_data_dir

logger = logging.getLogger(__name__)
DEPLOYMENT = "FrameExtractor"


class FrameExtractor:
    """Frames from media files, on any node.

    Args:
        data_dir: shipped media files land in its ``spool`` while they are decoded
            (this node's, :func:`~serve_app.storage.node_dir.node_data_dir`); default:
            the system's temp dir.
    """

    def __init__(
        self,
        limits: MediaLimits,
        log_json: bool = False,
        data_dir: Path | None = None,
    ) -> None:
        self._limits = limits
        base = node_data_dir(data_dir) if data_dir is not None else Path(tempfile.gettempdir())
        self._spool = base / "spool"
        configure_logging(json=log_json)

    async def extract(
        self,
        media: MediaRef | Arrived,
        spec: SamplingSpec,
        profile: ModelProfile,
        request_id: str = "",
        known: MediaInfo | None = None,
    ) -> FrameBatch:
        """Frames of ``media`` within ``profile``'s pixel budget (numpy, via the object store).

        ``media``: bytes, or a file the ingress shipped (see
        :mod:`~serve_app.deployments.media_transfer`). ``known``: the ingress's probe of
        ``media``, which is then decoded, not re-probed.
        """
        with (
            bind_request_id(current_request_id(request_id)),
            metrics.track_in_flight(DEPLOYMENT),
        ):
            batch = await asyncio.to_thread(self._extract, media, spec, profile, known)
            metrics.record_frames_decoded(batch.kind.value, batch.num_frames)
            logger.debug(
                "extracted %d %s frames of %dx%d",
                batch.num_frames,
                batch.kind.value,
                batch.width,
                batch.height,
            )
        return batch

    def _extract(
        self,
        media: MediaRef | Arrived,
        spec: SamplingSpec,
        profile: ModelProfile,
        known: MediaInfo | None,
    ) -> FrameBatch:
        with landed(media, self._spool) as source:
            return extract(source, spec, profile, self._limits, known)

    async def extract_chat_media(
        self,
        item: ChatMedia,
        profile: ModelProfile,
        request_id: str = "",
        shipped: Arrived | None = None,
    ) -> FrameBatch:
        """One image or video of a chat request (a file or a list of frames).

        ``shipped``: the file of ``item``, when the ingress shipped it apart.
        """
        with (
            bind_request_id(current_request_id(request_id)),
            metrics.track_in_flight(DEPLOYMENT),
        ):
            batch = await asyncio.to_thread(self._extract_chat_media, item, profile, shipped)
            metrics.record_frames_decoded(batch.kind.value, batch.num_frames)
        return batch

    def _extract_chat_media(
        self, item: ChatMedia, profile: ModelProfile, shipped: Arrived | None
    ) -> FrameBatch:
        if shipped is None:
            return extract_chat_media(item, profile, self._limits)
        with landed(shipped, self._spool) as source:
            local = dataclasses.replace(item, source=source)
            return extract_chat_media(local, profile, self._limits)
