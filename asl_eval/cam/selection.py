"""Which images the report explains: the classes with the lowest out-of-domain accuracy (or
classes named by hand), their misclassified images first, and the highest-loss images.

Pure numpy over a :class:`Predictions`: imports numpy, :mod:`asl_eval.predictions` and
:mod:`asl_eval.errors` only (no torch).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from asl_eval.errors import CamError, first_few
from asl_eval.predictions import Predictions

__all__ = ["CamSelection", "parse_cam_classes", "select_cam_images", "spread"]


@dataclass(frozen=True)
class CamSelection:
    """Rows of an out-of-domain :class:`Predictions` to explain.

    Attributes
    ----------
    classes
        The explained classes, worst first.
    per_class
        ``per_class[c]``: the row indices of class ``c``'s images (misclassified first, then by
        decreasing loss).
    top_losses
        The highest-loss rows not already in a class gallery.
    class_accuracy
        The out-of-domain accuracy of each explained class (NaN for a class without images).
    by_hand
        Whether the classes were given rather than chosen.
    """

    classes: tuple[str, ...]
    per_class: dict[str, tuple[int, ...]]
    top_losses: tuple[int, ...]
    class_accuracy: dict[str, float]
    by_hand: bool


def parse_cam_classes(text: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """Class names from ``--cam-classes T,V,X`` (commas and/or spaces); ``None`` if empty.

    >>> parse_cam_classes("T, V,X")
    ('T', 'V', 'X')
    >>> parse_cam_classes("") is None
    True
    """
    if text is None:
        return None
    parts = text.replace(",", " ").split() if isinstance(text, str) else [str(t) for t in text]
    names = tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))
    return names or None


def _class_statistics(ood: Predictions) -> tuple[dict[str, float], dict[str, float]]:
    """Accuracy and mean loss of each class's images (NaN for a class without images)."""
    correct, loss = ood.y_true == ood.y_pred, ood.loss
    accuracy: dict[str, float] = {}
    mean_loss: dict[str, float] = {}
    for index, name in enumerate(ood.classes):
        rows = ood.y_true == index
        accuracy[name] = float(correct[rows].mean()) if rows.any() else float("nan")
        mean_loss[name] = float(loss[rows].mean()) if rows.any() else float("nan")
    return accuracy, mean_loss


def _classes_by_hand(
    ood: Predictions, classes: Sequence[str], accuracy: dict[str, float]
) -> tuple[str, ...]:
    unknown = [c for c in classes if c not in accuracy]
    if unknown:
        raise CamError(
            f"--cam-classes names {len(unknown)} class(es) the model does not have: "
            f"{first_few(unknown)}. The model's classes are {first_few(list(ood.classes), 30)}."
        )
    chosen = tuple(dict.fromkeys(classes))
    empty = [c for c in chosen if np.isnan(accuracy[c])]
    if empty:
        warnings.warn(
            f"{ood.name}: no images of class(es) {first_few(empty)}; their galleries are empty.",
            stacklevel=3,
        )
    return chosen


def _worst_classes(
    ood: Predictions, k: int, accuracy: dict[str, float], mean_loss: dict[str, float]
) -> tuple[str, ...]:
    """The ``k`` classes with images and the lowest accuracy; ties: higher mean loss first."""
    present = [c for c in ood.classes if not np.isnan(accuracy[c])]
    return tuple(sorted(present, key=lambda c: (accuracy[c], -mean_loss[c]))[:k])


def _rows_of_class(
    ood: Predictions, name: str, n: int, correct: np.ndarray, loss: np.ndarray
) -> tuple[int, ...]:
    """Up to ``n`` rows of class ``name``: misclassified first, each group by decreasing loss."""
    rows = np.flatnonzero(ood.y_true == ood.classes.index(name))
    ranked = sorted(rows.tolist(), key=lambda r: (bool(correct[r]), -loss[r], r))
    return tuple(ranked[:n])


def select_cam_images(
    ood: Predictions,
    *,
    classes: Sequence[str] | None = None,
    k: int = 3,
    n_per_class: int = 4,
    n_top_losses: int = 4,
) -> CamSelection:
    """Pick the images to explain from an out-of-domain evaluation.

    By default the ``k`` classes with the lowest accuracy (ties: higher mean loss first, then
    the model's class order) among classes with at least one image; ``classes`` picks them by
    hand. Each gets up to ``n_per_class`` of its images, misclassified first, each group by
    decreasing loss. Then the ``n_top_losses`` highest-loss images not already chosen.

    Raises
    ------
    CamError
        If a class given by hand is not one of the model's classes, or ``k`` or a count is
        negative.

    Examples
    --------
    >>> p = Predictions.from_labels(
    ...     ["A", "A", "B", "B", "C"],
    ...     np.array([[.9, .05, .05], [.2, .7, .1], [.1, .8, .1], [.6, .3, .1], [.1, .1, .8]]),
    ...     ["A", "B", "C"],
    ... )
    >>> s = select_cam_images(p, k=2, n_per_class=2, n_top_losses=1)
    >>> s.classes, s.per_class["A"], s.top_losses
    (('A', 'B'), (1, 0), (4,))
    """
    if k < 0 or n_per_class < 0 or n_top_losses < 0:
        raise CamError(
            f"k, n_per_class and n_top_losses must be >= 0; got {k}, {n_per_class}, {n_top_losses}."
        )
    accuracy, mean_loss = _class_statistics(ood)
    if classes is not None:
        chosen = _classes_by_hand(ood, classes, accuracy)
    else:
        chosen = _worst_classes(ood, k, accuracy, mean_loss)
    correct, loss = ood.y_true == ood.y_pred, ood.loss
    per_class = {c: _rows_of_class(ood, c, n_per_class, correct, loss) for c in chosen}
    taken = {r for rows in per_class.values() for r in rows}
    by_loss = sorted(range(ood.n_images), key=lambda r: (-loss[r], r))
    top = tuple(r for r in by_loss if r not in taken)[:n_top_losses]
    return CamSelection(
        classes=chosen,
        per_class=per_class,
        top_losses=top,
        class_accuracy={c: accuracy[c] for c in chosen},
        by_hand=classes is not None,
    )


def spread(rows: np.ndarray, n: int) -> list[int]:
    """Up to ``n`` of ``rows`` spread evenly over them (deterministic).

    >>> spread(np.arange(10), 3)
    [0, 4, 9]
    """
    if len(rows) <= n:
        return rows.tolist()
    picks = np.unique(np.linspace(0, len(rows) - 1, n).round().astype(int))
    return rows[picks].tolist()
