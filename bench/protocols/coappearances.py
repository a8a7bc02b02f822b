"""Ground-truth corrections for LFW-Events: images that also show another identity.

LFW labels an image with one identity, but some images show a second person of the dataset
(a spouse behind, a team-mate beside) or one person under two names. The service rightly finds
that person there, and the labels call it a false positive. `lfw_dev_coappearances.csv` lists
the co-appearances that were verified by eye (its header says how they were found, and which
lookalikes were deliberately left out). The "verified" truth of a draw (`verified_truth`) adds,
per collage, every identity that one of its tile images is listed as also showing; the "as
labelled" truth (BENCHMARKS.md's protocol, `lfw_events.Protocol.truth`) is left as it is.
"""

from __future__ import annotations

import csv
import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench.protocols.lfw_events import Scores

#: The verified co-appearances of the LFW dev half.
LFW_DEV = Path(__file__).with_name("lfw_dev_coappearances.csv")

#: Image path (relative to the dataset directory, as in labels.csv) -> who else it shows.
AlsoShows = Mapping[str, frozenset[str]]


def read(path: Path = LFW_DEV) -> dict[str, frozenset[str]]:
    """The file's co-appearances (columns path, also_shows, note; `#` lines are comments)."""
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    shows: dict[str, set[str]] = defaultdict(set)
    for row in csv.DictReader(lines):
        shows[row["path"].strip()].add(row["also_shows"].strip())
    return {image: frozenset(names) for image, names in shows.items()}


def check(also_shows: AlsoShows, labels: Mapping[str, Sequence[Path]], root: Path) -> None:
    """Raise ValueError unless every listed image is in the dataset's labels (`root` is the
    dataset directory the label paths start with) and every identity it shows is one of its
    identities other than the image's own."""
    owner = {
        path.relative_to(root).as_posix(): name for name, paths in labels.items() for path in paths
    }
    wrong: list[str] = []
    for image, names in sorted(also_shows.items()):
        if image not in owner:
            wrong.append(f"{image}: not in the labels")
            continue
        wrong += [
            f"{image}: {name} is {'its own label' if name == owner[image] else 'no identity'}"
            for name in sorted(names)
            if name not in labels or name == owner[image]
        ]
    if wrong:
        raise ValueError("co-appearances that do not fit the dataset: " + "; ".join(wrong))


def verified_truth(
    truth: Sequence[frozenset[str]], images: Sequence[Sequence[str]], also_shows: AlsoShows
) -> list[frozenset[str]]:
    """Per collage, the labelled truth plus every identity one of its tile images (`images`,
    per collage, relative paths) is listed as also showing."""
    return [
        present | frozenset(name for image in tiles for name in also_shows.get(image, ()))
        for present, tiles in zip(truth, images, strict=True)
    ]


def relevance(identities: Sequence[str], truth: Sequence[frozenset[str]]) -> npt.NDArray[np.bool_]:
    """Selfies (rows) x photos (columns): whether the photo shows the selfie's identity."""
    return np.array([[name in present for present in truth] for name in identities], dtype=bool)


def with_truth(scores: Scores, truth: Sequence[frozenset[str]]) -> Scores:
    """The same similarities judged against another truth per photo."""
    return dataclasses.replace(scores, relevant=relevance(scores.identities, truth))
