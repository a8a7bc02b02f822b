"""The face engine's settings (FACE_*): models, runtime, caps on untrusted images, passes."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
)
from pydantic_settings import SettingsConfigDict

from libs.common.settings.base import CsvStrings, _Group


class FaceSettings(_Group):
    """Face engine knobs. Names without the FACE_ prefix are the seed's own."""

    model_config = SettingsConfigDict(env_prefix="FACE_")

    model_dir: Path | None = Field(
        default=None, description="An InsightFace-layout pack; unset = the packaged default."
    )
    similarity_threshold: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Overrides the pack's recommended threshold."
    )
    detection_threshold: float = Field(default=0.6, ge=0.0, le=1.0)
    min_face_size: int = Field(
        default=20, ge=1, description="Smallest face side kept, in the photo's own pixels."
    )
    embedding_dimension: int = Field(default=512, ge=1, validation_alias="EMBEDDING_DIMENSION")
    max_faces_per_photo: int = Field(default=100, ge=1, validation_alias="MAX_FACES_PER_PHOTO")
    providers: CsvStrings = Field(
        default_factory=lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"],
        description="onnxruntime execution providers in preference order; absent ones skipped.",
    )
    backend: Literal["auto", "onnxruntime", "openvino"] = Field(
        default="auto",
        description="Inference runtime: auto = OpenVINO where the CPU computes bf16 natively "
        "(and FACE_PROVIDERS names no available GPU provider), else onnxruntime.",
    )
    precision: Literal["auto", "f32", "bf16"] = Field(
        default="auto",
        description="OpenVINO precision: auto = bf16 where the CPU computes it natively.",
    )
    intra_op_threads: int = Field(default=1, ge=0, description="Threads per model session.")
    inference_workers: int = Field(
        default=0,
        ge=0,
        description="Photos analysed at once per process (each on FACE_INTRA_OP_THREADS "
        "threads); 0 = one per CPU core, or 1 on a GPU (one batch across photos).",
    )
    max_image_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(
        default=120_000_000,
        ge=10_000,
        description="Most pixels an upload's header may claim (a 102 MP medium-format JPEG fits).",
    )
    max_decoded_pixels: int = Field(
        default=60_000_000,
        ge=10_000,
        description="Most pixels actually decoded (the bomb guard): larger JPEGs decode reduced "
        "to the largest detector pass; other formats above it are refused.",
    )
    detection_size: int = Field(
        default=640,
        ge=64,
        description="Long side of the whole-photo detector pass; smaller photos are detected "
        "at their own size.",
    )
    selfie_detection_size: int = Field(
        default=480,
        ge=64,
        description="Long side of the detector pass on a selfie (and what a JPEG selfie is "
        "decoded down to: a 12 MP one at an eighth). 480 instead of 640: the same A3 over 20 "
        "EP-12 draws, a 12 MP phone selfie 33 -> 28 ms (docs/faces.md); 320 moves the "
        "embedding more (cosine 0.95-0.99 to 640's). Smaller selfies are detected at their "
        "own size.",
    )
    selfie_flip: bool = Field(
        default=False,
        description="Embed the selfie's aligned face and its mirror in one recogniser batch "
        "and search their fused (summed, L2-normalised) embedding; photos keep one embedding "
        "per face. Off: over 20 calibration draws its gain on top of query expansion was 1 "
        "pair in 1000 for one more recogniser pass per selfie (docs/faces.md).",
    )
    detail_min_side: int = Field(
        default=1600,
        ge=64,
        description="Photos with a longer side also get a tiled detail pass for small faces.",
    )
    detail_max_side: int = Field(
        default=2560,
        ge=0,
        description="Long side the detail pass scales the photo to: one detector pass over "
        "the whole photo, whose time and memory grow with its square (~270 MB at 2560); 0 "
        "turns the detail pass off.",
    )
    detail_min_decode_side: int = Field(
        default=1920,
        ge=64,
        description="A JPEG photo is decoded reduced (DCT scaling) while its long side stays >= "
        "this and >= FACE_DETECTION_SIZE; the detail pass then runs at most at the decoded "
        "size. 1920 decodes 12 MP at half size: 1.7x the photos/s at the same EP-12 accuracy "
        "(docs/faces.md); FACE_DETAIL_MAX_SIDE gives the sharpest detail pass.",
    )
    sharper_crop_below: int = Field(
        default=32,
        ge=0,
        description="A face whose short side is below this many pixels of the photo as "
        "decoded (reduced, for the detector) is aligned from the photo decoded at twice the "
        "size, decoded once per photo that has one: a 20 px face cannot be embedded (LFW-Crowd "
        "at 24 MP: 20% of the attendees identified instead of 95%, docs/faces.md); 0 never.",
    )
    min_sharpness: float = Field(
        default=10.0,
        ge=0.0,
        description="Quality gate: least variance of the Laplacian on the 112 px aligned "
        "face; below it a face is rejected as blurry.",
    )
    embedding_batch_size: int = Field(
        default=32, ge=1, description="Faces per recogniser call (chunks of a batch)."
    )

    @property
    def photo_decode_side(self) -> int:
        """The long side a photo keeps when decoded reduced: enough for the whole-photo pass,
        and for the detail pass up to FACE_DETAIL_MIN_DECODE_SIDE."""
        if self.detail_max_side <= 0:
            return self.detection_size
        return max(self.detection_size, min(self.detail_max_side, self.detail_min_decode_side))

    @property
    def decode_limits(self) -> dict[str, int]:
        """The caps every decode of untrusted bytes takes (decode_image, probe_image)."""
        return {
            "max_bytes": self.max_image_bytes,
            "max_pixels": self.max_image_pixels,
            "max_decoded_pixels": self.max_decoded_pixels,
        }
