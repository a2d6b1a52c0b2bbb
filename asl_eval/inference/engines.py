"""Engines: what turns decoded RGB images into class probabilities.

An :class:`Engine` is given decoded images (``PIL.Image`` in RGB, as
:func:`asl_eval.inputs.load_rgb` returns them) and returns probabilities of shape
``(n, n_classes)`` in the model's class order. :meth:`Engine.describe` names everything that can
change those numbers (engine, its options, the device, the preprocessing), so the predictions
cache can key on it.

- ``fastai`` (:class:`FastaiEngine`, the default): fastai's own preprocessing (the learner's
  ``test_dl`` item and batch transforms) and the learner's model called directly under
  ``torch.inference_mode``, with the loss function's activation, as ``get_preds`` applies it,
  without its callback machinery. Probabilities agree with ``get_preds`` to 1e-6.
- ``onnx`` and ``onnx-int8`` (:mod:`asl_eval.inference.onnx_engine`): the same preprocessing,
  the model exported to ONNX and run with ONNX Runtime (the optional extra ``asl-eval[fast]``).

Layer: part of :mod:`asl_eval.inference`. Imports numpy and :mod:`asl_eval.errors`; torch and
fastai inside functions and through the learner it is given.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from asl_eval.errors import InputError

if TYPE_CHECKING:
    import torch
    from fastai.learner import Learner
    from PIL import Image

__all__ = [
    "CPU_BATCH_SIZE",
    "DEFAULT_BATCH_SIZE",
    "ENGINES",
    "Engine",
    "FastaiEngine",
    "default_batch_size",
    "describe_preprocessing",
    "make_engine",
    "preprocessed_batches",
]

logger = logging.getLogger(__name__)

ENGINES = ("fastai", "onnx", "onnx-int8")
"""The names ``--engine`` accepts."""

DEFAULT_BATCH_SIZE = 64
"""Images per forward pass on a GPU, and for ONNX Runtime (whose speed on the CPU hardly moves
with the batch: within 3% from 4 to 64 images in the benchmark's machine)."""

CPU_BATCH_SIZE = 8
"""Images per forward pass of a torch model on the CPU.

Small batches keep a convolutional network's activations in the processor's caches (resnet18's
first activation at 200 px is 2.6 MB per image): on the 2-core machine of docs/benchmarks.md,
resnet18 ran about 1.3 times faster at 4 to 8 images than at 64, with probabilities within
2e-7 of batches of 64. ``--batch-size`` overrides it."""

STANDARD_CALLBACKS = frozenset(
    {"TrainEvalCallback", "Recorder", "CastToTensor", "ProgressCallback"}
)
"""Callbacks every fastai learner carries that do not change what ``get_preds`` computes.

A learner with any other callback (``MixedPrecision``, a user's ``before_batch`` hook, ...) is
predicted through ``get_preds`` itself, so that the engine never silently differs from it."""


@runtime_checkable
class Engine(Protocol):
    """Decoded images in, probabilities out."""

    name: str
    classes: tuple[str, ...]

    def describe(self) -> dict[str, Any]:
        """JSON-ready description of everything that changes the numbers."""
        ...

    def predict(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Probabilities, shape ``(len(images), len(classes))``, float64."""
        ...


def default_batch_size(engine: str = "fastai", device: str | None = None) -> int:
    """The batch size an engine uses when none is given.

    :data:`CPU_BATCH_SIZE` for the ``fastai`` engine on the CPU (``device`` None means CUDA when
    torch sees it, else the CPU), :data:`DEFAULT_BATCH_SIZE` otherwise.
    """
    if engine == "fastai" and (device or default_device()).split(":")[0] == "cpu":
        return CPU_BATCH_SIZE
    return DEFAULT_BATCH_SIZE


def preprocessed_batches(
    learner: Learner, images: Sequence[Image.Image], *, batch_size: int = DEFAULT_BATCH_SIZE
) -> Iterator[torch.Tensor]:
    """The model's input batches for ``images``, made by fastai's own pipeline.

    This is ``learner.dls.test_dl(images)`` iterated: the validation item transforms (resize,
    to tensor) and batch transforms (to float, normalize) of the learner, exactly as
    ``get_preds`` sees them, cast to plain ``torch.Tensor`` (fastai's ``CastToTensor`` does the
    same before the model runs). Batches are on the DataLoaders' device.
    """
    n_inputs = getattr(learner.dls, "n_inp", 1)
    if n_inputs != 1:
        raise InputError(f"asl-eval's engines take models with one input; this one has {n_inputs}")
    dl = learner.dls.test_dl(list(images), bs=batch_size, num_workers=0)
    for batch in dl:
        yield batch[0].as_subclass(_tensor_type())


def describe_preprocessing(learner: Learner) -> dict[str, Any]:
    """The learner's inference pipeline and activation, as JSON-ready text.

    Returns
    -------
    dict
        ``item`` and ``batch``: fastai's description of each item and batch transform of the
        validation pipeline, in order (training-only augmentations are listed too: fastai
        skips them at inference); ``activation``: the loss function whose activation turns the
        model's outputs into probabilities (``None`` when it has none: outputs are passed on).
    """
    valid = learner.dls.valid
    loss = learner.loss_func
    return {
        "item": [_one_line(t) for t in valid.after_item.fs],
        "batch": [_one_line(t) for t in valid.after_batch.fs],
        "activation": type(loss).__name__ if hasattr(loss, "activation") else None,
    }


def activation(learner: Learner, outputs: torch.Tensor) -> torch.Tensor:
    """The loss function's activation on ``outputs``, as ``get_preds`` applies it."""
    function = getattr(learner.loss_func, "activation", None)
    return function(outputs) if callable(function) else outputs


def _one_line(transform: object) -> str:
    return " ".join(str(transform).split())


def _tensor_type() -> type:
    import torch

    return torch.Tensor


def default_device() -> str:
    """``"cuda"`` when torch sees a CUDA device, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _model_device(model: torch.nn.Module) -> str:
    parameter = next(model.parameters(), None)
    return "cpu" if parameter is None else str(parameter.device)


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``model`` in eval mode; every submodule's own train/eval flag is restored afterwards."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


class FastaiEngine:
    """fastai's preprocessing and the learner's model, without the callback machinery.

    Parameters
    ----------
    learner
        A fastai ``Learner``; it is left as it was found (train/eval mode, device, memory format).
    batch_size
        Images per forward pass; default: :func:`default_batch_size` for the device (8 on the
        CPU, 64 on a GPU).
    device
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...; default: CUDA when available, else the CPU.
    bf16, channels_last
        Run under bfloat16 autocast, or with channels-last memory format. Both are faster on
        some hardware and both change the numbers, so they are off by default and
        :meth:`describe` records them.
    """

    name = "fastai"

    def __init__(
        self,
        learner: Learner,
        *,
        batch_size: int | None = None,
        device: str | None = None,
        bf16: bool = False,
        channels_last: bool = False,
    ) -> None:
        if batch_size is not None and batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        self.learner = learner
        self.device = device or default_device()
        _check_device(self.device)
        self.batch_size = batch_size or default_batch_size(self.name, self.device)
        self.bf16 = bf16
        self.channels_last = channels_last
        self.classes = tuple(str(c) for c in learner.dls.vocab)
        extra = sorted({type(cb).__name__ for cb in learner.cbs} - STANDARD_CALLBACKS)
        self.path = "get_preds" if extra else "direct"
        if extra:
            logger.info("learner has callbacks %s: predicting through get_preds", extra)
        self._copy: torch.nn.Module | None = None

    @property
    def exact(self) -> bool:
        """True when the numbers are ``get_preds``'s on this device (no bf16, no channels-last)."""
        return not (self.bf16 or self.channels_last)

    def describe(self) -> dict[str, Any]:
        """Engine, options, device and preprocessing (JSON-ready; the cache keys on it)."""
        return {
            "engine": self.name,
            "device": self.device,
            "batch_size": self.batch_size,
            "bf16": self.bf16,
            "channels_last": self.channels_last,
            "exact": self.exact,
            "path": self.path,
            "preprocessing": describe_preprocessing(self.learner),
        }

    def predict(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Probabilities for ``images``, shape ``(n, n_classes)``, float64."""
        if not images:
            return np.zeros((0, len(self.classes)))
        if self.path == "get_preds":
            return self._get_preds(images)
        import torch

        outputs = []
        with self._model() as model, torch.inference_mode(), self._autocast(), _full_fp32():
            for x in preprocessed_batches(self.learner, images, batch_size=self.batch_size):
                x = x.to(self.device)
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                outputs.append(model(x).float())
            probabilities = activation(self.learner, torch.cat(outputs))
        return np.asarray(probabilities.cpu().numpy(), dtype=np.float64)

    def _get_preds(self, images: Sequence[Image.Image]) -> np.ndarray:
        """fastai's ``get_preds``, for learners whose callbacks may change the forward pass."""
        dl = self.learner.dls.test_dl(list(images), bs=self.batch_size, num_workers=0)
        with self._eval_restored(), self.learner.no_bar():
            probabilities, _ = self.learner.get_preds(dl=dl)
        return np.asarray(probabilities.float().numpy(), dtype=np.float64)

    @contextlib.contextmanager
    def _eval_restored(self) -> Iterator[None]:
        with _eval_mode(self.learner.model):
            yield

    @contextlib.contextmanager
    def _model(self) -> Iterator[torch.nn.Module]:
        """The learner's own model when it is already where and how it should run (its modes
        restored afterwards), else this engine's private copy, moved and converted once."""
        model = self.learner.model
        if self.exact and _model_device(model) == _canonical(self.device):
            with _eval_mode(model):
                yield model
            return
        if self._copy is None:
            import torch

            private = copy.deepcopy(model).to(self.device).eval()
            if self.channels_last:
                private = private.to(memory_format=torch.channels_last)
            self._copy = private
        yield self._copy

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if not self.bf16:
            return contextlib.nullcontext()
        import torch

        return torch.autocast(
            device_type=_canonical(self.device).split(":")[0], dtype=torch.bfloat16
        )


@contextlib.contextmanager
def _full_fp32() -> Iterator[None]:
    """cuDNN convolutions in full float32 (no TF32), its other settings unchanged: TF32 moves
    probabilities by about 1e-3 against the CPU's, and the ``fastai`` engine promises 1e-6."""
    import torch

    cudnn = torch.backends.cudnn
    with cudnn.flags(
        enabled=cudnn.enabled,
        benchmark=cudnn.benchmark,
        deterministic=cudnn.deterministic,
        allow_tf32=False,
    ):
        yield


def _check_device(device: str) -> None:
    """Refuse a device torch cannot use here, with the reason."""
    import torch

    try:
        kind = torch.device(device).type
    except RuntimeError as error:
        raise InputError(f"unknown device {device!r} ({error})") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} asked for, but torch sees no CUDA device here")


def _canonical(device: str) -> str:
    """``"cuda"`` as torch reports a parameter's device (``"cuda:0"``)."""
    import torch

    return str(torch.device(device)) if device != "cuda" else f"cuda:{torch.cuda.current_device()}"


def make_engine(
    learner: Learner,
    name: str = "fastai",
    *,
    batch_size: int | None = None,
    device: str | None = None,
    bf16: bool = False,
    channels_last: bool = False,
    cache_dir: str | Path | None = None,
    model_hash: str | None = None,
    calibration_images: Sequence[Image.Image] | None = None,
    check_size: int = 32,
    keep_export: bool = True,
) -> Engine:
    """The engine called ``name`` (one of :data:`ENGINES`) for ``learner``.

    Parameters
    ----------
    learner
        The fastai learner; no engine changes its state.
    name
        ``"fastai"`` (default), ``"onnx"`` or ``"onnx-int8"``.
    batch_size
        Images per forward pass; default: :func:`default_batch_size` (8 for ``fastai`` on the
        CPU, else 64).
    device, bf16, channels_last
        ``fastai`` only: see :class:`FastaiEngine`.
    cache_dir
        ONNX engines: the folder of exported ``.onnx`` files (default: the user's cache folder,
        see :func:`asl_eval.inference.onnx_engine.default_cache_dir`).
    model_hash
        ONNX engines: the model file's content hash, which names its exported files (default: a
        hash of the weights).
    calibration_images
        ``onnx-int8`` only, required: in-domain RGB images to calibrate the quantization on
        (a hundred or so, from the training or validation split).
    check_size
        ONNX engines: how many of the first images predicted are checked against the
        ``fastai`` engine.
    keep_export
        ONNX engines: keep the exported file in ``cache_dir`` for the next run (default); with
        False (``report --no-cache``) it is exported into a temporary folder and deleted.

    Raises
    ------
    InputError
        Unknown engine, options that do not apply to it, or the ``fast`` extra missing.
    """
    if name == "fastai":
        return FastaiEngine(
            learner, batch_size=batch_size, device=device, bf16=bf16, channels_last=channels_last
        )
    if name in ("onnx", "onnx-int8"):
        if bf16 or channels_last or device not in (None, "cpu"):
            raise InputError(
                f"bf16, channels_last and device apply to the fastai engine, not {name}"
            )
        from asl_eval.inference.onnx_engine import OnnxEngine

        return OnnxEngine(
            learner,
            quantize=name == "onnx-int8",
            batch_size=batch_size,
            cache_dir=cache_dir,
            model_hash=model_hash,
            calibration_images=calibration_images,
            check_size=check_size,
            keep_export=keep_export,
        )
    raise InputError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
