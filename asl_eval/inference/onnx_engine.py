"""The ONNX Runtime engines: ``onnx`` (float32) and ``onnx-int8`` (static int8 quantization).

The learner's model is exported once with ``torch.onnx.export`` (dynamic batch axis) and run
with ONNX Runtime; the images go through fastai's own pipeline first
(:func:`~asl_eval.inference.engines.preprocessed_batches`), so the preprocessing is the
``fastai`` engine's by construction, and the loss function's activation is applied with torch
afterwards, as ``get_preds`` does.

- Exported files (:mod:`asl_eval.inference.onnx_export`) are cached in a folder, named by the
  model's hash and everything else that changes the export, each with a manifest holding its
  SHA-256. A file whose bytes do not match its manifest is refused, removed and exported again;
  ONNX Runtime is given the verified bytes, never a path that could change in between.
- Every run checks the engine against the ``fastai`` engine (on the CPU, float32) on its first
  images (:meth:`OnnxEngine.verify`, result in :attr:`OnnxEngine.agreement`). ``onnx`` must agree
  to 1e-4 with identical top-1, else :class:`~asl_eval.errors.ModelLoadError`; ``onnx-int8``
  records its top-1 agreement and warns below 99%.

ONNX Runtime, onnx and onnxscript are the optional extra ``asl-eval[fast]``; they are imported
inside functions only, and :func:`require_fast_extra` says how to install them.

Layer: part of :mod:`asl_eval.inference`; imports :mod:`asl_eval.errors`,
:mod:`asl_eval.inference.engines` and :mod:`asl_eval.inference.onnx_export`.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from asl_eval.errors import InputError, ModelLoadError
from asl_eval.inference.engines import (
    DEFAULT_BATCH_SIZE,
    FastaiEngine,
    activation,
    describe_preprocessing,
    preprocessed_batches,
)
from asl_eval.inference.onnx_export import (
    OPSET,
    export_model,
    manifest_path,
    quantize_model,
    read_verified,
    write_verified,
)

if TYPE_CHECKING:
    import torch
    from fastai.learner import Learner
    from PIL import Image

__all__ = [
    "FLOAT_TOLERANCE",
    "INT8_MIN_TOP1_AGREEMENT",
    "OPSET",
    "Agreement",
    "OnnxEngine",
    "default_cache_dir",
    "require_fast_extra",
    "state_dict_hash",
]

logger = logging.getLogger(__name__)

FLOAT_TOLERANCE = 1e-4
"""Largest difference allowed between ``onnx`` and ``fastai`` probabilities."""

INT8_MIN_TOP1_AGREEMENT = 0.99
"""``onnx-int8`` warns when its top-1 agreement with the float model is below this."""

FAST_EXTRA = ("onnxruntime", "onnx", "onnxscript")


def require_fast_extra() -> ModuleType:
    """``onnxruntime``, after checking that the ``fast`` extra is installed.

    Raises
    ------
    InputError
        One of onnxruntime, onnx, onnxscript is missing; the message says how to install them.
    """
    missing = []
    for module in FAST_EXTRA:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise InputError(
            f"The onnx engines need {', '.join(missing)}, which are not installed. "
            "Install the extra with: pip install 'asl-eval[fast]' (or use --engine fastai)."
        )
    return importlib.import_module("onnxruntime")


def default_cache_dir() -> Path:
    """``onnx/`` under the predictions cache's folder
    (:func:`asl_eval.inference.cache.default_cache_dir`, which ``$ASL_EVAL_CACHE_DIR``
    overrides)."""
    from asl_eval.inference.cache import default_cache_dir as predictions_cache_dir

    return predictions_cache_dir() / "onnx"


def state_dict_hash(model: torch.nn.Module) -> str:
    """SHA-256 of a model's weights: every state-dict entry's name, dtype, shape and bytes."""
    import torch

    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        value = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{key}|{value.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


@dataclass(frozen=True)
class Agreement:
    """How an engine's probabilities compare with the ``fastai`` engine's on a checked sample.

    Attributes
    ----------
    n_checked
        Images compared.
    max_abs_diff
        Largest absolute difference of any probability.
    top1_agreement
        Fraction of the images whose top-1 class is the same, in [0, 1].
    reference
        What the engine was compared with.
    warning
        Set when the agreement is below what the engine promises (``onnx-int8``), else None.
    """

    n_checked: int
    max_abs_diff: float
    top1_agreement: float
    reference: str = "fastai engine, cpu, float32"
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def compare(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float, int]:
    """Largest absolute difference, top-1 agreement, and how many top-1 changes are real.

    A top-1 change counts as real when the reference's two best classes are more than
    ``2 * FLOAT_TOLERANCE`` apart: a near-tie may flip within the tolerance itself.
    """
    if not len(reference):
        return 0.0, 1.0, 0
    diff = float(np.abs(reference - candidate).max())
    top_reference = reference.argmax(axis=1)
    changed = top_reference != candidate.argmax(axis=1)
    ordered = np.sort(reference, axis=1)
    margin = ordered[:, -1] - ordered[:, -2] if reference.shape[1] > 1 else np.ones(len(reference))
    real = int(np.count_nonzero(changed & (margin > 2 * FLOAT_TOLERANCE)))
    return diff, float(1.0 - changed.mean()), real


class OnnxEngine:
    """The learner's model exported to ONNX and run with ONNX Runtime.

    Use :func:`asl_eval.inference.make_engine` (``"onnx"`` or ``"onnx-int8"``); the parameters
    are the ones it documents. The export happens on the first :meth:`predict` (or
    :meth:`verify`), whose first ``check_size`` images are also checked against the ``fastai``
    engine.
    """

    def __init__(
        self,
        learner: Learner,
        *,
        quantize: bool = False,
        batch_size: int | None = None,
        cache_dir: str | Path | None = None,
        model_hash: str | None = None,
        calibration_images: Sequence[Image.Image] | None = None,
        check_size: int = 32,
        keep_export: bool = True,
    ) -> None:
        self._ort = require_fast_extra()
        batch_size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
        if batch_size < 1 or check_size < 1:
            raise InputError(
                f"batch_size and check_size must be at least 1: {batch_size}, {check_size}"
            )
        self.name = "onnx-int8" if quantize else "onnx"
        self.learner = learner
        self.quantize = quantize
        self.batch_size = batch_size
        self.check_size = check_size
        self.classes = tuple(str(c) for c in learner.dls.vocab)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.keep_export = keep_export
        self.model_hash = model_hash or state_dict_hash(learner.model)
        self.agreement: Agreement | None = None
        self.onnx_path: Path | None = None
        self._calibration = self._calibration_batches(calibration_images) if quantize else []
        self._quantization_info: dict[str, Any] | None = None
        self._session: Any = None

    def _calibration_batches(self, images: Sequence[Image.Image] | None) -> list[np.ndarray]:
        if not images:
            raise InputError(
                "onnx-int8 needs calibration images: pass calibration_images, a hundred or so "
                "in-domain images (from the training or validation split)"
            )
        return [_numpy(x) for x in preprocessed_batches(self.learner, images, batch_size=16)]

    @property
    def providers(self) -> list[str]:
        """ONNX Runtime's execution providers: CUDA first when available (float only)."""
        available = self._ort.get_available_providers()
        if not self.quantize and "CUDAExecutionProvider" in available:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]

    def describe(self) -> dict[str, Any]:
        """Engine, runtime, providers, quantization and preprocessing (the cache keys on it)."""
        import torch

        described: dict[str, Any] = {
            "engine": self.name,
            "device": "cuda" if self.providers[0].startswith("CUDA") else "cpu",
            "providers": self.providers,
            "onnxruntime": self._ort.__version__,
            "torch": torch.__version__,
            "opset": OPSET,
            "preprocessing": describe_preprocessing(self.learner),
        }
        if self.quantize:
            described["quantization"] = self._quantization()
        return described

    def _quantization(self) -> dict[str, Any]:
        """The quantization's description, with the calibration's hash: worked out once, as the
        calibration is fixed when the engine is made and every chunk's cache key asks for it."""
        if self._quantization_info is None:
            self._quantization_info = self._describe_quantization()
        return dict(self._quantization_info)

    def _describe_quantization(self) -> dict[str, Any]:
        digest = hashlib.sha256()
        for batch in self._calibration:
            digest.update(f"{batch.shape}".encode())
            digest.update(batch.tobytes())
        return {
            "format": "QDQ",
            "activations": "uint8",
            "weights": "int8, per channel",
            "float": "classifier head, from the global pooling on",
            "calibration": "minmax",
            "n_calibration_images": sum(len(b) for b in self._calibration),
            "calibration_sha256": digest.hexdigest(),
        }

    def predict(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Probabilities for ``images``, shape ``(n, n_classes)``, float64.

        The first call also checks its first ``check_size`` images against the ``fastai``
        engine (as :meth:`verify` does), and raises instead of returning when ``onnx`` disagrees.
        """
        if not images:
            return np.zeros((0, len(self.classes)))
        probabilities = self._predict(images)
        if self.agreement is None:
            self._check(images[: self.check_size], probabilities[: self.check_size])
        return probabilities

    def verify(self, images: Sequence[Image.Image]) -> Agreement:
        """Compare this engine with the ``fastai`` engine (CPU, float32) on ``images``.

        Returns
        -------
        Agreement
            Also kept in :attr:`agreement`.

        Raises
        ------
        ModelLoadError
            ``onnx`` only: a probability differs by more than :data:`FLOAT_TOLERANCE`, or a
            top-1 class differs where the reference is not a near-tie. The cached export is
            removed.
        """
        return self._check(images, self._predict(images))

    def _check(self, images: Sequence[Image.Image], got: np.ndarray) -> Agreement:
        """:meth:`verify`, given this engine's probabilities for ``images``."""
        reference = FastaiEngine(self.learner, device="cpu")
        expected = reference.predict(images)
        diff, top1, real_changes = compare(expected, got)
        warning = None
        if not self.quantize and (diff > FLOAT_TOLERANCE or real_changes):
            self._discard()
            raise ModelLoadError(
                f"The ONNX export disagrees with the fastai model on {len(images)} checked "
                f"images: largest probability difference {diff:.2e} (allowed "
                f"{FLOAT_TOLERANCE:.0e}), top-1 identical for {top1:.1%}. The exported file was "
                "removed; use --engine fastai, or report the model's architecture."
            )
        if self.quantize and top1 < INT8_MIN_TOP1_AGREEMENT:
            warning = (
                f"int8 top-1 agreement with the float model is {top1:.1%} on {len(images)} "
                f"checked images, below {INT8_MIN_TOP1_AGREEMENT:.0%}: use --engine onnx or "
                "calibrate on more in-domain images"
            )
            logger.warning(warning)
        self.agreement = Agreement(len(images), diff, top1, warning=warning)
        return self.agreement

    def _predict(self, images: Sequence[Image.Image]) -> np.ndarray:
        import torch

        outputs = []
        for x in preprocessed_batches(self.learner, images, batch_size=self.batch_size):
            batch = _numpy(x)
            outputs.append(self._session_for(batch).run(None, {"input": batch})[0])
        probabilities = activation(self.learner, torch.from_numpy(np.concatenate(outputs)))
        return np.asarray(probabilities.numpy(), dtype=np.float64)

    def _session_for(self, batch: np.ndarray) -> Any:
        """The ONNX Runtime session, exported (or read from the cache) on first use."""
        if self._session is None:
            data = self._model_bytes(batch)
            options = self._ort.SessionOptions()
            self._session = self._ort.InferenceSession(data, options, providers=self.providers)
        return self._session

    def _model_bytes(self, sample: np.ndarray) -> bytes:
        """The verified bytes of the cached export for inputs shaped like ``sample``."""
        if not self.keep_export:
            # --no-cache: export into a temporary folder and keep nothing on disk
            with tempfile.TemporaryDirectory(prefix="asl-eval-export-") as folder:
                return self._export(sample, Path(folder))
        key = self._cache_key(sample.shape[1:])
        path = self.cache_dir / f"{self.name}-{key[:32]}.onnx"
        self.onnx_path = path
        cached = read_verified(path)
        if cached is not None:
            return cached
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix=".export-") as folder:
            data = self._export(sample, Path(folder))
        write_verified(path, data, key=key)
        return data

    def _export(self, sample: np.ndarray, folder: Path) -> bytes:
        """Export (and with ``quantize``, quantize) the model into ``folder``; its bytes."""
        exported = folder / "model.onnx"
        export_model(self.learner.model, sample, exported)
        if self.quantize:
            exported = quantize_model(exported, self._calibration, folder)
        return exported.read_bytes()

    def _cache_key(self, input_shape: tuple[int, ...]) -> str:
        import torch

        described = {
            "model": self.model_hash,
            "input_shape": list(input_shape),
            "torch": torch.__version__,
            "onnxruntime": self._ort.__version__,
            "opset": OPSET,
            "quantization": self._quantization() if self.quantize else None,
        }
        return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()

    def _discard(self) -> None:
        if self.onnx_path is not None:
            for path in (self.onnx_path, manifest_path(self.onnx_path)):
                path.unlink(missing_ok=True)
        self._session = None


def _numpy(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().cpu().float().numpy())
