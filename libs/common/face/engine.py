"""`FaceEngine`: the small interface the services use (photos in, faces and embeddings out).

Pure computation: besides reading the model files it does no I/O, and it keeps no per-call
state, so one engine serves a thread pool (onnxruntime's `run` is thread-safe).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from libs.common.face.base import FaceModel, ModelTask, ModelType, SessionFactory
from libs.common.face.detection import DetectionRequest, FaceDetector
from libs.common.face.errors import ModelPackError, NoFaceError
from libs.common.face.models import get_model_class
from libs.common.face.packs import ModelPack, resolve_pack
from libs.common.face.passes import FloatArray
from libs.common.face.photo import PhotoInput, Sharper
from libs.common.face.quality import is_extreme_pose, sharpness
from libs.common.face.recognition import FaceEmbedder, fuse_views, mirrored
from libs.common.face.results import (
    BBox,
    Face,
    Keypoints,
    PhotoFaces,
    RejectedFace,
    RejectReason,
    SelfieResult,
)
from libs.common.face.rotation import QUARTER_TURNS, turn, unturn_box, unturn_points
from libs.common.settings import FaceSettings

ImageArray = npt.NDArray[np.uint8]
M = TypeVar("M", bound=FaceModel[Any, Any])


@dataclass(frozen=True, slots=True)
class _Candidate:
    bbox: BBox
    keypoints: Keypoints
    score: float
    crop: ImageArray


@dataclass(frozen=True, slots=True)
class _Gated:
    """One photo after detection and the quality gate, before embedding."""

    accepted: list[_Candidate]
    rejected: list[RejectedFace]
    width: int
    height: int
    timings_ms: dict[str, float]


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


class FaceEngine:
    def __init__(
        self,
        settings: FaceSettings,
        pack: ModelPack,
        session_factory: SessionFactory | None = None,
    ) -> None:
        self.settings = settings
        self.pack = pack
        self.detector = self._build(pack, ModelType.DETECTION, FaceDetector, session_factory)
        self.embedder = self._build(pack, ModelType.RECOGNITION, FaceEmbedder, session_factory)

    @classmethod
    def from_settings(
        cls, settings: FaceSettings, session_factory: SessionFactory | None = None
    ) -> FaceEngine:
        """The engine for FACE_MODEL_DIR's pack (or the default one), digests verified."""
        return cls(settings, resolve_pack(settings.model_dir), session_factory)

    def _build(
        self,
        pack: ModelPack,
        model_type: ModelType,
        expected: type[M],
        session_factory: SessionFactory | None,
    ) -> M:
        path = pack.detector if model_type is ModelType.DETECTION else pack.recognizer
        try:
            model_class = get_model_class(path.name, model_type, ModelTask.FACIAL_RECOGNITION)
        except ValueError as exc:
            raise ModelPackError(str(exc)) from exc
        if not issubclass(model_class, expected):
            raise ModelPackError(f"{path.name} is not a {model_type} model")
        return expected(path, self.settings, session_factory)

    @property
    def threshold(self) -> float:
        """Effective similarity threshold: FACE_SIMILARITY_THRESHOLD, else the pack's."""
        configured = self.settings.similarity_threshold
        return self.pack.threshold if configured is None else configured

    def providers(self) -> list[str]:
        """What runs the models (e.g. CPUExecutionProvider, OpenVINO-CPU-f32)."""
        return self.detector.providers()

    def load(self) -> None:
        """Create both sessions and check the embedding dimension; fails fast at start-up."""
        self.detector.load()
        self.embedder.load()
        actual = self.embedder.dimension
        if self.pack.dimension is not None and actual != self.pack.dimension:
            raise ModelPackError(
                f"pack {self.pack.id} declares dimension {self.pack.dimension}, "
                f"its recogniser gives {actual}"
            )
        if actual != self.settings.embedding_dimension:
            raise ModelPackError(
                f"pack {self.pack.id} gives {actual}-d embeddings but EMBEDDING_DIMENSION is "
                f"{self.settings.embedding_dimension}"
            )

    def analyze(self, image: ImageArray | PhotoInput) -> PhotoFaces:
        """Every face of one photo (BGR uint8, or a `PhotoInput` that knows how to get sharper
        pixels), embedded, plus the faces the gate rejected; in the given pixels."""
        return self.analyze_batch([image])[0]

    def analyze_batch(self, images: Sequence[ImageArray | PhotoInput]) -> list[PhotoFaces]:
        """Like `analyze` for several photos; all their faces are embedded in batched calls."""
        self.load()
        gated = [
            self._detect_and_gate(i if isinstance(i, PhotoInput) else PhotoInput(i)) for i in images
        ]
        crops = [c.crop for g in gated for c in g.accepted]
        start = time.perf_counter()
        embeddings = self.embedder.predict(crops) if crops else np.zeros((0, 0), np.float32)
        embed_ms = _ms_since(start)
        results: list[PhotoFaces] = []
        offset = 0
        for g in gated:
            count = len(g.accepted)
            faces = tuple(
                Face(c.bbox, c.keypoints, c.score, embeddings[offset + i])
                for i, c in enumerate(g.accepted)
            )
            offset += count
            share = embed_ms * count / len(crops) if crops else 0.0
            results.append(
                PhotoFaces(
                    faces=faces,
                    rejected=tuple(g.rejected),
                    width=g.width,
                    height=g.height,
                    timings_ms={**g.timings_ms, "embed": share},
                )
            )
        return results

    def selfie(self, image: ImageArray, size: int | None = None) -> SelfieResult:
        """The selfie's main face, embedded. Raises NoFaceError when there is none.

        The main face is the largest, weighted towards the centre (insightface's own choice:
        area - 2 * squared offset from the centre), so a bystander's bigger face at the edge
        does not win. Only detection score and size count here: a selfie is searched even when
        slightly blurred or turned, since the similarity threshold guards precision anyway.
        A selfie without an upright face is tried turned by quarter turns (see rotation.py).
        `size`: the detector pass's long side (default FACE_SELFIE_DETECTION_SIZE).
        With FACE_SELFIE_FLIP the embedding fuses the face's crop and its mirror.
        """
        self.load()
        height, width = image.shape[:2]
        start = time.perf_counter()
        for turns in QUARTER_TURNS:
            request = DetectionRequest(
                turn(image, turns), detail=False, size=size or self.settings.selfie_detection_size
            )
            found = self.detector.predict(request)
            sides = np.minimum(
                found.boxes[:, 2] - found.boxes[:, 0], found.boxes[:, 3] - found.boxes[:, 1]
            )
            usable = np.flatnonzero(
                (found.scores >= self.settings.detection_threshold)
                & (sides >= self.settings.min_face_size)
            )
            if usable.size:
                break
        else:
            raise NoFaceError("no face found in the selfie")
        turned_h, turned_w = (height, width) if turns % 2 == 0 else (width, height)
        boxes = found.boxes[usable]
        centre_offset = (boxes[:, 0] + boxes[:, 2] - turned_w) ** 2 / 4 + (
            boxes[:, 1] + boxes[:, 3] - turned_h
        ) ** 2 / 4
        main = int(usable[np.argmax(_areas(boxes) - 2.0 * centre_offset)])
        keypoints = unturn_points(found.keypoints[main], turns, width, height)
        box = unturn_box(found.boxes[main], turns, width, height)
        detect_ms = _ms_since(start)
        start = time.perf_counter()
        crop = self.embedder.align(image, keypoints)
        align_ms = _ms_since(start)
        start = time.perf_counter()
        # FACE_SELFIE_FLIP: the crop and its mirror in one recogniser batch, fused.
        views = [crop, mirrored(crop)] if self.settings.selfie_flip else [crop]
        embedding = fuse_views(self.embedder.predict(views))
        face = Face(_bbox(box), _keypoints(keypoints), float(found.scores[main]), embedding)
        return SelfieResult(
            face=face,
            faces_in_selfie=int(usable.size),
            timings_ms={"detect": detect_ms, "align": align_ms, "embed": _ms_since(start)},
        )

    def _detect_and_gate(self, photo: PhotoInput) -> _Gated:
        image = photo.pixels
        height, width = image.shape[:2]
        start = time.perf_counter()
        found = self.detector.predict(DetectionRequest(image))
        detect_ms = _ms_since(start)
        start = time.perf_counter()
        accepted: list[_Candidate] = []
        rejected: list[RejectedFace] = []
        sources = _CropSources(photo)
        for i in np.argsort(-_areas(found.boxes), kind="stable"):
            box, score, keypoints = found.boxes[i], float(found.scores[i]), found.keypoints[i]
            verdict = self._verdict(sources, box, score, keypoints)
            if isinstance(verdict, str):
                rejected.append(RejectedFace(_bbox(box), score, verdict))
            elif len(accepted) >= self.settings.max_faces_per_photo:
                rejected.append(RejectedFace(_bbox(box), score, "over_limit"))
            else:
                accepted.append(_Candidate(_bbox(box), _keypoints(keypoints), score, verdict))
        return _Gated(
            accepted, rejected, width, height, {"detect": detect_ms, "align": _ms_since(start)}
        )

    def _verdict(
        self, sources: _CropSources, box: FloatArray, score: float, keypoints: FloatArray
    ) -> RejectReason | ImageArray:
        """The quality gate: a reject reason, or the aligned crop of an accepted face (from
        sharper pixels when the face is small in the analysed ones and the photo has them)."""
        settings = self.settings
        if score < settings.detection_threshold:
            return "low_score"
        side = float(min(box[2] - box[0], box[3] - box[1]))
        if side * sources.photo.scale < settings.min_face_size:  # in the photo's own pixels
            return "too_small"
        if is_extreme_pose(keypoints):
            return "extreme_pose"
        image, factor = sources.for_face(side, settings.sharper_crop_below)
        crop = self.embedder.align(image, keypoints * factor)
        if sharpness(crop) < settings.min_sharpness:
            return "blurry"
        return crop


class _CropSources:
    """Where a photo's faces are aligned from: its analysed pixels, or for a face below the
    size limit the photo's sharper pixels, decoded once, on the first such face (photo.py)."""

    def __init__(self, photo: PhotoInput) -> None:
        self.photo = photo
        self._sharper: Sharper | None = None
        self._tried = photo.sharper is None

    def for_face(self, side: float, below: int) -> tuple[ImageArray, float]:
        """The pixels to crop a face of `side` analysed pixels from, and their factor."""
        if side < below and not self._tried:
            self._tried = True
            assert self.photo.sharper is not None
            self._sharper = self.photo.sharper()
        if side < below and self._sharper is not None:
            return self._sharper
        return self.photo.pixels, 1.0


def _areas(boxes: FloatArray) -> FloatArray:
    return np.asarray((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), np.float32)


def _bbox(box: FloatArray) -> BBox:
    return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))


def _keypoints(points: FloatArray) -> Keypoints:
    return tuple((float(x), float(y)) for x, y in points)
