"""asl_eval.metrics.evaluation: everything for one set, from one encoding, on the tutorial's
numbers and on a real tiny model, checked against scikit-learn."""

from __future__ import annotations

import string
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
import sklearn.metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from asl_eval import metrics
from asl_eval.errors import MetricError
from asl_eval.metrics import bootstrap, calibration, classification, confusion
from asl_eval.predictions import Predictions

ASL_CLASSES = [*string.ascii_uppercase, "del", "nothing", "space"]


@contextmanager
def quiet() -> Iterator[None]:
    """Silence the NaN warnings of ours and of the references, and scikit-learn's warning that
    saved float32 rows sum to one only within 1e-7."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.filterwarnings("ignore", "The y_prob values do not sum to one", UserWarning)
        yield


# ------------------------------------------------------------------------------------------
# The tutorial lists only some counts (A 15, B 30, C 17, T 0, V 0, X 4, space 20); the other
# 22 classes' counts below are made up so that all 29 add up to the tutorial's 539 of 870.
TUTORIAL_CORRECT = {
    "A": 15, "B": 30, "C": 17, "D": 25, "E": 23, "F": 28, "G": 22, "H": 26, "I": 19,
    "J": 21, "K": 24, "L": 23, "M": 12, "N": 10, "O": 18, "P": 20, "Q": 25, "R": 14,
    "S": 16, "T": 0, "U": 13, "V": 0, "W": 22, "X": 4, "Y": 27, "Z": 21, "del": 24,
    "nothing": 20, "space": 20,
}  # fmt: skip


def tutorial_predictions() -> Predictions:
    """30 images per class; the first ``correct`` of each class right, the rest predicted as the
    next class in the vocab."""
    y_true, y_pred = [], []
    for i, name in enumerate(ASL_CLASSES):
        right = TUTORIAL_CORRECT[name]
        y_true += [i] * 30
        y_pred += [i] * right + [(i + 1) % len(ASL_CLASSES)] * (30 - right)
    # The predicted class gets 0.8; the other 0.2 is spread unevenly, so no two classes tie.
    weights = np.random.default_rng(0).random((870, 29)) + 0.01
    weights[np.arange(870), y_pred] = 0.0
    proba = 0.2 * weights / weights.sum(axis=1, keepdims=True)
    proba[np.arange(870), y_pred] = 0.8
    return Predictions(
        classes=tuple(ASL_CLASSES),
        paths=tuple(f"img{i}.jpg" for i in range(870)),
        y_true=np.array(y_true),
        y_proba=proba,
    )


def test_tutorial_table_is_rebuilt() -> None:
    assert sum(TUTORIAL_CORRECT.values()) == 539
    predictions = tutorial_predictions()
    table = metrics.per_class_accuracy(predictions)
    assert table.index.tolist() == ASL_CLASSES
    assert table["support"].tolist() == [30] * 29
    assert table["correct"].to_dict() == TUTORIAL_CORRECT
    for name, right in TUTORIAL_CORRECT.items():
        assert table.loc[name, "accuracy"] == right / 30
    assert table.loc["A", "accuracy"] == 0.5
    assert table.loc["B", "accuracy"] == 1.0
    assert table.loc["T", "accuracy"] == 0.0
    assert metrics.accuracy_score(predictions) == 539 / 870
    assert round(metrics.accuracy_score(predictions), 4) == 0.6195
    overall = metrics.accuracy_with_interval(predictions)
    assert (overall.correct, overall.n) == (539, 870)
    # The same table from label arrays, and sklearn's recall.
    labels_table = metrics.per_class_accuracy(
        predictions.labels_true, predictions.labels_pred, classes=ASL_CLASSES
    )
    pd.testing.assert_frame_equal(labels_table, table)
    recall = skm.recall_score(
        predictions.y_true, predictions.y_pred, average=None, labels=range(29)
    )
    np.testing.assert_allclose(table["accuracy"], recall)


# ------------------------------------------------------------------------------------------
def test_evaluate_bundles_the_metrics_and_renders_html() -> None:
    predictions = tutorial_predictions()
    evaluation = metrics.evaluate(predictions, n_resamples=100)
    summary = evaluation.summary()
    assert summary["n_images"] == 870 and summary["accuracy"] == 539 / 870
    assert summary["top_5_accuracy"] == pytest.approx(
        skm.top_k_accuracy_score(predictions.y_true, predictions.y_proba, k=5, labels=range(29))
    )
    assert summary["log_loss"] == pytest.approx(
        skm.log_loss(predictions.y_true, predictions.y_proba, labels=range(29))
    )
    assert summary["brier_score"] == pytest.approx(
        skm.brier_score_loss(
            predictions.y_true, predictions.y_proba, labels=range(29), scale_by_half=False
        )
    )
    assert summary["balanced_accuracy"] == pytest.approx(
        skm.balanced_accuracy_score(predictions.y_true, predictions.y_pred)
    )
    assert summary["macro_f1"] == pytest.approx(
        skm.f1_score(predictions.y_true, predictions.y_pred, average="macro")
    )
    assert summary["macro_f1_ci_low"] <= summary["macro_f1"] <= summary["macro_f1_ci_high"]
    assert evaluation.per_class["correct"].to_dict() == TUTORIAL_CORRECT
    np.testing.assert_array_equal(
        evaluation.confusion, skm.confusion_matrix(predictions.y_true, predictions.y_pred)
    )
    html = evaluation._repr_html_()
    assert "<table" in html and "nothing" in html and "0.6195" in html
    assert "0.6195" in repr(evaluation)
    assert evaluation.summary_frame().loc["accuracy", "test"] == "0.6195"


def test_evaluate_equals_the_public_functions() -> None:
    """The reducers evaluate calls give exactly what the public functions give."""
    predictions = tutorial_predictions()
    evaluation = metrics.evaluate(predictions, n_bins=10, top_k=3, n_top_losses=None)
    pd.testing.assert_frame_equal(evaluation.per_class, metrics.per_class_accuracy(predictions))
    pd.testing.assert_frame_equal(
        evaluation.classification, metrics.classification_table(predictions)
    )
    pd.testing.assert_frame_equal(evaluation.confusion, metrics.confusion_matrix(predictions))
    pd.testing.assert_frame_equal(evaluation.confused_pairs, metrics.most_confused(predictions))
    pd.testing.assert_frame_equal(evaluation.losses, metrics.top_losses(predictions, k=None))
    pd.testing.assert_frame_equal(
        evaluation.reliability, metrics.reliability_table(predictions, n_bins=10)
    )
    pd.testing.assert_frame_equal(
        evaluation.confidence, metrics.confidence_distribution(predictions)
    )
    assert evaluation.overall == metrics.accuracy_with_interval(predictions)
    assert evaluation.top_k_accuracy == metrics.top_k_accuracy(predictions, k=3)
    assert evaluation.ece == metrics.expected_calibration_error(predictions, n_bins=10)
    assert evaluation.brier == metrics.brier_score(predictions)
    assert evaluation.log_loss == metrics.log_loss(predictions)
    assert evaluation.macro_f1 == metrics.macro_f1_score(predictions)
    assert evaluation.balanced_accuracy == metrics.balanced_accuracy_score(predictions)


def test_evaluate_encodes_once_and_never_goes_back_to_labels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """evaluate hands encoded data to the reducers: no metric module re-encodes labels."""
    calls = []

    def refuse(*args: object, **kwargs: object) -> None:
        calls.append(args)
        raise AssertionError("evaluate re-encoded its predictions")

    for module in (classification, confusion, calibration, bootstrap):
        for name in ("encode_pair", "encode_proba"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, refuse)
    evaluation = metrics.evaluate(tutorial_predictions())
    assert evaluation.overall.correct == 539 and calls == []


def test_evaluate_html_is_escaped_by_pandas() -> None:
    predictions = Predictions.from_labels(
        ["<b>", "x&y"], np.eye(2), ["<b>", "x&y"], name="<script>alert(1)</script>"
    )
    html = metrics.evaluate(predictions, n_resamples=20)._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>" not in html and "&lt;b&gt;" in html and "x&amp;y" in html


def test_evaluate_warns_once_per_message() -> None:
    predictions = Predictions.from_labels(
        list("AAAAABBBBB"), np.eye(3)[[0] * 5 + [1] * 3 + [0] * 2], ["A", "B", "C"], name="t"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics.evaluate(predictions, n_resamples=20)
    messages = [str(w.message) for w in caught]
    assert len(messages) == len(set(messages))
    assert any(
        "accuracy is undefined (NaN) for 1 class(es) without images: C" in m for m in messages
    )
    assert all(w.category is RuntimeWarning and w.filename == __file__ for w in caught)


def test_evaluate_rejects_bad_arguments() -> None:
    predictions = Predictions.from_labels(["A", "B"], np.eye(2), ["A", "B"])
    with pytest.raises(MetricError, match="evaluate needs a Predictions; got list"):
        metrics.evaluate([0, 1])  # type: ignore[arg-type]
    with pytest.raises(MetricError, match="n_resamples must be a positive integer"):
        metrics.evaluate(predictions, n_resamples=0)
    with pytest.raises(MetricError, match="top_k must be a positive integer"):
        metrics.evaluate(predictions, top_k=0)
    with pytest.raises(MetricError, match="n_top_losses must be a non-negative integer"):
        metrics.evaluate(predictions, n_top_losses=-1)


def test_metrics_on_a_real_tiny_model(tiny_model) -> None:  # type: ignore[no-untyped-def]
    """The shared tiny resnet's validation predictions, checked against scikit-learn."""
    predictions = Predictions.load(tiny_model.valid_predictions)
    y_true, y_pred, proba = predictions.y_true, predictions.y_pred, predictions.y_proba
    labels = range(len(predictions.classes))
    assert metrics.accuracy_score(predictions) == pytest.approx(skm.accuracy_score(y_true, y_pred))
    with quiet():
        table = metrics.classification_table(predictions)
        precision, _, f1, _ = skm.precision_recall_fscore_support(
            y_true, y_pred, labels=labels, zero_division=np.nan
        )
    np.testing.assert_allclose(table["precision"].iloc[:-2], precision, equal_nan=True)
    np.testing.assert_allclose(table["f1"].iloc[:-2], f1, equal_nan=True)
    matrix = metrics.confusion_matrix(predictions)
    np.testing.assert_array_equal(matrix, skm.confusion_matrix(y_true, y_pred, labels=labels))
    with quiet():  # the saved float32 rows sum to one within 1e-7; sklearn warns about that
        reference_log_loss = skm.log_loss(y_true, proba, labels=labels)
        reference_brier = skm.brier_score_loss(y_true, proba, labels=labels, scale_by_half=False)
        reference_top_3 = skm.top_k_accuracy_score(y_true, proba, k=3, labels=labels)
    assert metrics.log_loss(predictions) == pytest.approx(reference_log_loss)
    assert metrics.brier_score(predictions) == pytest.approx(reference_brier)
    assert metrics.top_k_accuracy(predictions, k=3) == pytest.approx(reference_top_3)
    losses = metrics.top_losses(predictions, k=5)
    assert set(losses["path"]) <= set(predictions.paths)
    assert losses["loss"].is_monotonic_decreasing
