"""`FaceModel`: the template every face model follows (as Immich's InferenceModel).

Public `load()` / `predict()` are the fixed part; subclasses fill in `_load()` / `_predict()`.
`predict` loads lazily, so a service may preload at start-up or let the first call do it.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import ClassVar, Generic, TypeVar

import onnxruntime as ort

from libs.common.cpu import cpu_cores
from libs.common.face.openvino_session import OpenVinoSession, native_bf16, openvino_available
from libs.common.face.session import ModelSession, OrtSession
from libs.common.settings import FaceSettings

In = TypeVar("In")
Out = TypeVar("Out")

SessionFactory = Callable[[Path], ModelSession]


class ModelType(StrEnum):
    DETECTION = "detection"
    RECOGNITION = "recognition"


class ModelTask(StrEnum):
    FACIAL_RECOGNITION = "facial-recognition"


def backend_for(settings: FaceSettings) -> str:
    """The runtime FACE_BACKEND picks. auto: onnxruntime for a GPU provider (CUDA); OpenVINO on
    a CPU with native bf16, where it runs the models ~2x faster (../shared/DESIGN.md); else
    onnxruntime: on an AVX2-only CPU, OpenVINO f32 ran EP-12 photos at 0.90x onnxruntime's
    speed (its recogniser is faster, its 640 px detector passes slower: docs/faces.md)."""
    if settings.backend != "auto":
        return settings.backend
    available = set(ort.get_available_providers())
    if any(p in available for p in settings.providers if p != "CPUExecutionProvider"):
        return "onnxruntime"
    return "openvino" if openvino_available() and native_bf16() else "onnxruntime"


def default_session_factory(settings: FaceSettings) -> SessionFactory:
    """Sessions of the configured backend, with the thread count (and precision) of
    `settings`."""
    threads = settings.intra_op_threads
    if backend_for(settings) == "openvino":
        streams = settings.inference_workers or cpu_cores()
        return lambda path: OpenVinoSession(
            path, precision=settings.precision, threads=threads, streams=streams
        )
    return lambda path: OrtSession(path, providers=settings.providers, intra_op_threads=threads)


class FaceModel(ABC, Generic[In, Out]):
    """One ONNX model of the face pipeline.

    `identity` names what the model does; `depends` lists the identities whose outputs it
    consumes (the recogniser needs the detector's keypoints).
    """

    identity: ClassVar[tuple[ModelType, ModelTask]]
    depends: ClassVar[list[tuple[ModelType, ModelTask]]]

    def __init__(
        self,
        model_path: Path,
        settings: FaceSettings,
        session_factory: SessionFactory | None = None,
    ) -> None:
        self.model_path = model_path
        self.settings = settings
        self._session_factory = session_factory or default_session_factory(settings)
        self._lock = threading.Lock()
        self._loaded = False

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        """Create the session once; concurrent first calls wait for one load."""
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                session = self._session_factory(self.model_path)
                self._load(session)
                self._session = session
                self._loaded = True

    def providers(self) -> list[str]:
        """The execution providers the session really uses (after filtering the settings')."""
        self.load()
        return self._session.get_providers()

    def predict(self, inputs: In) -> Out:
        self.load()
        return self._predict(inputs)

    @abstractmethod
    def _load(self, session: ModelSession) -> None:
        """Keep the session and read what the model needs from it (input size, names)."""

    @abstractmethod
    def _predict(self, inputs: In) -> Out:
        """Run the model; must not mutate shared state (calls come from many threads)."""
