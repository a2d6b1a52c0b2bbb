"""The report's Grad-CAM analysis: the failing classes of an out-of-domain set explained, as
an :class:`~asl_eval.analysis.AnalysisResult` named ``"cam"`` (PNG bytes and numbers, so the
report renders it without torch).

The result's shape (the report's ``asl_eval/report/cam_section.py`` reads it):

``items``, one row per explained image, class galleries first (worst class first), then the
highest-loss images: ``group`` (``"class"`` or ``"top_losses"``), ``class`` (the gallery's
class; ``None`` for the top losses), ``path``, ``set``, ``true_class``, ``pred_class``,
``proba_true``, ``proba_pred``, ``loss``, ``correct``, ``faithfulness_pred``,
``faithfulness_true``, ``outside_mass_pred`` and ``outside_mass_true`` (the share of the
predicted- and true-class heatmap's mass outside the hand, :mod:`asl_eval.cam.hand`; NaN when
no hand is found), and the PNGs ``image_png`` (the input as the model saw it),
``pred_png`` and ``true_png`` (heatmaps for the predicted and the true class over it).

``summary``, one row: ``method``, ``layer``, ``map_height``, ``map_width`` (the target layer's
feature map: the heatmaps' real resolution), ``ood_set``, ``in_domain_set``, ``selected_by``
(``"lowest_accuracy"`` or ``"by_hand"``), ``faithfulness_metric``,
``faithfulness_higher_is_better``, ``n_classes``, ``n_images``, ``n_skipped``,
``n_prediction_mismatches``.

``info``: ``classes`` (DataFrame, one row per explained class: ``class``, ``ood_accuracy``,
``n_ood_images``, ``n_ood_misclassified``, ``mean_faithfulness`` (over the class's gallery
images, predicted-class heatmaps), ``n_faithfulness`` (how many images that mean is over),
``mean_outside_mass`` (likewise, of ``outside_mass_pred``)), ``means`` (DataFrame, one
row per mean heatmap: ``class``, ``set``, ``role`` (``"in_domain"`` or ``"out_of_domain"``),
``n_images``, ``overlay_png``), ``mean_heatmaps`` (``float32`` ``(len(means), H, W)``),
``heatmaps`` (``float32`` ``(len(items), 2, H, W)``: predicted, true class) and ``skipped``
(DataFrame ``path``, ``reason``: images that could not be read again).

Imports numpy, pandas, :mod:`asl_eval.analysis`, :mod:`asl_eval.predictions`,
:mod:`asl_eval.inputs`, :mod:`asl_eval.inference`, :mod:`asl_eval.errors`,
:mod:`asl_eval.progress` and the other cam
modules; never :mod:`asl_eval.report` (which sits above this stage).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from asl_eval.analysis import AnalysisResult
from asl_eval.cam.engine import CamMethod, check_method
from asl_eval.cam.faithfulness import (
    Faithfulness,
    check_faithfulness,
    faithfulness_higher_is_better,
)
from asl_eval.cam.hand import hand_masks, outside_mass
from asl_eval.cam.layers import resolve_layer
from asl_eval.cam.overlay import overlay, png_bytes
from asl_eval.cam.preprocess import learner_input_size
from asl_eval.cam.rows import ExplainedRows, explain_rows
from asl_eval.cam.selection import CamSelection, select_cam_images, spread
from asl_eval.errors import CamError, LabelError, first_few
from asl_eval.inference import model_classes
from asl_eval.predictions import Predictions
from asl_eval.progress import Progress, notify

if TYPE_CHECKING:
    from fastai.learner import Learner

__all__ = ["ITEM_COLUMNS", "SUMMARY_COLUMNS", "build_cam_section"]

logger = logging.getLogger(__name__)

ITEM_COLUMNS: tuple[str, ...] = (
    "group",
    "class",
    "path",
    "set",
    "true_class",
    "pred_class",
    "proba_true",
    "proba_pred",
    "loss",
    "correct",
    "faithfulness_pred",
    "faithfulness_true",
    "outside_mass_pred",
    "outside_mass_true",
    "image_png",
    "pred_png",
    "true_png",
)
"""The columns of the result's ``items`` table, in order."""

