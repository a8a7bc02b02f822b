"""The small copies of every photo the attendee page shows (RENDITION_*): a thumbnail for the
result grid and a preview for the full-screen view, made by the embedder from the pixels it
already decoded (libs/common/renditions.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from libs.common.settings.base import _Group

RenditionFormat = Literal["jpeg", "webp"]
WatermarkPosition = Literal["center", "top-left", "top-right", "bottom-left", "bottom-right"]


class RenditionSettings(_Group):
    model_config = SettingsConfigDict(env_prefix="RENDITION_")

    format: RenditionFormat = Field(
        default="jpeg",
        description="Encoding of thumbnails and previews: jpeg (~4% of a 12 MP photo's "
        "indexing CPU) or webp (previews ~40% smaller, +30-60% CPU per photo).",
    )
    thumbnail_side: int = Field(
        default=400, ge=64, le=2048, description="Long side of a thumbnail (the result grid)."
    )
    thumbnail_quality: int = Field(default=72, ge=30, le=100)
    preview_side: int = Field(
        default=1600,
        ge=256,
        le=4096,
        description="Long side of a preview (the full-screen view). A preview is made from "
        "the embedder's reduced decode (FACE_DETAIL_MIN_DECODE_SIDE and up), so a larger "
        "value gives at most that size.",
    )
    preview_quality: int = Field(default=80, ge=30, le=100)
    watermark_path: Path | None = Field(
        default=None,
        description="An operator's PNG (with alpha) drawn on every preview; unset: none. "
        "Thumbnails and originals stay unmarked.",
    )
    watermark_position: WatermarkPosition = "bottom-right"
    watermark_opacity: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Opacity of the watermark (0-1)."
    )
    watermark_width: float = Field(
        default=0.25,
        gt=0.0,
        le=1.0,
        description="Width of the watermark as a share of the preview's width.",
    )

    @field_validator("watermark_path")
    @classmethod
    def _watermark_is_a_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value
