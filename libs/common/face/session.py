"""The ONNX runtime behind a small Protocol, so models can be tested with a fake session."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy.typing as npt
import onnxruntime as ort

# ORT's warning level; 3 = errors only. The recogniser declares a fixed batch of 1 in its output
# shape but runs any batch, and ORT would log a shape warning on every batched call.
_ERRORS_ONLY = 3


class ModelSession(Protocol):
    """What the face models need from an inference runtime (ORT's InferenceSession has it)."""

    def run(
        self, output_names: Sequence[str] | None, input_feed: dict[str, npt.NDArray[Any]]
    ) -> list[npt.NDArray[Any]]: ...

    def get_inputs(self) -> list[Any]: ...

    def get_outputs(self) -> list[Any]: ...

    def get_providers(self) -> list[str]: ...


def select_providers(preferred: Sequence[str], available: Sequence[str]) -> list[str]:
    """The preferred providers that this onnxruntime build has, in preference order.

    CPU is the fallback of last resort, so a GPU-first list still works on a CPU-only machine.
    """
    chosen = [name for name in dict.fromkeys(preferred) if name in available]
    if not chosen and "CPUExecutionProvider" in available:
        chosen = ["CPUExecutionProvider"]
    if not chosen:
        raise RuntimeError(f"none of the providers {list(preferred)} is available: {available}")
    return chosen


class OrtSession:
    """An onnxruntime InferenceSession with FacePass's provider and threading choices.

    `run` is safe to call from several threads at once (ORT guarantees it), which is how the
    services use one engine from a thread pool.
    """

    def __init__(self, model_path: Path, *, providers: Sequence[str], intra_op_threads: int):
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        # Variable input sizes (tiles, batches) would make the arena keep its peak forever.
        options.enable_cpu_mem_arena = False
        options.log_severity_level = _ERRORS_ONLY
        self._session = ort.InferenceSession(
            str(model_path),
            sess_options=options,
            providers=select_providers(providers, ort.get_available_providers()),
        )

    def run(
        self, output_names: Sequence[str] | None, input_feed: dict[str, npt.NDArray[Any]]
    ) -> list[npt.NDArray[Any]]:
        outputs: list[npt.NDArray[Any]] = self._session.run(output_names, input_feed)
        return outputs

    def get_inputs(self) -> list[Any]:
        return list(self._session.get_inputs())

    def get_outputs(self) -> list[Any]:
        return list(self._session.get_outputs())

    def get_providers(self) -> list[str]:
        return list(self._session.get_providers())
