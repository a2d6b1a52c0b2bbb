"""Faithfulness: a per-image score of whether a heatmap singles out the pixels the model uses.

The scores come from ``pytorch_grad_cam.metrics`` through the adapter
(:func:`asl_eval.cam.engine.score_faithfulness`).

Imports numpy, :mod:`asl_eval.errors`, :mod:`asl_eval.inference` (the learner's classes) and
the cam modules engine, explain (targets to indices) and preprocess.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np

from asl_eval.cam.engine import score_faithfulness
from asl_eval.cam.explain import Target, class_indices
from asl_eval.cam.preprocess import learner_batches
from asl_eval.errors import CamError
from asl_eval.inference import model_classes

if TYPE_CHECKING:
    from fastai.learner import Learner
    from PIL import Image

__all__ = [
    "FAITHFULNESS_METRICS",
    "ROAD_PERCENTILES",
    "Faithfulness",
    "check_faithfulness",
    "faithfulness_higher_is_better",
    "faithfulness_scores",
]

Faithfulness = Literal["road", "confidence_drop", "none"]
FAITHFULNESS_METRICS: tuple[str, ...] = get_args(Faithfulness)

#: Removal percentiles of the ROAD faithfulness score (pytorch-grad-cam uses 10..90 by 10).
ROAD_PERCENTILES: tuple[int, ...] = (20, 40, 60, 80)


def check_faithfulness(metric: str) -> None:
    """Raise a :class:`CamError` unless ``metric`` is one of :data:`FAITHFULNESS_METRICS`."""
    if metric not in FAITHFULNESS_METRICS:
        raise CamError(
            f"Unknown faithfulness metric {metric!r}; expected one of "
            f"{', '.join(FAITHFULNESS_METRICS)}."
        )


def faithfulness_higher_is_better(metric: Faithfulness) -> bool:
    """Whether a higher score of ``metric`` means a more faithful heatmap.

    >>> faithfulness_higher_is_better("road"), faithfulness_higher_is_better("confidence_drop")
    (True, False)
    """
    return metric != "confidence_drop"


def faithfulness_scores(
    learner: Learner,
    images: Sequence[str | Path | Image.Image | np.ndarray],
    cams: np.ndarray,
    targets: Target | Sequence[Target],
    *,
    metric: Faithfulness = "road",
    batch_size: int = 32,
) -> np.ndarray:
    """Per-image score of whether a heatmap means anything, from ``pytorch_grad_cam.metrics``.

    Parameters
    ----------
    learner
        The model the heatmaps explain.
    images
        The explained images (paths, PIL images or RGB ``uint8`` arrays).
    cams
        Their heatmaps, ``(n, H, W)`` at the model input size (from :func:`compute_cams`).
    targets
        The explained class of each image (names or indices), or one for all.
    metric
        ``"road"``: ROAD combined score (Rong et al., 2022) on the softmax probability of the
        target class, over removal percentiles :data:`ROAD_PERCENTILES`: the mean of
        (probability change when the least relevant pixels are imputed) minus (change when the
        most relevant are), halved. Higher is better; near 0 means the heatmap does not single
        out the pixels the model uses; negative means it points at the wrong ones.
        ``"confidence_drop"``: the drop of the target probability when the image is multiplied
        by the heatmap (0 when it rises); lower is better. ``"none"`` gives NaN. The
        imputation noise is seeded, so scores repeat.
    batch_size
        Images per forward pass.

    Returns
    -------
    numpy.ndarray
        ``float64`` ``(n,)``.

    Raises
    ------
    CamError
        Unknown metric or class, or heatmaps of another shape than the images' model input.
    """
    check_faithfulness(metric)
    items = list(images)
    cams = np.asarray(cams)
    if cams.ndim != 3 or cams.shape[0] != len(items):
        raise CamError(f"Expected cams of shape ({len(items)}, H, W); got {cams.shape}.")
    indices = class_indices(targets, len(items), model_classes(learner))
    if indices is None:  # pragma: no cover - targets is required by the signature
        raise CamError("faithfulness_scores needs the explained class of each image.")
    if metric == "none":
        return np.full(len(items), np.nan)
    scores = []
    batches = learner_batches(learner, items, batch_size)
    for start, (batch, _) in zip(range(0, len(items), batch_size), batches, strict=True):
        stop = start + batch.shape[0]
        if tuple(batch.shape[-2:]) != cams.shape[1:]:
            raise CamError(
                f"cams are {cams.shape[1:]} but the model input is {tuple(batch.shape[-2:])}; "
                "pass heatmaps from compute_cams for the same images."
            )
        scores.append(
            score_faithfulness(
                learner.model,
                batch,
                cams[start:stop],
                indices[start:stop],
                metric,
                percentiles=ROAD_PERCENTILES,
            )
        )
    return np.concatenate(scores) if scores else np.zeros(0)
