"""Check the arguments and the data of a metric, and encode the labels once.

The first two steps of every metric (torchmetrics' shape): validate the options, then validate
the data and turn it into an :class:`Encoded` object (class indices, probabilities, classes).
Everything after that works on integer arrays and never looks at labels again; ``evaluate``
encodes a :class:`~asl_eval.predictions.Predictions` once and hands the result to every reducer.

May import: numpy, pandas, :mod:`asl_eval.errors`, :mod:`asl_eval.predictions`. Nothing else
from the package (it is the bottom of ``asl_eval.metrics``), and never torch or fastai.

Labels and classes are matched by value, and integers never match strings: integer labels need
integer classes, string labels need string classes, and a mix of integer and string labels is
refused (scikit-learn refuses it too: "Mix of label input types"). So an integer label is an
index into ``classes`` exactly when the classes are ``0..k-1``, which is what they default to
for ``y_proba``; ``[1, 2]`` with ``classes=["1", "2", "3"]`` is an error, not two positions.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from asl_eval.errors import LabelError, MetricError, first_few
from asl_eval.predictions import Predictions

__all__ = [
    "ArrayLike",
    "Encoded",
    "EncodedPaired",
    "LabelsOrPredictions",
    "Normalize",
    "ProbaLike",
    "check_choice",
    "check_confidence",
    "check_count",
    "check_predictions",
    "encode_pair",
    "encode_paired",
    "encode_predictions",
    "encode_proba",
]

ArrayLike = Sequence[Hashable] | np.ndarray | pd.Series | pd.Index
LabelsOrPredictions = ArrayLike | Predictions
ProbaLike = np.ndarray | Sequence[Sequence[float]]
Normalize = Literal["true", "pred", "all"]


@dataclass(frozen=True)
class Encoded:
    """One evaluation set, validated: class indices into ``classes`` and, when known, the
    probabilities (one column per class). ``pred`` is the argmax of ``proba`` when both exist."""

    classes: tuple[Hashable, ...]
    true: np.ndarray
    pred: np.ndarray
    proba: np.ndarray | None = None

    @property
    def n_images(self) -> int:
        return int(self.true.size)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def names(self) -> np.ndarray:
        """The classes as a 1-D object array (so ``names()[indices]`` gives labels)."""
        names = np.empty(len(self.classes), dtype=object)
        names[:] = list(self.classes)
        return names


@dataclass(frozen=True)
class EncodedPaired:
    """Two models' predictions of the same images, as class indices."""

    classes: tuple[Hashable, ...]
    true: np.ndarray
    pred_a: np.ndarray
    pred_b: np.ndarray


# ------------------------------------------------------------------------------------------
# Arguments
# ------------------------------------------------------------------------------------------
def check_confidence(confidence: float, name: str = "confidence") -> None:
    """Refuse a coverage or level outside the open interval (0, 1)."""
    if not 0.0 < confidence < 1.0:
        raise MetricError(f"{name} must lie strictly between 0 and 1; got {confidence}.")


def check_count(name: str, value: object, *, minimum: int = 1) -> int:
    """Refuse anything but an integer ``>= minimum`` (booleans included) and return it."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        kind = {1: "a positive integer", 0: "a non-negative integer"}.get(
            minimum, f"an integer >= {minimum}"
        )
        raise MetricError(f"{name} must be {kind}; got {value!r}.")
    return int(value)


def check_choice(name: str, value: object, options: Sequence[object]) -> None:
    """Refuse a value outside a closed set of options (a ``Literal`` argument)."""
    if value not in options:
        allowed = ", ".join(repr(option) for option in options)
        raise MetricError(f"{name} must be one of {allowed}; got {value!r}.")


def check_predictions(value: object, what: str) -> Predictions:
    """Refuse anything but a :class:`~asl_eval.predictions.Predictions`."""
    if not isinstance(value, Predictions):
        raise MetricError(f"{what} needs a Predictions; got {type(value).__name__}.")
    return value


# ------------------------------------------------------------------------------------------
# Labels
# ------------------------------------------------------------------------------------------
def _check_classes(classes: Sequence[Hashable]) -> tuple[Hashable, ...]:
    resolved = tuple(classes)
    if not resolved:
        raise LabelError("classes is empty: pass the model's classes, for example learn.dls.vocab.")
    seen: set[Hashable] = set()
    repeated = [c for c in resolved if c in seen or seen.add(c)]  # type: ignore[func-returns-value]
    if repeated:
        raise LabelError(
            f"classes must be unique; {len(repeated)} repeated: {first_few(repeated)}. "
            "Pass each class once, in the model's order."
        )
    return resolved


def _as_1d(values: ArrayLike, what: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise MetricError(
            f"{what} must be one-dimensional (one label per image); got shape {array.shape}."
        )
    return array


def _is_integer(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _kinds(values: np.ndarray | Sequence[Hashable]) -> set[str]:
    """Which of ``"integer"`` and ``"string"`` occur among the values (booleans are neither)."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        if values.dtype.kind in "iu":
            return {"integer"}
        return {"string"} if values.dtype.kind in "US" else set()
    kinds = set()
    for value in values:
        if _is_integer(value):
            kinds.add("integer")
        elif isinstance(value, str):
            kinds.add("string")
    return kinds


