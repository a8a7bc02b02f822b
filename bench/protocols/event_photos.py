"""The Event-Photo protocol (EP) of ../shared/BENCHMARKS.md: camera-size event photos and phone
selfies built from the LFW dev half.

Attendees and distractors are drawn as in LFW-Events (one seeded generator). Each event photo is
a canvas (EP-12: 4000x3000, EP-24: 6000x4000) with a textured background (upscaled random noise)
holding 3-10 LFW images pasted at random non-overlapping places, each resized to SxS with S
uniform in [150, 700] px (EP-24: [220, 1050]); 30% of the photos are stored rotated with EXIF
Orientation 6, 10% with 8 (the pixels a camera held upright stores), the rest upright; JPEG q88.
Selfies: the attendee's first image on a 3024x4032 phone canvas, half of them stored with EXIF
Orientation 6, JPEG q90; also a 720 px variant. Ground truth: a photo contains X iff one of its
pasted images is an appearance of X.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bench.protocols.lfw_events import draw, read_labels

ORIENTATION = 0x0112


@dataclass(frozen=True)
class EpParams:
    """An EP draw; the defaults are BENCHMARKS.md's example (EP-12)."""

    seed: int = 7
    attendees: int = 80
    cap: int = 6
    distractors: int = 300
    canvas: tuple[int, int] = (4000, 3000)
    tile: tuple[int, int] = (150, 700)

    @classmethod
    def ep24(cls, **changes: int) -> EpParams:
        return cls(canvas=(6000, 4000), tile=(220, 1050), **changes)

    @property
    def name(self) -> str:
        return f"EP-{round(self.canvas[0] * self.canvas[1] / 1e6)}"

    def as_dict(self) -> dict[str, object]:
        return {**self.__dict__, "name": self.name}


@dataclass(frozen=True)
class EventPhotos:
    photos: list[bytes]
    truth: list[frozenset[str]]  # per photo, the attendees in it
    orientations: list[int]  # per photo: 1 upright, 6 or 8 stored rotated
    selfies: dict[str, bytes]  # attendee -> 12 MP phone selfie
    small_selfies: dict[str, bytes]  # attendee -> the same selfie, 720 px
    faces_per_photo: list[int]


def _jpeg(image: Image.Image, quality: int, orientation: int = 1) -> bytes:
    """`image` as a camera stores it: for orientation 6/8 the pixels turned, with the tag."""
    stored = image
    exif = Image.Exif()
    if orientation == 6:  # displayed = stored turned 90° clockwise
        stored = image.transpose(Image.Transpose.ROTATE_90)
    elif orientation == 8:
        stored = image.transpose(Image.Transpose.ROTATE_270)
    if orientation != 1:
        exif[ORIENTATION] = orientation
    out = io.BytesIO()
    stored.save(out, "JPEG", quality=quality, exif=exif.tobytes())
    return out.getvalue()


def _background(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    noise = np.random.default_rng(rng.randrange(2**32)).integers(
        40, 220, (size[1] // 100 + 1, size[0] // 100 + 1, 3), dtype=np.uint8
    )
    return Image.fromarray(noise).resize(size, Image.Resampling.BICUBIC)


def _place(
    rng: random.Random, canvas: tuple[int, int], sides: list[int]
) -> list[tuple[int, int, int]]:
    """Non-overlapping (x, y, side) squares; a square that finds no room after 200 tries is
    left out."""
    placed: list[tuple[int, int, int]] = []
    for side in sides:
        for _ in range(200):
            x, y = rng.randrange(canvas[0] - side), rng.randrange(canvas[1] - side)
            if all(x + side <= px or px + ps <= x or y + side <= py or py + ps <= y
                   for px, py, ps in placed):  # fmt: skip
                placed.append((x, y, side))
                break
    return placed


def phone_selfie(path: Path, rng: random.Random) -> tuple[bytes, bytes]:
    """The Event-Photo protocol's 12 MP phone selfie of an LFW image, and its 720 px copy."""
    canvas = Image.new("RGB", (3024, 4032), (rng.randrange(256),) * 3)
    with Image.open(path) as face:
        big = face.convert("RGB").resize((2400, 2400), Image.Resampling.BICUBIC)
    canvas.paste(big, (312, 816))
    orientation = 6 if rng.random() < 0.5 else 1
    small = canvas.resize((540, 720), Image.Resampling.LANCZOS)
    return _jpeg(canvas, 90, orientation), _jpeg(small, 90, orientation)


def build(dataset_dir: Path, params: EpParams, *, limit: int | None = None) -> EventPhotos:
    """The draw; `limit` keeps only the first photos (and the attendees in them)."""
    labels = read_labels(dataset_dir)
    rng = random.Random(params.seed)  # noqa: S311 - a reproducible draw, not a secret
    attendees, images = draw(
        labels, rng, max_ids=params.attendees, cap=params.cap, n_distractors=params.distractors
    )

    photos: list[bytes] = []
    truth: list[frozenset[str]] = []
    orientations: list[int] = []
    counts: list[int] = []
    start = 0
    while start < len(images) and (limit is None or len(photos) < limit):
        group = images[start : start + rng.randint(3, 10)]
        start += len(group)
        canvas = _background(rng, params.canvas)
        sides = [rng.randint(*params.tile) for _ in group]
        placed = _place(rng, params.canvas, sides)
        for (path, _), (x, y, side) in zip(group, placed, strict=False):
            with Image.open(path) as face:
                canvas.paste(face.convert("RGB").resize((side, side)), (x, y))
        kept = group[: len(placed)]
        roll = rng.random()
        orientation = 6 if roll < 0.3 else 8 if roll < 0.4 else 1
        photos.append(_jpeg(canvas, 88, orientation))
        truth.append(frozenset(name for _, name in kept if name is not None))
        orientations.append(orientation)
        counts.append(len(kept))
    present = set().union(*truth) if truth else set()
    selfies: dict[str, bytes] = {}
    small: dict[str, bytes] = {}
    for name in attendees:
        if name in present:
            selfies[name], small[name] = phone_selfie(labels[name][0], rng)
    return EventPhotos(photos, truth, orientations, selfies, small, counts)
