"""Metrics for one or two evaluation sets: the source of every number in the report.

Pure functions over numpy arrays and pandas tables, in torchmetrics' shape: validate the
arguments, validate and encode the data once, compute the counts once, reduce. Imports numpy,
pandas and (inside the few functions that test or resample) scipy, never torch or fastai, so
``from asl_eval.metrics import per_class_accuracy`` is quick.

Modules, bottom to top (each imports only those above it in this list):

- :mod:`~asl_eval.metrics.validation`: argument checks, label encoding (:class:`Encoded`).
- :mod:`~asl_eval.metrics.counts`: confusion counts and the reductions shared by metrics.
- :mod:`~asl_eval.metrics.intervals`: Wilson intervals.
- :mod:`~asl_eval.metrics.classification`: accuracy, per-class accuracy, precision/recall/F1,
  balanced accuracy, macro F1, top-k accuracy.
- :mod:`~asl_eval.metrics.confusion`: confusion matrix, most confused pairs, top losses.
- :mod:`~asl_eval.metrics.calibration`: reliability table, ECE, Brier score, log loss,
  confidence distribution and histogram.
- :mod:`~asl_eval.metrics.bootstrap`: percentile bootstrap intervals and
  :data:`DEFAULT_N_RESAMPLES`.
- :mod:`~asl_eval.metrics.comparison`: domain comparison (Fisher, Holm), McNemar tests.
- :mod:`~asl_eval.metrics.evaluation`: :func:`evaluate` and :class:`Evaluation`.

Conventions (scikit-learn's, with stricter bookkeeping):

- Data arguments are positional: ``y_true`` and ``y_pred`` are arrays of class labels (strings or
  any hashables); ``y_proba`` has one column per class, in ``classes`` order. Options are
  keyword-only.
- ``classes`` fixes the order of every table and keeps classes without images in it. When it is
  not given it is the sorted union of the labels seen (or ``0..n_columns-1`` for ``y_proba``).
  A label outside ``classes`` raises :class:`~asl_eval.errors.LabelError`; nothing is dropped.
- Labels match classes by value, and integers never match strings: integer labels need integer
  classes, so integer labels are class indices exactly when the classes are ``0..k-1`` (the
  default for ``y_proba``). Integer labels with string classes (``[1, 2]`` with
  ``classes=["1", "2", "3"]``), string labels with integer classes, and a mix of integer and
  string labels raise :class:`~asl_eval.errors.LabelError`, as scikit-learn refuses mixed types.
- Every function also takes a :class:`~asl_eval.predictions.Predictions` as its first argument
  instead of arrays; the classes then come from it.
- An undefined value (the accuracy of a class with no images, the precision of a class never
  predicted) is NaN with a RuntimeWarning, never 0, and the class stays in the table.
- ``*_accuracy`` / ``*_score`` are higher-is-better, ``*_error`` / ``*_loss`` lower-is-better;
  :func:`brier_score` keeps its traditional name and is lower-is-better.
- Mistaken arguments raise :class:`~asl_eval.errors.MetricError` (a ``ValueError``).
"""

from __future__ import annotations

from asl_eval.metrics.bootstrap import DEFAULT_N_RESAMPLES, bootstrap_interval
from asl_eval.metrics.calibration import (
    EPS,
    brier_score,
    confidence_distribution,
    confidence_histogram,
    expected_calibration_error,
    log_loss,
    reliability_ece,
    reliability_table,
)
from asl_eval.metrics.classification import (
    AccuracyResult,
    accuracy_score,
    accuracy_with_interval,
    balanced_accuracy_score,
    classification_table,
    error_rate,
    macro_f1_score,
    per_class_accuracy,
    top_k_accuracy,
)
from asl_eval.metrics.comparison import (
    DomainGapSummary,
    McNemarResult,
    domain_comparison,
    domain_gap_summary,
    holm_adjust,
    mcnemar_test,
    paired_class_differences,
)
from asl_eval.metrics.confusion import confusion_matrix, most_confused, top_losses
from asl_eval.metrics.evaluation import Evaluation, evaluate
from asl_eval.metrics.intervals import wilson_interval, wilson_intervals

__all__ = [
    "DEFAULT_N_RESAMPLES",
    "EPS",
    "AccuracyResult",
    "DomainGapSummary",
    "Evaluation",
    "McNemarResult",
    "accuracy_score",
    "accuracy_with_interval",
    "balanced_accuracy_score",
    "bootstrap_interval",
    "brier_score",
    "classification_table",
    "confidence_distribution",
    "confidence_histogram",
    "confusion_matrix",
    "domain_comparison",
    "domain_gap_summary",
    "error_rate",
    "evaluate",
    "expected_calibration_error",
    "holm_adjust",
    "log_loss",
    "macro_f1_score",
    "mcnemar_test",
    "most_confused",
    "paired_class_differences",
    "per_class_accuracy",
    "reliability_ece",
    "reliability_table",
    "top_k_accuracy",
    "top_losses",
    "wilson_interval",
    "wilson_intervals",
]
