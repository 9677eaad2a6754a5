"""The results document of a job, and where it is stored.

Parallel lists of equal length: ``frame_offsets`` (true source frame indices),
``time_offsets`` (seconds, 4 decimals) and one list per ``model_id`` whose entries
are per-frame dicts, or ``null`` where that frame failed (or never decoded).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from serve_app.frame_models.results import FrameResult
from serve_app.media.stream import FramePlan


def result_key(job_id: str) -> str:
    """Blob key of a job's results: one per job, whatever the attempt."""
    return f"results/{job_id}.json"


class ResultsBuilder:
    """Collects per-batch outputs into the final document."""

    def __init__(self, plan: FramePlan, model_ids: Sequence[str]) -> None:
        self._plan = plan
        self._position = {index: i for i, index in enumerate(plan.frame_indices)}
        self._lists: dict[str, list[FrameResult]] = {m: [None] * plan.count for m in model_ids}

    def add(
        self, model_id: str, frame_indices: Sequence[int], entries: Sequence[FrameResult]
    ) -> None:
        if len(entries) != len(frame_indices):
            raise ValueError(
                f"model {model_id} returned {len(entries)} entries for {len(frame_indices)} frames"
            )
        column = self._lists[model_id]
        for index, entry in zip(frame_indices, entries, strict=True):
            column[self._position[index]] = entry

    def document(self) -> dict[str, Any]:
        return {
            "frame_offsets": list(self._plan.frame_indices),
            "time_offsets": [round(t, 4) for t in self._plan.timestamps],
            **self._lists,
        }

    def to_json(self) -> bytes:
        return json.dumps(self.document(), separators=(",", ":")).encode()
