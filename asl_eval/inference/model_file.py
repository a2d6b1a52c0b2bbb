"""A model file as an engine that loads the model only when a prediction needs it.

:class:`LazyModel` answers what the loop and the report ask before predicting (the classes,
the engine's description, the input size, the architecture) from the predictions cache's model
record when there is one, and loads the model (through :func:`asl_eval.trust.load_learner_file`)
the first time an image must really be predicted, or when nothing is recorded. A pickle that
is not loaded is still scanned (:func:`asl_eval.trust.refused_imports`), so a cached report
refuses an unsafe model exactly as a fresh one does.

Layer: inside :mod:`asl_eval.inference`; imports :mod:`asl_eval.trust` and the engines; torch
and fastai only when the model is loaded.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from asl_eval.inference.cache import ModelRecord, PredictionCache
from asl_eval.inference.engines import (
    CPU_BATCH_SIZE,
    DEFAULT_BATCH_SIZE,
    Engine,
    make_engine,
)

if TYPE_CHECKING:
    from fastai.learner import Learner
    from PIL import Image

__all__ = ["LazyModel"]

logger = logging.getLogger(__name__)


def _gpu_hint() -> dict[str, object]:
    """What decides whether torch may find a GPU, read without importing torch (the cached
    engine description is looked up by it; the description itself names the device)."""
    return {
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "nvidia_driver": Path("/proc/driver/nvidia/version").exists(),
    }


def _request_batch_size(
    engine: str, batch_size: int | None, options: Mapping[str, Any]
) -> int | None:
    """The batch size an engine request will run with where that is certain without importing
    torch (the ONNX engines run on the CPU; so does an explicit CPU device), else as given (None:
    the engine's default, decided once torch has looked for a GPU)."""
    if batch_size is not None:
        return batch_size
    if engine != "fastai":
        return DEFAULT_BATCH_SIZE
    device = options.get("device")
    if device is not None and str(device).split(":")[0] == "cpu":
        return CPU_BATCH_SIZE
    return None


class LazyModel:
    """A model file that implements :class:`~asl_eval.inference.engines.Engine`, lazily.

    Parameters
    ----------
    model_file
        A fastai export (.pkl) or a safe-format ``.safetensors`` (or its ``.json``).
    engine
        The engine's name (one of :data:`~asl_eval.inference.engines.ENGINES`).
    batch_size
        The engine's batch size (default: the engine's own for its device).
    trust_model
        As for :func:`asl_eval.trust.load_learner_file`.
    cache
        The predictions cache for ``model_file``, whose model record answers without a load;
        None to always load.
    arch
        The architecture's name for the report, when known (say, from a training record);
        default: the model's class name once loaded.
    engine_options
        More keywords for :func:`~asl_eval.inference.engines.make_engine` (``bf16``,
        ``channels_last``, ``device``); they are part of the cache's key. The ONNX engines get
        the model's hash and an export cache folder under the predictions cache.
    calibration
        Called once, when ``onnx-int8`` is made, for its in-domain calibration images.
    """

    def __init__(
        self,
        model_file: str | Path,
        *,
        engine: str = "fastai",
        batch_size: int | None = None,
        trust_model: bool = False,
        cache: PredictionCache | None = None,
        arch: str | None = None,
        engine_options: Mapping[str, Any] | None = None,
        calibration: Callable[[], Sequence[Image.Image]] | None = None,
    ) -> None:
        self.model_file = Path(model_file)
        self.name = engine
        self.batch_size = batch_size
        self.trust_model = trust_model
        self.cache = cache
        self._arch = arch
        self.engine_options = dict(engine_options or {})
        self.calibration = calibration
        self._learner: Learner | None = None
        self._engine: Engine | None = None
        self._request = self._request_key(batch_size)
        self._record = cache.read_model_record() if cache is not None else None
        if self._record is not None:
            self._scan()

    def _request_key(self, batch_size: int | None) -> str:
        """The key the model record keeps this engine's description under (empty without a
        cache)."""
        if self.cache is None:
            return ""
        options = {
            "batch_size": _request_batch_size(self.name, batch_size, self.engine_options),
            **self.engine_options,
            **_gpu_hint(),
        }
        return self.cache.request_key(self.name, options)

    def _scan(self) -> None:
        """Refuse an unsafe pickle that is not going to be loaded, as loading would."""
        from asl_eval.trust import is_safe_format, refused_imports
        from asl_eval.trust.policy import unsafe_model_error

        if self.trust_model or is_safe_format(self.model_file):
            return
        refused = refused_imports(self.model_file)
        if refused:
            raise unsafe_model_error(self.model_file, refused)

    @property
    def loaded(self) -> bool:
        """Whether the model has been loaded."""
        return self._learner is not None

    @property
    def learner(self) -> Learner:
        """The loaded learner (loads the model the first time)."""
        if self._learner is None:
            from asl_eval.trust import load_learner_file

            logger.info("loading %s", self.model_file)
            self._learner = load_learner_file(self.model_file, trust_model=self.trust_model)
        return self._learner

    @property
    def engine(self) -> Engine:
        """The engine on the loaded learner (loads the model the first time)."""
        if self._engine is None:
            self._engine = make_engine(
                self.learner, self.name, batch_size=self.batch_size, **self._make_options()
            )
            self._remember()
        return self._engine

    def _make_options(self) -> dict[str, Any]:
        """``make_engine``'s keywords beyond the name and batch size."""
        options = dict(self.engine_options)
        if self.name != "fastai":
            from asl_eval.inference.cache import model_key

            key = self.cache.model_key if self.cache is not None else model_key(self.model_file)
            options.setdefault("model_hash", key)
            if self.cache is not None:
                options.setdefault("cache_dir", self.cache.root / "onnx")
            else:
                options.setdefault("keep_export", False)  # --no-cache leaves nothing behind
        if self.name == "onnx-int8" and self.calibration is not None:
            options.setdefault("calibration_images", list(self.calibration()))
        return options

    def _remember(self) -> None:
        """Write what was learnt by loading into the cache's model record."""
        if self.cache is None or self._engine is None:
            return
        record = self._record
        engines = dict(record.engines) if record is not None else {}
        description = self._engine.describe()
        engines[self._request] = description
        ran_with = description.get("batch_size")
        if self.batch_size is None and isinstance(ran_with, int):
            # the default, as the batch size it came to: a later explicit request for that size
            # finds this description without loading the model
            engines[self._request_key(ran_with)] = description
        if record is not None and record.classes != self._engine.classes:
            logger.warning("the cached classes of %s were stale; replaced", self.model_file)
        self._record = ModelRecord(
            classes=self._engine.classes,
            input_size=self._loaded_input_size(),
            arch=self._loaded_arch(),
            engines=engines,
        )
        self.cache.write_model_record(self._record)

    def _loaded_input_size(self) -> tuple[int, int] | None:
        from asl_eval.trust import input_size

        return input_size(self.learner)

    def _loaded_arch(self) -> str:
        return self._arch or type(self.learner.model).__name__

    @property
    def classes(self) -> tuple[str, ...]:
        """The model's classes, in its order."""
        if self._engine is None and self._record is not None:
            return self._record.classes
        return self.engine.classes

    @property
    def input_size(self) -> tuple[int, int] | None:
        """The ``(height, width)`` the model resizes to, or None."""
        if self._engine is None and self._record is not None:
            return self._record.input_size
        return self._loaded_input_size()

    @property
    def arch(self) -> str:
        """The architecture's name for the report."""
        if self._arch is None and self._learner is None and self._record is not None:
            return self._record.arch
        return self._loaded_arch()

    def describe(self) -> dict[str, Any]:
        """The engine's description: the cached one until the model is loaded."""
        if self._engine is None and self._record is not None:
            cached = self._record.engines.get(self._request)
            if cached is not None:
                return dict(cached)
        return self.engine.describe()

    def predict(self, images: Sequence[Image.Image]) -> np.ndarray:
        """The engine's probabilities (loads the model the first time)."""
        return self.engine.predict(images)
