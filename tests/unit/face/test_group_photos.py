"""Labelled real photos of ../shared/datasets/group: identity, rotation, no-face, crowd."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from libs.common.face import FaceEngine, NoFaceError

# insightface's norm_crop calls a scikit-image API that warns about its future removal.
pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")

Image = npt.NDArray[np.uint8]
Loader = Callable[[Path], Image]


@pytest.fixture(scope="module")
def references(
    engine: FaceEngine, group_dir: Path, load_image: Loader
) -> dict[str, list[npt.NDArray[np.float32]]]:
    """Selfie embeddings of each known person, from known/<person>/*."""
    return {
        person.name: [
            engine.selfie(load_image(path)).face.embedding for path in sorted(person.iterdir())
        ]
        for person in sorted((group_dir / "known").iterdir())
    }


def labelled_photos(group_dir: Path) -> list[tuple[str, set[str]]]:
    with (group_dir / "photos.csv").open(newline="") as stream:
        return [
            (row["photo"], set(filter(None, row["identities"].split(";"))))
            for row in csv.DictReader(stream)
            if row["identities"]
        ]


def test_people_match_across_photos_and_strangers_do_not(
    engine: FaceEngine,
    group_dir: Path,
    load_image: Loader,
    references: dict[str, list[npt.NDArray[np.float32]]],
) -> None:
    checked = 0
    for photo, present in labelled_photos(group_dir):
        faces = engine.analyze(load_image(group_dir / photo)).faces
        vectors = np.stack([f.embedding for f in faces])
        for person, selfies in references.items():
            best = max(float((vectors @ selfie).max()) for selfie in selfies)
            if person in present:
                assert best >= engine.threshold, f"{person} not found in {photo} ({best:.2f})"
            else:
                assert best < engine.threshold, f"{person} wrongly found in {photo} ({best:.2f})"
            checked += 1
    assert checked == 30


def test_rotated_copies_give_the_same_face(
    engine: FaceEngine, group_dir: Path, load_image: Loader
) -> None:
    upright = engine.selfie(load_image(group_dir / "misc" / "r0.jpg"))
    for name in ("r90.jpg", "r180.jpg", "r270.jpg"):
        image = load_image(group_dir / "misc" / name)
        turned = engine.selfie(image)
        assert float(turned.face.embedding @ upright.face.embedding) > 0.8, name
        x1, y1, x2, y2 = turned.face.bbox  # mapped back onto the photo as uploaded
        assert 0 <= x1 < x2 <= image.shape[1] and 0 <= y1 < y2 <= image.shape[0]


def test_a_view_has_no_face(engine: FaceEngine, group_dir: Path, load_image: Loader) -> None:
    view = load_image(group_dir / "misc" / "view.jpg")
    assert engine.analyze(view).faces == ()
    with pytest.raises(NoFaceError):
        engine.selfie(view)


def test_volleyball_team(engine: FaceEngine, group_dir: Path, load_image: Loader) -> None:
    result = engine.analyze(load_image(group_dir / "photos" / "volleyball_team.jpg"))
    assert len(result.faces) >= 20
    assert all(min(f.bbox[2] - f.bbox[0], f.bbox[3] - f.bbox[1]) >= 20 for f in result.faces)
