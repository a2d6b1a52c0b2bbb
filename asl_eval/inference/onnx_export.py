"""Exporting a learner's model to ONNX, quantizing it to int8, and the verified files the
ONNX engines cache (:mod:`asl_eval.inference.onnx_engine`).

- :func:`export_model`: ``torch.onnx.export`` of a private CPU float32 copy, batch axis dynamic
  (torch's default exporter first, TorchScript's where it cannot translate an operator).
- :func:`quantize_model`: ONNX Runtime's static QDQ quantization of the convolutional body,
  calibrated on preprocessed batches; the classifier head stays float32.
- :func:`write_verified` and :func:`read_verified`: an exported file with a manifest holding its
  SHA-256; a file that does not match is refused and removed.

onnx and ONNX Runtime (the optional extra ``asl-eval[fast]``) and torch are imported inside
functions only.

Layer: part of :mod:`asl_eval.inference`; imports :mod:`asl_eval.errors` and
:mod:`asl_eval.inference.cache`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from asl_eval.errors import ModelLoadError
from asl_eval.inference.cache import write_atomic

if TYPE_CHECKING:
    import torch

__all__ = [
    "HEAD_START",
    "OPSET",
    "export_model",
    "manifest_path",
    "quantize_model",
    "read_verified",
    "write_verified",
]

logger = logging.getLogger(__name__)

OPSET = 18
"""The ONNX opset the models are exported with."""


def manifest_path(path: Path) -> Path:
    """The manifest beside an exported file: its SHA-256, cache key and size."""
    return path.with_suffix(".json")


def read_verified(path: Path) -> bytes | None:
    """The bytes of a cached export when they match its manifest's SHA-256, else None.

    A file that does not match is refused: logged, removed with its manifest, so that it is
    exported again.
    """
    manifest = manifest_path(path)
    if not path.is_file() or not manifest.is_file():
        return None
    data = path.read_bytes()
    try:
        expected = json.loads(manifest.read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        expected = None
    if expected == hashlib.sha256(data).hexdigest():
        return data
    logger.warning("cached ONNX file %s does not match its recorded SHA-256: exporting again", path)
    path.unlink(missing_ok=True)
    manifest.unlink(missing_ok=True)
    return None


def write_verified(path: Path, data: bytes, *, key: str) -> None:
    """Write ``data`` to ``path`` and its manifest (SHA-256, key), each atomically."""
    manifest = {"sha256": hashlib.sha256(data).hexdigest(), "key": key, "size": len(data)}
    write_atomic(path, data)
    write_atomic(manifest_path(path), json.dumps(manifest, indent=2).encode())


def export_model(model: torch.nn.Module, sample: np.ndarray, path: Path) -> Path:
    """Export a copy of ``model`` (CPU, eval, float32) to ONNX at ``path``, batch axis dynamic.

    ``sample`` fixes the other input dimensions; it is repeated to a batch of two, since
    ``torch.export`` specializes a dimension traced with size 1. torch's default exporter
    (``torch.export`` and onnxscript) is tried first; where it cannot translate an operator
    (older torch releases lack ``adaptive_max_pool2d``, which fastai's head uses), the
    TorchScript exporter is tried before giving up.
    """
    import copy

    import torch

    private = copy.deepcopy(model).cpu().float().eval()
    x = torch.from_numpy(np.repeat(sample[:1], 2, axis=0))
    common: dict[str, Any] = {
        "input_names": ["input"],
        "output_names": ["output"],
        "opset_version": OPSET,
        "verbose": False,
    }
    with torch.inference_mode(False), torch.no_grad():
        try:
            batch = torch.export.Dim("batch")
            torch.onnx.export(
                private, (x,), str(path), dynamic_shapes=({0: batch},), external_data=False,
                dynamo=True, **common,
            )  # fmt: skip
        except Exception as error:  # torch.export raises many kinds; all mean "cannot export"
            logger.info("torch's default ONNX exporter failed (%s); trying TorchScript's", error)
            try:
                axes = {"input": {0: "batch"}, "output": {0: "batch"}}
                torch.onnx.export(
                    private, (x,), str(path), dynamic_axes=axes, dynamo=False, **common
                )
            except Exception:  # same: any failure means this model cannot be exported
                raise ModelLoadError(
                    f"This model cannot be exported to ONNX ({type(error).__name__}: "
                    f"{_first_line(error)}). Use --engine fastai."
                ) from error
    return path


def _first_line(error: BaseException) -> str:
    """The first line of an error's message, without terminal colour codes."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
    return text.splitlines()[0] if text else "no detail"


HEAD_START = frozenset(
    {"GlobalAveragePool", "GlobalMaxPool", "ReduceMax", "ReduceMean", "Flatten", "Gemm", "MatMul"}
)
"""Operators that begin a classifier head: from the first of them on, the graph stays float."""


def quantize_model(path: Path, calibration: Sequence[np.ndarray], folder: Path) -> Path:
    """Static int8 quantization of the ONNX model at ``path``; the quantized file's path.

    QDQ format, uint8 activations, int8 per-channel weights, min-max calibration on
    ``calibration``. The convolutional body is quantized; the classifier head (every node from
    the global pooling on: fastai's pooling, batch norms and linear layers) stays float32, since
    it costs little time and quantizing it moved top-1 predictions most in the benchmark.
    """
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = folder / "prepared.onnx"
    quant_pre_process(str(path), str(prepared), skip_symbolic_shape=True)
    nodes = list(onnx.load(str(prepared)).graph.node)
    first = next((i for i, n in enumerate(nodes) if n.op_type in HEAD_START), len(nodes))
    quantized = folder / "quantized.onnx"
    quantize_static(
        str(prepared),
        str(quantized),
        _Calibration(calibration),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        nodes_to_exclude=[node.name for node in nodes[first:]],
    )
    return quantized


class _Calibration:
    """onnxruntime's ``CalibrationDataReader`` protocol over preprocessed batches."""

    def __init__(self, batches: Sequence[np.ndarray]) -> None:
        self._batches = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {"input": batch}

    def rewind(self) -> None:  # part of the protocol; calibration reads the data once
        pass
