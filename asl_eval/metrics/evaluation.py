"""Every metric of one evaluation set at once: :func:`evaluate` and its :class:`Evaluation`.

:func:`evaluate` encodes the :class:`~asl_eval.predictions.Predictions` once, computes the
confusion counts and the top-label statistics once, and hands them to the reducers of the
metric modules (the public functions re-validate their input; the reducers do not need to).
The report builds its numbers with :func:`evaluate`, so a notebook user calling it with the
same seed gets the report's numbers, intervals included.

May import: numpy, pandas, :mod:`asl_eval.errors`, :mod:`asl_eval.predictions` and every module
of ``asl_eval.metrics`` (it is the top of the package). Never torch or fastai; no hand-written
HTML (the notebook display is pandas' ``DataFrame.to_html``, which escapes).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import pandas as pd

from asl_eval.metrics.bootstrap import DEFAULT_N_RESAMPLES, counts_statistic, percentile_interval
from asl_eval.metrics.calibration import (
    brier_from_proba,
    distribution_from_top_label,
    log_loss_from_proba,
    reliability_ece,
    reliability_from_top_label,
)
from asl_eval.metrics.classification import (
    AccuracyResult,
    accuracy_result,
    classification_from_counts,
    per_class_table,
    top_k_from_proba,
)
from asl_eval.metrics.confusion import confusion_frame, most_confused_from_counts, top_losses
from asl_eval.metrics.counts import (
    balanced_accuracy_from_counts,
    confusion_counts,
    macro_f1_from_counts,
    top_label,
    warn_no_images,
)
from asl_eval.metrics.validation import (
    check_confidence,
    check_count,
    check_predictions,
    encode_predictions,
)
from asl_eval.predictions import Predictions

__all__ = ["Evaluation", "evaluate"]


@dataclass(frozen=True)
class Evaluation:
    """Every metric of one evaluation set; shows as tables in Jupyter.

    ``n_resamples`` and ``seed`` are those of the bootstrap behind ``macro_f1_ci``.
    """

    name: str
    classes: tuple[str, ...]
    overall: AccuracyResult
    per_class: pd.DataFrame
    classification: pd.DataFrame
    confusion: pd.DataFrame
    confused_pairs: pd.DataFrame
    losses: pd.DataFrame
    reliability: pd.DataFrame
    confidence: pd.DataFrame
    top_k: int
    top_k_accuracy: float
    ece: float
    brier: float
    log_loss: float
    macro_f1: float
    macro_f1_ci: tuple[float, float]
    balanced_accuracy: float
    n_resamples: int = DEFAULT_N_RESAMPLES
    seed: int = 0

    def summary(self) -> dict[str, float | int | str]:
        """The headline numbers as plain Python values (JSON-ready; NaN stays NaN)."""
        return {
            "name": self.name,
            "n_images": self.overall.n,
            "n_classes": len(self.classes),
            "accuracy": self.overall.accuracy,
            "accuracy_ci_low": self.overall.ci_low,
            "accuracy_ci_high": self.overall.ci_high,
            "error_rate": self.overall.error_rate,
            f"top_{self.top_k}_accuracy": self.top_k_accuracy,
            "balanced_accuracy": self.balanced_accuracy,
            "macro_f1": self.macro_f1,
            "macro_f1_ci_low": self.macro_f1_ci[0],
            "macro_f1_ci_high": self.macro_f1_ci[1],
            "expected_calibration_error": self.ece,
            "brier_score": self.brier,
            "log_loss": self.log_loss,
        }

    def summary_frame(self) -> pd.DataFrame:
        """:meth:`summary` as a one-column table (the column is the set's name), floats shown
        with four decimals."""
        values = {key: value for key, value in self.summary().items() if key != "name"}
        shown = [_four_decimals(value) for value in values.values()]
        return pd.DataFrame({self.name: shown}, index=pd.Index(list(values), name="metric"))

    def _repr_html_(self) -> str:
        """Jupyter display: the headline numbers, the per-class table (Wilson intervals) and the
        ten most confused pairs, each rendered and escaped by ``DataFrame.to_html``."""
        tables = [
            self.summary_frame().to_html(),
            self.per_class.to_html(float_format="{:.3f}".format, na_rep="NaN"),
            self.confused_pairs.head(10).to_html(index=False),
        ]
        return "\n".join(tables)

    def __repr__(self) -> str:
        o = self.overall
        return (
            f"Evaluation({self.name!r}: accuracy {o.accuracy:.4f} "
            f"[{o.ci_low:.4f}, {o.ci_high:.4f}] on {o.n} images, {len(self.classes)} classes)"
        )


def _four_decimals(value: float | int | str) -> str:
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def evaluate(
    predictions: Predictions,
    *,
    confidence: float = 0.95,
    n_bins: int = 15,
    top_k: int = 5,
    n_top_losses: int | None = 9,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    seed: int = 0,
) -> Evaluation:
    """Compute every metric of one evaluation set.

    ``n_top_losses`` rows of :func:`~asl_eval.metrics.top_losses` are kept (``None``: every
    image). ``macro_f1_ci`` is :func:`~asl_eval.metrics.bootstrap_interval` of
    :func:`~asl_eval.metrics.macro_f1_score` with the same ``n_resamples`` (by default
    :data:`~asl_eval.metrics.DEFAULT_N_RESAMPLES`, as in the report) and ``seed``.

    Warnings about undefined values (classes without images) are raised once each here.

    Examples
    --------
    >>> import numpy as np
    >>> proba = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    >>> p = Predictions.from_labels(["A", "B", "B"], proba, ["A", "B"])
    >>> ev = evaluate(p)
    >>> ev.overall.correct, ev.per_class["accuracy"].tolist(), ev.n_resamples
    (2, [1.0, 0.5], 1000)
    """
    check_predictions(predictions, "evaluate")
    check_confidence(confidence)
    check_count("n_bins", n_bins)
    check_count("top_k", top_k)
    check_count("n_resamples", n_resamples)
    if n_top_losses is not None:
        check_count("n_top_losses", n_top_losses, minimum=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluation = _evaluate(
            predictions, confidence, n_bins, top_k, n_top_losses, n_resamples, seed
        )
    seen: set[tuple[type[Warning], str]] = set()
    for caught_warning in caught:
        key = (caught_warning.category, str(caught_warning.message))
        if key not in seen:
            seen.add(key)
            warnings.warn(caught_warning.message, stacklevel=2)
    return evaluation


def _evaluate(
    predictions: Predictions,
    confidence: float,
    n_bins: int,
    top_k: int,
    n_top_losses: int | None,
    n_resamples: int,
    seed: int,
) -> Evaluation:
    """Encode once, count once, reduce (the arguments are already checked)."""
    encoded = encode_predictions(predictions)
    counts = confusion_counts(encoded.true, encoded.pred, encoded.n_classes)
    top_confidence, top_correct = top_label(encoded)
    reliability = reliability_from_top_label(top_confidence, top_correct, n_bins=n_bins)
    if encoded.n_images == 0:
        warn_no_images("ECE")
    macro_f1_ci = percentile_interval(
        encoded.n_images,
        counts_statistic(encoded, macro_f1_from_counts),
        n_resamples=n_resamples,
        seed=seed,
        confidence=confidence,
    )
    return Evaluation(
        name=predictions.name,
        classes=tuple(predictions.classes),
        overall=accuracy_result(counts, confidence=confidence),
        per_class=per_class_table(counts, encoded.classes, confidence=confidence),
        classification=classification_from_counts(counts, encoded.classes),
        confusion=confusion_frame(counts, encoded.classes),
        confused_pairs=most_confused_from_counts(counts, encoded.classes),
        losses=top_losses(predictions, k=n_top_losses),
        reliability=reliability,
        confidence=distribution_from_top_label(top_confidence, top_correct),
        top_k=top_k,
        top_k_accuracy=top_k_from_proba(encoded, min(top_k, encoded.n_classes)),
        ece=reliability_ece(reliability),
        brier=brier_from_proba(encoded),
        log_loss=log_loss_from_proba(encoded),
        macro_f1=float(macro_f1_from_counts(counts)),
        macro_f1_ci=macro_f1_ci,
        balanced_accuracy=float(balanced_accuracy_from_counts(counts)),
        n_resamples=n_resamples,
        seed=seed,
    )