SUMMARY_COLUMNS: tuple[str, ...] = (
    "method",
    "layer",
    "map_height",
    "map_width",
    "ood_set",
    "in_domain_set",
    "selected_by",
    "faithfulness_metric",
    "faithfulness_higher_is_better",
    "n_classes",
    "n_images",
    "n_skipped",
    "n_prediction_mismatches",
)
"""The columns of the result's one-row ``summary``, in order."""


@dataclass(frozen=True)
class _Plan:
    """What to explain and how: the selection, the sets, the rows of each set averaged per
    class, and the method, layer and faithfulness metric."""

    selection: CamSelection
    ood_set: str
    in_domain_set: str | None
    mean_rows: dict[str, dict[str, list[int]]]  # set -> class -> rows
    method: CamMethod
    layer: str
    faithfulness: Faithfulness
    batch_size: int


# -- arguments -------------------------------------------------------------------------------
def _check_arguments(
    learner: Learner,
    sets: Mapping[str, Predictions],
    ood_set: str,
    in_domain_set: str | None,
) -> str | None:
    """The in-domain set's name (default: the first other set), once the sets are checked."""
    for name in (ood_set, in_domain_set):
        if name is not None and name not in sets:
            raise CamError(
                f"No evaluation set named {name!r}; the sets are {first_few(list(sets))}."
            )
    classes = model_classes(learner)
    for name, predictions in sets.items():
        if predictions.classes != classes:
            raise LabelError(
                f"Predictions {name!r} were made with classes {first_few(predictions.classes, 8)}"
                f" but the model has {first_few(classes, 8)}; explain them with the model that "
                "made them."
            )
    if in_domain_set is None:
        in_domain_set = next((name for name in sets if name != ood_set), None)
    return in_domain_set


def _choose_layer(learner: Learner, layer: str | None) -> str:
    """The target layer's name, chosen once for every set (for the model's input size)."""
    shape = learner_input_size(learner) if layer is None else None
    if shape is None:
        return resolve_layer(learner.model, layer)[0]
    channels, height, width = shape
    return resolve_layer(learner.model, None, input_size=(height, width), channels=channels)[0]


def _mean_rows(
    sets: Mapping[str, Predictions],
    selection: CamSelection,
    ood_set: str,
    in_domain_set: str | None,
    n_mean: int,
) -> dict[str, dict[str, list[int]]]:
    """Per set (out-of-domain, in-domain) and explained class: up to ``n_mean`` rows, spread."""
    index_of = {c: i for i, c in enumerate(sets[ood_set].classes)}
    mean_rows: dict[str, dict[str, list[int]]] = {}
    for set_name in (ood_set, in_domain_set):
        if set_name is not None:
            y_true = sets[set_name].y_true
            mean_rows[set_name] = {
                c: spread(np.flatnonzero(y_true == index_of[c]), n_mean) for c in selection.classes
            }
    return mean_rows


