"""Heatmaps for chosen rows of stored predictions: each image read again, explained for its
predicted and its true class in one pass, and (for some rows) scored for faithfulness.

An image that can no longer be read is recorded with its reason, never dropped silently.

Imports numpy, :mod:`asl_eval.predictions`, :mod:`asl_eval.inputs`, :mod:`asl_eval.errors` and
the cam modules engine, explain and faithfulness.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from asl_eval.cam.engine import CamMethod
from asl_eval.cam.explain import explain_images
from asl_eval.cam.faithfulness import Faithfulness, faithfulness_scores
from asl_eval.errors import UnreadableImage
from asl_eval.predictions import Predictions

if TYPE_CHECKING:
    from fastai.learner import Learner
    from PIL import Image

__all__ = ["ExplainedRows", "explain_rows", "load_rows", "score_heatmaps"]


@dataclass
class ExplainedRows:
    """Heatmaps of some rows of one set.

    ``rows`` are the explained rows (those whose image could be read), ``position[row]`` the
    row's index in the arrays.
    """

    rows: list[int]
    cams: np.ndarray  # (2, n, H, W): predicted class, true class
    images: np.ndarray  # (n, H, W, 3) RGB uint8, as the model saw them
    faithfulness: np.ndarray  # (2, n)
    map_size: tuple[int, int]
    position: dict[int, int] = field(init=False)

    def __post_init__(self) -> None:
        self.position = {row: i for i, row in enumerate(self.rows)}


def load_rows(
    predictions: Predictions, rows: Sequence[int], skipped: list[tuple[str, str]]
) -> tuple[list[int], list[Image.Image]]:
    """The rows whose image can be read again, and the images; the others go to ``skipped``."""
    from asl_eval.inputs import load_rgb

    kept: list[int] = []
    images: list[Image.Image] = []
    for row in dict.fromkeys(rows):
        try:
            images.append(load_rgb(predictions.paths[row]))
        except UnreadableImage as error:
            skipped.append((predictions.paths[row], error.reason))
            continue
        kept.append(row)
    return kept, images


def score_heatmaps(
    learner: Learner,
    images: Sequence[Image.Image],
    cams: np.ndarray,
    y_pred: np.ndarray,
    y_true: np.ndarray,
    metric: Faithfulness,
) -> np.ndarray:
    """Faithfulness ``(2, n)`` of the predicted- and the true-class heatmaps of ``images``
    (computed once when both classes are the same)."""
    scores = np.full((2, len(images)), np.nan)
    if metric == "none" or not len(images):
        return scores
    everyone = list(range(len(images)))
    scores[0] = faithfulness_scores(learner, images, cams[0], y_pred.tolist(), metric=metric)
    wrong = [i for i in everyone if y_pred[i] != y_true[i]]
    same = [i for i in everyone if y_pred[i] == y_true[i]]
    scores[1, same] = scores[0, same]
    if wrong:
        scores[1, wrong] = faithfulness_scores(
            learner,
            [images[i] for i in wrong],
            cams[1, wrong],
            y_true[wrong].tolist(),
            metric=metric,
        )
    return scores


def explain_rows(
    learner: Learner,
    predictions: Predictions,
    rows: Sequence[int],
    scored: set[int],
    *,
    method: CamMethod,
    layer: str,
    faithfulness: Faithfulness,
    batch_size: int,
    skipped: list[tuple[str, str]],
) -> tuple[ExplainedRows, int]:
    """Heatmaps of ``rows`` of one set for the predicted and the true class, faithfulness of
    the ``scored`` rows, and how many are now predicted differently than stored."""
    kept, images = load_rows(predictions, rows, skipped)
    y_pred, y_true = predictions.y_pred[kept], predictions.y_true[kept]
    result = explain_images(
        learner,
        images,
        [y_pred.tolist(), y_true.tolist()],
        method=method,
        layer=layer,
        batch_size=batch_size,
    )
    mismatches = int((result.y_proba.argmax(axis=1) != y_pred).sum()) if kept else 0
    scores = np.full((2, len(kept)), np.nan)
    at = [i for i, row in enumerate(kept) if row in scored]
    if at:
        scores[:, at] = score_heatmaps(
            learner,
            [images[i] for i in at],
            result.cams[:, at],
            y_pred[at],
            y_true[at],
            faithfulness,
        )
    explained = ExplainedRows(kept, result.cams, result.images, scores, result.map_size)
    return explained, mismatches