def _check_kinds(values: np.ndarray, classes: tuple[Hashable, ...], what: str) -> None:
    """Refuse integer labels with non-integer classes and string labels with non-string ones."""
    label_kinds, class_kinds = _kinds(values), _kinds(classes)
    for kind in ("integer", "string"):
        if kind in label_kinds and kind not in class_kinds:
            fix = (
                "Turn class indices into names with np.asarray(classes)[indices], or pass a "
                "Predictions."
                if kind == "integer"
                else "Pass labels of the same type as classes."
            )
            examples = [repr(v) for v in pd.unique(values.astype(object)) if kind in _kinds([v])]
            raise LabelError(
                f"{what} holds {kind} labels ({first_few(examples)}) but classes hold no "
                f"{kind}s ({first_few([repr(c) for c in classes])}); labels are matched to "
                f"classes by value, and scikit-learn likewise refuses mixed label types. {fix}"
            )


def _infer_classes(*arrays: np.ndarray) -> tuple[Hashable, ...]:
    values = pd.unique(np.concatenate([a.astype(object) for a in arrays]))
    if _kinds(values) == {"integer", "string"}:
        raise LabelError(
            f"the labels mix integers and strings ({first_few(list(values))}); pass labels of "
            "one type (scikit-learn refuses a mix of label input types too)."
        )
    try:
        return tuple(sorted(values.tolist()))
    except TypeError as error:
        raise LabelError(
            f"cannot sort the labels {first_few(list(values))} to infer the class order; "
            "pass classes=... explicitly."
        ) from error


def _encode(values: np.ndarray, classes: tuple[Hashable, ...], what: str) -> np.ndarray:
    """Map labels to indices into ``classes`` (by value; see the module docstring)."""
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    _check_kinds(values, classes, what)
    codes = pd.Index(list(classes), dtype=object).get_indexer(pd.Index(values, dtype=object))
    missing = codes < 0
    if missing.any():
        unknown = pd.unique(values[missing].astype(object)).tolist()
        raise LabelError(
            f"{int(missing.sum())} of {values.size} {what} labels are not among the "
            f"{len(classes)} classes: {first_few(unknown)}. Add them to classes or remove those "
            "images."
        )
    return np.asarray(codes, dtype=np.int64)


def _check_same_classes(predictions: Predictions, classes: Sequence[Hashable] | None) -> None:
    if classes is not None and tuple(classes) != tuple(predictions.classes):
        raise MetricError(
            f"classes {first_few(list(classes))} differ from the Predictions' classes "
            f"{first_few(list(predictions.classes))}; leave classes out when passing a Predictions."
        )


def encode_predictions(predictions: Predictions) -> Encoded:
    """A :class:`~asl_eval.predictions.Predictions` (validated on construction) as an
    :class:`Encoded`, probabilities included."""
    return Encoded(
        tuple(predictions.classes), predictions.y_true, predictions.y_pred, predictions.y_proba
    )


def encode_pair(
    y_true: LabelsOrPredictions,
    y_pred: ArrayLike | None,
    classes: Sequence[Hashable] | None,
) -> Encoded:
    """Validate ``(y_true, y_pred)`` (or a Predictions alone) and encode them."""
    if isinstance(y_true, Predictions):
        if y_pred is not None:
            raise MetricError(
                "got a Predictions and y_pred; pass either a Predictions alone or two arrays."
            )
        _check_same_classes(y_true, classes)
        return encode_predictions(y_true)
    if y_pred is None:
        raise MetricError("y_pred is missing: pass y_true and y_pred, or a Predictions.")
    true = _as_1d(y_true, "y_true")
    pred = _as_1d(y_pred, "y_pred")
    if true.shape != pred.shape:
        raise MetricError(
            f"y_true and y_pred must have one entry per image; got {true.size} and {pred.size}."
        )
    resolved = _check_classes(classes) if classes is not None else _infer_classes(true, pred)
    return Encoded(resolved, _encode(true, resolved, "y_true"), _encode(pred, resolved, "y_pred"))