# -- heatmaps --------------------------------------------------------------------------------
def _explain_sets(
    learner: Learner,
    sets: Mapping[str, Predictions],
    plan: _Plan,
    progress: Progress = None,
) -> tuple[dict[str, ExplainedRows], int, list[tuple[str, str]]]:
    """Every set's heatmaps (the OOD set: galleries, top losses and mean rows), the number of
    prediction mismatches, and the images that could not be read again."""
    selection = plan.selection
    gallery_rows = [r for rows in selection.per_class.values() for r in rows]
    scored = set(gallery_rows) | set(selection.top_losses)
    skipped: list[tuple[str, str]] = []
    explained: dict[str, ExplainedRows] = {}
    mismatches = 0
    planned: dict[str, list[int]] = {}
    for set_name, by_class in plan.mean_rows.items():
        rows = [r for rs in by_class.values() for r in rs]
        if set_name == plan.ood_set:
            rows = [*gallery_rows, *selection.top_losses, *rows]
        planned[set_name] = rows
    total, done = sum(len(rows) for rows in planned.values()), 0
    notify(progress, "cam", plan.ood_set, done, total)
    for set_name, rows in planned.items():
        explained[set_name], n_wrong = explain_rows(
            learner,
            sets[set_name],
            rows,
            scored if set_name == plan.ood_set else set(),
            method=plan.method,
            layer=plan.layer,
            faithfulness=plan.faithfulness,
            batch_size=plan.batch_size,
            skipped=skipped,
        )
        mismatches += n_wrong
        done += len(rows)
        notify(progress, "cam", plan.ood_set, done, total)
    return explained, mismatches, list(dict.fromkeys(skipped))


# -- tables ----------------------------------------------------------------------------------
def _item_record(
    predictions: Predictions, explained: ExplainedRows, row: int, size: int
) -> tuple[dict[str, object], np.ndarray] | None:
    """One explained image's row of ``items`` and its two heatmaps; ``None`` if skipped."""
    at = explained.position.get(row)
    if at is None:
        return None
    picture = explained.images[at]
    true_index, pred_index = int(predictions.y_true[row]), int(predictions.y_pred[row])
    cam_pred, cam_true = explained.cams[0, at], explained.cams[1, at]
    (hand,) = hand_masks(picture[None])
    record: dict[str, object] = {
        "path": predictions.paths[row],
        "set": predictions.name,
        "true_class": predictions.classes[true_index],
        "pred_class": predictions.classes[pred_index],
        "proba_true": float(predictions.y_proba[row, true_index]),
        "proba_pred": float(predictions.y_proba[row, pred_index]),
        "loss": float(predictions.loss[row]),
        "correct": true_index == pred_index,
        "faithfulness_pred": float(explained.faithfulness[0, at]),
        "faithfulness_true": float(explained.faithfulness[1, at]),
        "outside_mass_pred": outside_mass(cam_pred, hand),
        "outside_mass_true": outside_mass(cam_true, hand),
        "image_png": png_bytes(picture, size=size),
        "pred_png": png_bytes(overlay(picture, cam_pred), size=size),
        "true_png": png_bytes(overlay(picture, cam_true), size=size),
    }
    return record, np.stack([cam_pred, cam_true])


