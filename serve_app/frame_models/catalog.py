"""The per-frame model catalog of video jobs: ``configs/detectors.yaml``.

Each entry maps a public ``model_id`` / ``model_version`` to an implementation and its
options. Loading validates every entry's options, so a bad file fails at startup,
not in the middle of a job. Nothing here imports OpenCV; the ingress uses the catalog
to check job requests, the ``Detector`` deployment to build the models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from serve_app.errors import InvalidRequest, UnknownModel
from serve_app.frame_models.spec import MODEL_ID_PATTERN, InferenceType, ModelSpec

Implementation = Literal["opencv-haar", "opencv-hog", "onnx", "vlm"]


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DetectionOptions(_Options):
    #: Label of every box (single-class detectors).
    class_name: str = "object"
    class_id: int = 0
    #: Boxes below this confidence are dropped (a request may raise it).
    confidence: float = Field(default=0.0, ge=0, le=1)
    #: Detect on a copy scaled down to this longest side (0: full size); boxes are
    #: reported in the original frame's pixels either way.
    max_side: int = Field(default=0, ge=0)
    max_detections: int = Field(default=100, ge=1, le=10_000)


class HaarOptions(DetectionOptions):
    #: A file in OpenCV's ``cv2.data.haarcascades``, or an absolute path.
    cascade: str = "haarcascade_frontalface_default.xml"
    scale_factor: float = Field(default=1.1, gt=1, le=2)
    min_neighbors: int = Field(default=5, ge=0, le=50)
    min_size: int = Field(default=30, ge=1)
    equalize: bool = False


class HogOptions(DetectionOptions):
    win_stride: int = Field(default=8, ge=1, le=64)
    padding: int = Field(default=8, ge=0, le=64)
    scale: float = Field(default=1.05, gt=1, le=2)


class OnnxOptions(DetectionOptions):
    #: The model file; relative paths are relative to the catalog file.
    path: Path
    #: Network input ``[width, height]``; frames are resized to it.
    input_size: tuple[int, int] = (640, 640)
    #: ``boxes``: rows ``[x1, y1, x2, y2, score, class]``; ``yolov8``: ``(1, 4 + C, N)``
    #: with centre/size boxes and per-class scores (Ultralytics' export).
    output_format: Literal["boxes", "yolov8"] = "boxes"
    #: ``boxes`` only: coordinates in 0..1 of the frame (else input-size pixels).
    normalized: bool = True
    #: Pixel scale before the mean is subtracted (1/255 maps to 0..1).
    pixel_scale: float = Field(default=1 / 255, gt=0)
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    #: The network wants BGR input (frames are RGB).
    bgr: bool = False
    class_names: list[str] = Field(default_factory=list)
    nms_iou: float = Field(default=0.45, gt=0, le=1)


class VlmOptions(_Options):
    #: Model profile name of the captioner; ``None``: the service's default model.
    model: str | None = None
    prompt: str = Field(default="Describe this frame in one sentence.", max_length=4000)
    max_tokens: int = Field(default=64, ge=1, le=4096)


OPTIONS: dict[str, type[_Options]] = {
    "opencv-haar": HaarOptions,
    "opencv-hog": HogOptions,
    "onnx": OnnxOptions,
    "vlm": VlmOptions,
}


class DetectParams(_Options):
    """What a request may set in ``inference_params`` of a detector."""

    confidence: float | None = Field(default=None, ge=0, le=1)
    max_detections: int | None = Field(default=None, ge=1, le=10_000)


class VlmParams(_Options):
    """What a request may set in ``inference_params`` of a ``vlm`` captioner."""

    prompt: str | None = Field(default=None, min_length=1, max_length=4000)
    max_tokens: int | None = Field(default=None, ge=1, le=4096)


class CatalogEntry(BaseModel):
    """One model of the catalog."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_id: str = Field(pattern=MODEL_ID_PATTERN)
    model_version: str = Field(default="1", max_length=50)
    implementation: Implementation
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _valid_options(self) -> CatalogEntry:
        OPTIONS[self.implementation].model_validate(self.options)
        return self

    @property
    def inference_type(self) -> InferenceType:
        return "vlm" if self.implementation == "vlm" else "object-detection"

    def parsed_options(self) -> Any:
        """The options as their implementation's model (``HaarOptions``, ...)."""
        return OPTIONS[self.implementation].model_validate(self.options)


class FrameModelCatalog(BaseModel):
    """Every model video jobs may name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: list[CatalogEntry] = Field(default_factory=list)
    #: Directory that relative ONNX paths are resolved against.
    base_dir: Path | None = None

    @model_validator(mode="after")
    def _unique(self) -> FrameModelCatalog:
        seen = [(m.model_id, m.model_version) for m in self.models]
        if len(set(seen)) != len(seen):
            raise ValueError("a model_id/model_version pair is listed twice")
        return self

    @classmethod
    def from_yaml(cls, path: str | Path) -> FrameModelCatalog:
        path = Path(path)
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: the detector catalog must be a YAML mapping")
        return cls.model_validate({"base_dir": str(path.resolve().parent), **data})

    def resolve(self, spec: ModelSpec) -> CatalogEntry:
        """The entry ``spec`` names, with its request parameters checked.

        Raises:
            UnknownModel: no such model_id/model_version, or the wrong inference_type.
            InvalidRequest: unsupported ``inference_params``.
        """
        versions = [m for m in self.models if m.model_id == spec.model_id]
        if not versions:
            known = ", ".join(sorted({m.model_id for m in self.models})) or "none"
            raise UnknownModel(f"unknown model_id {spec.model_id!r}; available: {known}")
        if spec.model_version is None:
            entry = max(versions, key=lambda m: _version_key(m.model_version))
        else:
            matches = [m for m in versions if m.model_version == spec.model_version]
            if not matches:
                known = ", ".join(m.model_version for m in versions)
                raise UnknownModel(
                    f"model {spec.model_id!r} has no version {spec.model_version!r}; "
                    f"available: {known}"
                )
            entry = matches[0]
        if entry.inference_type != spec.inference_type:
            raise UnknownModel(
                f"model {spec.model_id!r} is a {entry.inference_type} model, "
                f"not {spec.inference_type}"
            )
        params_model = VlmParams if entry.implementation == "vlm" else DetectParams
        try:
            params_model.model_validate(spec.inference_params)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise InvalidRequest(f"inference_params of {spec.model_id!r}: {problems}") from None
        return entry


def _version_key(version: str) -> tuple[int, int | str]:
    return (1, int(version)) if version.isdigit() else (0, version)
