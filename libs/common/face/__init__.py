"""The face engine: model packs, SCRFD detection, ArcFace embedding, the quality gate.

Services use `FaceEngine` (engine.py) and the result types; the rest is its parts.
"""

from libs.common.face.engine import FaceEngine
from libs.common.face.errors import FaceEngineError, ModelPackError, NoFaceError
from libs.common.face.models import get_model_class
from libs.common.face.packs import ModelPack, resolve_pack
from libs.common.face.results import Face, PhotoFaces, RejectedFace, SelfieResult

__all__ = [
    "Face",
    "FaceEngine",
    "FaceEngineError",
    "ModelPack",
    "ModelPackError",
    "NoFaceError",
    "PhotoFaces",
    "RejectedFace",
    "SelfieResult",
    "get_model_class",
    "resolve_pack",
]
