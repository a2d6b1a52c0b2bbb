"""The model stage: images in, a :class:`~asl_eval.predictions.Predictions` out.

- :mod:`~asl_eval.inference.run`: a folder or a list of labelled files predicted in fixed
  chunks, every file accounted for in the ledger, each image's content hash recorded;
- :mod:`~asl_eval.inference.decode`: files read once, hashed and decoded on a thread pool, a
  chunk ahead of the model;
- :mod:`~asl_eval.inference.cache`: the predictions cache, by model, engine, versions and
  image content hash (data-only files, checked before use), which also makes runs resumable;
- :mod:`~asl_eval.inference.model_file`: a model file that is loaded only when an image must
  really be predicted;
- :mod:`~asl_eval.inference.engines`: what turns decoded images into probabilities (fastai's
  own pipeline by default);
- :mod:`~asl_eval.inference.onnx_engine` and :mod:`~asl_eval.inference.onnx_export`: the ONNX
  Runtime engines, and the exported (and quantized) files they cache and verify;
- :mod:`~asl_eval.inference.features` and :mod:`~asl_eval.inference.feature_cache`: the model's
  penultimate features for the embedding audit, and their cache.

Layer: above :mod:`asl_eval.trust`, below :mod:`asl_eval.training` and :mod:`asl_eval.cam`.
fastai and torch only through the learner it is given, inside the engines.
"""

from __future__ import annotations

from asl_eval.inference.cache import ChunkStore, PredictionCache, default_cache_dir, model_key
from asl_eval.inference.engines import ENGINES, Engine, FastaiEngine, make_engine
from asl_eval.inference.model_file import LazyModel
from asl_eval.inference.run import model_classes, predict_files, predict_folder, predict_images

__all__ = [
    "ENGINES",
    "ChunkStore",
    "Engine",
    "FastaiEngine",
    "LazyModel",
    "PredictionCache",
    "default_cache_dir",
    "make_engine",
    "model_classes",
    "model_key",
    "predict_files",
    "predict_folder",
    "predict_images",
]