def _check_proba(proba: np.ndarray, n_images: int, n_classes: int) -> None:
    if proba.shape[1] != n_classes:
        raise MetricError(
            f"y_proba has {proba.shape[1]} columns but there are {n_classes} classes; "
            "pass one column per class, in classes order."
        )
    if n_images == 0:
        return
    bad_rows = np.flatnonzero(
        ~np.isfinite(proba).all(axis=1)
        | (proba < 0).any(axis=1)
        | (proba > 1).any(axis=1)
        | ~np.isclose(proba.sum(axis=1), 1.0, atol=1e-3)
    )
    if bad_rows.size:
        raise MetricError(
            f"{bad_rows.size} of {n_images} rows of y_proba are not probabilities "
            f"(rows {first_few(bad_rows.tolist())}): each row must lie in [0, 1] and sum "
            "to one. Apply softmax to logits first."
        )


def encode_proba(
    y_true: LabelsOrPredictions,
    y_proba: ProbaLike | None,
    classes: Sequence[Hashable] | None,
) -> Encoded:
    """Validate ``(y_true, y_proba)`` (or a Predictions alone) and encode them; without
    ``classes`` the classes are ``0..n_columns-1``."""
    if isinstance(y_true, Predictions):
        if y_proba is not None:
            raise MetricError(
                "got a Predictions and y_proba; pass either a Predictions alone or two arrays."
            )
        _check_same_classes(y_true, classes)
        return encode_predictions(y_true)
    if y_proba is None:
        raise MetricError("y_proba is missing: pass y_true and y_proba, or a Predictions.")
    true = _as_1d(y_true, "y_true")
    proba = np.asarray(y_proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[0] != true.size:
        raise MetricError(
            f"y_proba must have shape (n_images, n_classes) with n_images = {true.size}; "
            f"got {proba.shape}."
        )
    resolved = _check_classes(classes) if classes is not None else tuple(range(proba.shape[1]))
    _check_proba(proba, true.size, len(resolved))
    pred = proba.argmax(axis=1).astype(np.int64) if true.size else np.zeros(0, dtype=np.int64)
    return Encoded(resolved, _encode(true, resolved, "y_true"), pred, proba)


def _encode_two_predictions(
    a: Predictions, b: object, pred_b: object, classes: Sequence[Hashable] | None
) -> EncodedPaired:
    if not isinstance(b, Predictions) or pred_b is not None:
        raise MetricError(
            "pass two Predictions of the same images (model A, model B), or y_true, "
            "pred_a and pred_b as arrays."
        )
    _check_same_classes(a, classes)
    if a.classes != b.classes:
        raise MetricError(
            "the two Predictions have different classes; compare models trained on the same "
            "classes."
        )
    if a.paths != b.paths or not np.array_equal(a.y_true, b.y_true):
        raise MetricError(
            "the two Predictions are not of the same images in the same order; a paired "
            "test needs both models' predictions for each image."
        )
    return EncodedPaired(tuple(a.classes), a.y_true, a.y_pred, b.y_pred)


def encode_paired(
    y_true: LabelsOrPredictions,
    pred_a: ArrayLike | Predictions | None,
    pred_b: ArrayLike | None,
    classes: Sequence[Hashable] | None,
) -> EncodedPaired:
    """Validate two models' predictions of the same images (three arrays or two Predictions)."""
    if isinstance(y_true, Predictions):
        return _encode_two_predictions(y_true, pred_a, pred_b, classes)
    if pred_a is None or pred_b is None or isinstance(pred_a, Predictions):
        raise MetricError("pass y_true, pred_a and pred_b as arrays, or two Predictions.")
    true = _as_1d(y_true, "y_true")
    first = _as_1d(pred_a, "pred_a")
    second = _as_1d(pred_b, "pred_b")
    if not true.shape == first.shape == second.shape:
        raise MetricError(
            f"y_true, pred_a and pred_b must have one entry per image; got {true.size}, "
            f"{first.size} and {second.size}."
        )
    resolved = (
        _check_classes(classes) if classes is not None else _infer_classes(true, first, second)
    )
    return EncodedPaired(
        resolved,
        _encode(true, resolved, "y_true"),
        _encode(first, resolved, "pred_a"),
        _encode(second, resolved, "pred_b"),
    )
