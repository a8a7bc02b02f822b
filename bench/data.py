"""The inputs of the suites: LFW-Events (../shared/datasets/lfw-dev, reference parameters of
BENCHMARKS.md), the group photos, LFW selfies for load, and the images insightface ships (so the
suites that do not need ../shared still run without it)."""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import insightface
from PIL import Image

from bench.protocols.event_photos import phone_selfie
from bench.protocols.lfw_events import Protocol, build_protocol, read_labels

SHARED = Path("../shared/datasets")
LFW_DIR = SHARED / "lfw-dev"
GROUP_DIR = SHARED / "group"
_INSIGHTFACE_IMAGES = Path(insightface.__file__).parent / "data" / "images"
T1 = _INSIGHTFACE_IMAGES / "t1.jpg"  # 6 faces, 1280x886
TOM_HANKS = _INSIGHTFACE_IMAGES / "Tom_Hanks_54745.png"  # 1 face


@dataclass(frozen=True)
class EventsParams:
    """LFW-Events draw; the defaults are BENCHMARKS.md's reference run."""

    seed: int = 7
    max_ids: int = 150
    cap: int = 8
    n_distractors: int = 300

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def lfw_available(dataset: Path = LFW_DIR) -> bool:
    return (dataset / "labels.csv").is_file()


def group_available(group: Path = GROUP_DIR) -> bool:
    return (group / "photos.csv").is_file()


@lru_cache(maxsize=4)
def events(dataset: Path, params: EventsParams, selfies: int = 1) -> Protocol:
    """The LFW-Events draw of `params`; with `selfies` > 1 every attendee's first `selfies`
    images are its selfies and its appearances start after them (`lfw_events.draw`)."""
    return build_protocol(
        dataset,
        seed=params.seed,
        max_ids=params.max_ids,
        cap=params.cap,
        n_distractors=params.n_distractors,
        selfies=selfies,
    )


def jpeg(
    path: Path,
    *,
    scale: float = 1.0,
    quality: int = 92,
    crop: tuple[int, int, int, int] | None = None,
) -> bytes:
    with Image.open(path) as im:
        rgb = im.convert("RGB")
        if crop is not None:
            rgb = rgb.crop(crop)
        if scale != 1.0:
            rgb = rgb.resize((max(1, int(rgb.width * scale)), max(1, int(rgb.height * scale))))
        out = io.BytesIO()
        rgb.save(out, format="JPEG", quality=quality)
        return out.getvalue()


def event_photos(dataset: Path, count: int, params: EventsParams | None = None) -> list[bytes]:
    """`count` event photos: the LFW-Events collages when the dataset is there (repeated if
    more are asked than the draw has), else insightface's t1.jpg and Tom Hanks re-encoded."""
    if lfw_available(dataset):
        collages = events(dataset, params or EventsParams()).collages
    else:
        collages = [jpeg(T1), jpeg(TOM_HANKS)]
    return [collages[i % len(collages)] for i in range(count)]


def phone_selfies(dataset: Path, count: int, *, seed: int = 12) -> list[bytes]:
    """`count` 12 MP phone selfies (the Event-Photo protocol's, half stored rotated with an EXIF
    tag) of the first images of shuffled LFW identities; without the dataset, of insightface's
    two images (then bytes may repeat: P2's server caches nothing, so each still runs)."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible draw
    if not lfw_available(dataset):
        return [phone_selfie((TOM_HANKS, T1)[i % 2], rng)[0] for i in range(count)]
    labels = read_labels(dataset)
    names = sorted(labels)
    rng.shuffle(names)
    return [phone_selfie(labels[name][0], rng)[0] for name in names[:count]]


def distinct_selfies(dataset: Path, count: int, *, seed: int = 11) -> list[bytes]:
    """`count` selfies whose bytes all differ (so none is a search-cache hit): LFW images of
    shuffled identities, first images first; without the dataset, insightface's two images at
    slightly different scales."""
    if not lfw_available(dataset):
        # Each image at its own (scale, quality): distinct bytes by construction.
        sources = [T1, TOM_HANKS]
        return [
            jpeg(sources[i % 2], scale=0.4 + 0.01 * (i // 2 % 60), quality=92 - i // 120)
            for i in range(count)
        ]
    labels = read_labels(dataset)
    names = sorted(labels)
    random.Random(seed).shuffle(names)  # noqa: S311 - a reproducible draw
    paths: list[Path] = []
    depth = 0
    while len(paths) < count:
        layer = [labels[n][depth] for n in names if len(labels[n]) > depth]
        if not layer:
            break
        paths += layer
        depth += 1
    return [p.read_bytes() for p in paths[:count]]


def group_set(group: Path = GROUP_DIR) -> tuple[dict[str, list[Path]], dict[str, set[str]]]:
    """References (person → selfie files) and photos (file name → people in it)."""
    import csv

    references = {
        person.name: sorted(p for p in person.iterdir() if p.is_file())
        for person in sorted((group / "known").iterdir())
        if person.is_dir()
    }
    truth: dict[str, set[str]] = {}
    with (group / "photos.csv").open(newline="") as stream:
        for row in csv.DictReader(stream):
            truth[row["photo"]] = {p for p in row["identities"].split(";") if p}
    return references, truth