def _items(
    ood: Predictions, explained: ExplainedRows, selection: CamSelection, size: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """The ``items`` table (galleries, then top losses) and the heatmaps ``(n, 2, H, W)``."""
    groups: list[tuple[str, str | None, tuple[int, ...]]] = [
        ("class", c, rows) for c, rows in selection.per_class.items()
    ]
    groups.append(("top_losses", None, selection.top_losses))
    records: list[dict[str, object]] = []
    heatmaps: list[np.ndarray] = []
    for group, name, rows in groups:
        for row in rows:
            found = _item_record(ood, explained, row, size)
            if found is not None:
                records.append({"group": group, "class": name, **found[0]})
                heatmaps.append(found[1])
    height, width = explained.cams.shape[-2:] if explained.cams.ndim == 4 else (0, 0)
    stacked = np.stack(heatmaps) if heatmaps else np.zeros((0, 2, height, width))
    return pd.DataFrame(records, columns=list(ITEM_COLUMNS)), stacked.astype(np.float32)


def _mean_record(
    name: str, predictions: Predictions, explained: ExplainedRows, rows: Sequence[int], size: int
) -> tuple[dict[str, object], np.ndarray] | None:
    """The mean true-class heatmap over ``rows``, as a ``means`` row and an array."""
    at = [explained.position[r] for r in rows if r in explained.position]
    if not at:
        return None
    cam = explained.cams[1, at].mean(axis=0)
    mean_image = np.asarray(explained.images[at].mean(axis=0).round(), dtype=np.uint8)
    record: dict[str, object] = {
        "class": name,
        "set": predictions.name,
        "n_images": len(at),
        "overlay_png": png_bytes(overlay(mean_image, np.clip(cam, 0.0, 1.0)), size=size),
    }
    return record, cam


def _means(
    sets: Mapping[str, Predictions],
    explained: Mapping[str, ExplainedRows],
    plan: _Plan,
    size: int,
) -> tuple[pd.DataFrame, np.ndarray]:
    """The ``means`` table (per class: in-domain, then out-of-domain) and its heatmaps."""
    records: list[dict[str, object]] = []
    maps: list[np.ndarray] = []
    for name in plan.selection.classes:
        for set_name, by_class in sorted(
            plan.mean_rows.items(), key=lambda i: i[0] == plan.ood_set
        ):
            role = "out_of_domain" if set_name == plan.ood_set else "in_domain"
            found = _mean_record(name, sets[set_name], explained[set_name], by_class[name], size)
            if found is not None:
                records.append({**found[0], "role": role})
                maps.append(found[1])
    columns = ["class", "set", "role", "n_images", "overlay_png"]
    stacked = np.stack(maps).astype(np.float32) if maps else np.zeros((0, 0, 0), np.float32)
    return pd.DataFrame(records, columns=columns), stacked


def _classes_table(ood: Predictions, selection: CamSelection, items: pd.DataFrame) -> pd.DataFrame:
    """One row per explained class: its OOD accuracy, counts, and the mean faithfulness and
    outside-the-hand mass of its gallery images' predicted-class heatmaps."""
    records = []
    for name in selection.classes:
        of_class = ood.y_true == ood.classes.index(name)
        gallery = items[(items["group"] == "class") & (items["class"] == name)]
        scores = gallery["faithfulness_pred"].dropna()
        outside = gallery["outside_mass_pred"].dropna()
        records.append(
            {
                "class": name,
                "ood_accuracy": selection.class_accuracy[name],
                "n_ood_images": int(of_class.sum()),
                "n_ood_misclassified": int((of_class & (ood.y_true != ood.y_pred)).sum()),
                "mean_faithfulness": float(scores.mean()) if len(scores) else float("nan"),
                "n_faithfulness": len(scores),
                "mean_outside_mass": float(outside.mean()) if len(outside) else float("nan"),
            }
        )
    columns = [
        "class",
        "ood_accuracy",
        "n_ood_images",
        "n_ood_misclassified",
        "mean_faithfulness",
        "n_faithfulness",
        "mean_outside_mass",
    ]
    return pd.DataFrame(records, columns=columns)


def _map_size(explained: Mapping[str, ExplainedRows]) -> tuple[int, int]:
    sizes = {e.map_size for e in explained.values() if e.map_size != (0, 0)}
    return max(sizes) if sizes else (0, 0)


def _result(
    sets: Mapping[str, Predictions],
    plan: _Plan,
    explained: Mapping[str, ExplainedRows],
    mismatches: int,
    skipped: list[tuple[str, str]],
    size: int,
) -> AnalysisResult:
    """The analysis: items, the one-row summary and the info tables."""
    selection, ood = plan.selection, sets[plan.ood_set]
    items, heatmaps = _items(ood, explained[plan.ood_set], selection, size)
    means, mean_heatmaps = _means(sets, explained, plan, size)
    map_height, map_width = _map_size(explained)
    summary = {
        "method": plan.method,
        "layer": plan.layer,
        "map_height": map_height,
        "map_width": map_width,
        "ood_set": plan.ood_set,
        "in_domain_set": plan.in_domain_set,
        "selected_by": "by_hand" if selection.by_hand else "lowest_accuracy",
        "faithfulness_metric": plan.faithfulness,
        "faithfulness_higher_is_better": faithfulness_higher_is_better(plan.faithfulness),
        "n_classes": len(selection.classes),
        "n_images": len(items),
        "n_skipped": len(skipped),
        "n_prediction_mismatches": mismatches,
    }
    info = {
        "classes": _classes_table(ood, selection, items),
        "means": means,
        "mean_heatmaps": mean_heatmaps,
        "heatmaps": heatmaps,
        "skipped": pd.DataFrame(skipped, columns=["path", "reason"]),
    }
    summary_frame = pd.DataFrame([summary], columns=list(SUMMARY_COLUMNS))
    return AnalysisResult("cam", items, summary_frame, info)


# -- the section -----------------------------------------------------------------------------
def build_cam_section(
    learner: Learner,
    sets: Mapping[str, Predictions],
    *,
    ood_set: str,
    in_domain_set: str | None = None,
    classes: Sequence[str] | None = None,
    k: int = 3,
    n_per_class: int = 4,
    n_top_losses: int = 4,
    n_mean: int = 16,
    method: CamMethod = "gradcam",
    layer: str | None = None,
    faithfulness: Faithfulness = "road",
    thumbnail_size: int = 160,
    batch_size: int = 32,
    progress: Progress = None,
) -> AnalysisResult:
    """Explain the failing classes of an out-of-domain set, for the report.

    Parameters
    ----------
    learner
        The model that made the predictions (checked: same classes).
    sets
        Evaluations by name, e.g. ``{"valid": ..., "massey": ...}``.
    ood_set
        The out-of-domain set whose worst classes are explained.
    in_domain_set
        The set for the in-domain mean heatmaps; default the first other set in ``sets``
        (none when ``sets`` holds only ``ood_set``).
    classes, k, n_per_class, n_top_losses
        Which images: see :func:`~asl_eval.cam.selection.select_cam_images` (``classes`` is
        ``--cam-classes``).
    n_mean
        Images per class and set averaged into the mean heatmaps (spread over the class).
    method, layer
        See :func:`~asl_eval.cam.explain.explain_images` (``--cam-method``, ``--cam-layer``);
        the automatic layer is chosen once, for the model's input size.
    faithfulness
        Per-image score of each gallery heatmap, see
        :func:`~asl_eval.cam.faithfulness.faithfulness_scores`.
    thumbnail_size
        Longer side in pixels of the PNGs.
    batch_size
        Images per forward pass.
    progress
        Called as images are explained (step ``"cam"``, named after ``ood_set``).

    Returns
    -------
    AnalysisResult
        Named ``"cam"``; its tables and info keys are listed in this module's docstring.

    Raises
    ------
    CamError
        Unknown set, class, method or layer.
    LabelError
        The predictions were made with other classes than the learner's.
    """
    method = check_method(method)
    check_faithfulness(faithfulness)
    in_domain_set = _check_arguments(learner, sets, ood_set, in_domain_set)
    selection = select_cam_images(
        sets[ood_set], classes=classes, k=k, n_per_class=n_per_class, n_top_losses=n_top_losses
    )
    plan = _Plan(
        selection=selection,
        ood_set=ood_set,
        in_domain_set=in_domain_set,
        mean_rows=_mean_rows(sets, selection, ood_set, in_domain_set, n_mean),
        method=method,
        layer=_choose_layer(learner, layer),
        faithfulness=faithfulness,
        batch_size=batch_size,
    )
    explained, mismatches, skipped = _explain_sets(learner, sets, plan, progress)
    if mismatches:
        warnings.warn(
            f"{mismatches} explained image(s) are now predicted differently than in the stored "
            "predictions: is this the model that made them?",
            stacklevel=2,
        )
    if skipped:
        logger.warning("CAM: %d image(s) could not be read again and were skipped", len(skipped))
    return _result(sets, plan, explained, mismatches, skipped, thumbnail_size)
