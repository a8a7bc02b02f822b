"""Typed errors of the face engine; services map them to answers (e.g. NoFaceError -> 422)."""

from __future__ import annotations


class FaceEngineError(Exception):
    """Base of the face engine's own errors."""


class ModelPackError(FaceEngineError):
    """A model pack is missing, incomplete, tampered with (digest mismatch) or incompatible."""


class NoFaceError(FaceEngineError, ValueError):
    """A selfie holds no usable face."""
