"""The one place that maps a model file and role to its class (as Immich's get_model_class)."""

from __future__ import annotations

from libs.common.face.base import ModelTask, ModelType
from libs.common.face.detection import FaceDetector
from libs.common.face.recognition import FaceEmbedder

# File-name prefixes of the SCRFD detectors that InsightFace packs ship.
_SCRFD_PREFIXES = ("scrfd", "det_")


def get_model_class(
    name: str, model_type: ModelType, task: ModelTask
) -> type[FaceDetector] | type[FaceEmbedder]:
    """The class that runs model file `name` for (`model_type`, `task`)."""
    match model_type, task:
        case ModelType.DETECTION, ModelTask.FACIAL_RECOGNITION if name.startswith(_SCRFD_PREFIXES):
            return FaceDetector
        case ModelType.RECOGNITION, ModelTask.FACIAL_RECOGNITION:
            return FaceEmbedder
        case _:
            raise ValueError(f"Unknown model combination: {name}, {model_type}, {task}")
