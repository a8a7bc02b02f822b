"""The OpenVINO runtime behind the engine's `ModelSession` Protocol (FACE_BACKEND=openvino).

OpenVINO reads the pack's ONNX files itself, so a pack keeps its files and digests whichever
backend runs it. Precision is a setting: `f32`, or `bf16` where the CPU computes it natively
(AVX-512 BF16 or AMX; elsewhere OpenVINO would emulate it, slower than f32), or `auto` (bf16
where native, else f32). Embeddings match onnxruntime's (tests/unit/face/test_backends.py).

A compiled model is shared, with one stream per inference worker; each thread gets its own
infer request, since a request holds its own input and output tensors and is not safe to share
between threads.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Precision = Literal["auto", "f32", "bf16"]


@cache
def _core() -> Any:
    import openvino

    return openvino.Core()


def openvino_available() -> bool:
    """True if the `openvino` package imports and has a CPU device."""
    try:
        return "CPU" in _core().available_devices
    except ImportError:
        return False


def native_bf16() -> bool:
    """True if the CPU computes bf16 natively (OpenVINO lists BF16 among its capabilities)."""
    return "BF16" in _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def resolve_precision(precision: Precision) -> Literal["f32", "bf16"]:
    if precision == "auto":
        return "bf16" if native_bf16() else "f32"
    return precision


@dataclass(frozen=True)
class _Port:
    """What insightface reads of an onnxruntime NodeArg: the name and the shape (a string for
    a dynamic dimension, as onnxruntime gives it)."""

    name: str
    shape: list[int | str]


def _port(port: Any) -> _Port:
    shape = port.get_partial_shape()
    dims: list[int | str] = [d.get_length() if d.is_static else "?" for d in shape]
    return _Port(port.get_any_name(), dims)


class OpenVinoSession:
    """An OpenVINO compiled model on the CPU with FacePass's threading and precision."""

    def __init__(
        self, model_path: Path, *, precision: Precision, threads: int, streams: int = 1
    ) -> None:
        import openvino

        self.precision = resolve_precision(precision)
        # A stream runs one request at a time: with one stream, two inference workers would
        # take turns (measured: 27.5 -> 31.7 detector runs/s from one to two threads; with
        # two streams 53.3). So one stream per worker, `threads` threads each.
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": self.precision,
            "NUM_STREAMS": streams,
        }
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads * streams
        self._compiled = _core().compile_model(str(model_path), "CPU", config)
        self._inputs = [_port(p) for p in self._compiled.inputs]
        self._outputs = [_port(p) for p in self._compiled.outputs]
        self._local = threading.local()
        self._tensors_lock = threading.Lock()
        self._ov = openvino

    def _request(self) -> Any:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        return request

    def run(
        self, output_names: Sequence[str] | None, input_feed: dict[str, npt.NDArray[Any]]
    ) -> list[npt.NDArray[Any]]:
        request = self._request()
        wanted = list(output_names) if output_names else [p.name for p in self._outputs]
        # Only the compute runs in parallel. Touching a request's tensors (reshaping an input,
        # reading an output) goes through the model's memory, and two threads doing it at once
        # deadlocked with the GIL held: both inference workers stuck in OpenVINO's
        # `tensor.data[:] = inputs` (its own input copy), the event loop frozen, the process
        # deaf to health checks and SIGTERM (a second embedder's first batch in
        # tests/reliability/test_crash.py, about one run in six on a loaded machine). So inputs
        # go in as tensors of their own, set and read back under one lock per model.
        # The tensors share the arrays' memory (no copy of a 36 MB detector input): they are
        # only read until wait() returns, and the caller's arrays live that long.
        with self._tensors_lock:
            for name, array in input_feed.items():
                tensor = self._ov.Tensor(np.ascontiguousarray(array), shared_memory=True)
                request.set_tensor(name, tensor)
        # Not infer(): it converts the outputs itself, outside the lock. wait() releases the GIL.
        request.start_async()
        request.wait()
        with self._tensors_lock:
            # Copies: the request reuses its output tensors on its next call.
            return [np.array(request.get_tensor(name).data, copy=True) for name in wanted]

    def get_inputs(self) -> list[Any]:
        return list(self._inputs)

    def get_outputs(self) -> list[Any]:
        return list(self._outputs)

    def get_providers(self) -> list[str]:
        return [f"OpenVINO-CPU-{self.precision}"]
