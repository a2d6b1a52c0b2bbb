"""Every metric checked against an independent implementation.

scikit-learn, scipy and statsmodels are the references; hand computations pin the edge cases
(classes absent from y_true or y_pred, one class, all right, all wrong, no images).
"""

from __future__ import annotations

import itertools
import math
import string
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import sklearn.metrics as skm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.calibration import calibration_curve
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from asl_eval import metrics
from asl_eval.errors import AslEvalError, LabelError, ReportError
from asl_eval.predictions import Predictions

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# statsmodels' multipletests costs tens of milliseconds a call; fewer examples keep it quick.
FEWER = settings(SETTINGS, max_examples=20)
ASL_CLASSES = [*string.ascii_uppercase, "del", "nothing", "space"]


# ------------------------------------------------------------------------------------------
# Strategies
# ------------------------------------------------------------------------------------------
@st.composite
def label_sets(draw: st.DrawFn, max_classes: int = 6, min_n: int = 1, max_n: int = 40):
    """Classes and label arrays; some classes are usually absent from y_true or y_pred."""
    k = draw(st.integers(1, max_classes))
    n = draw(st.integers(min_n, max_n))
    index = st.integers(0, k - 1)
    y_true = np.array(draw(st.lists(index, min_size=n, max_size=n)), dtype=np.int64)
    y_pred = np.array(draw(st.lists(index, min_size=n, max_size=n)), dtype=np.int64)
    classes = [f"c{i}" for i in range(k)]
    return classes, y_true, y_pred


@st.composite
def proba_sets(draw: st.DrawFn, min_classes: int = 2, max_classes: int = 6, max_n: int = 40):
    """Classes, true indices and probability rows without ties (softmax of distinct ints)."""
    k = draw(st.integers(min_classes, max_classes))
    n = draw(st.integers(1, max_n))
    y_true = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    rows = draw(
        st.lists(
            st.lists(st.integers(-40, 40), min_size=k, max_size=k, unique=True),
            min_size=n,
            max_size=n,
        )
    )
    logits = np.array(rows, dtype=np.float64) / 8.0
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    return list(range(k)), y_true, proba


def names(classes: list[str], indices: np.ndarray) -> np.ndarray:
    return np.asarray(classes, dtype=object)[indices]


@contextmanager
def quiet() -> Iterator[None]:
    """Silence the expected NaN warnings of the references and of ours."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ------------------------------------------------------------------------------------------
# Accuracy
# ------------------------------------------------------------------------------------------
@SETTINGS
@given(label_sets())
def test_accuracy_matches_sklearn(case) -> None:
    classes, y_true, y_pred = case
    expected = skm.accuracy_score(y_true, y_pred)
    assert metrics.accuracy_score(names(classes, y_true), names(classes, y_pred)) == pytest.approx(
        expected
    )
    assert metrics.accuracy_score(y_true, y_pred, classes=classes) == pytest.approx(expected)
    assert metrics.error_rate(y_true, y_pred, classes=classes) == pytest.approx(1 - expected)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "expected"),
    [
        (["A", "B", "C"], ["A", "B", "C"], 1.0),  # all right
        (["A", "B", "C"], ["B", "C", "A"], 0.0),  # all wrong
        (["A", "A"], ["A", "A"], 1.0),  # one class
    ],
)
def test_accuracy_edge_cases(y_true: list[str], y_pred: list[str], expected: float) -> None:
    assert metrics.accuracy_score(y_true, y_pred) == expected
    assert skm.accuracy_score(y_true, y_pred) == expected


def test_accuracy_of_no_images_is_nan_with_warning() -> None:
    with pytest.warns(RuntimeWarning, match="zero images"):
        assert math.isnan(metrics.accuracy_score([], [], classes=["A"]))


def test_labels_outside_classes_raise_with_the_offenders() -> None:
    with pytest.raises(LabelError, match=r"2 of 3 y_pred labels .* Z, Q\. Add them"):
        metrics.accuracy_score(["A", "B", "A"], ["A", "Z", "Q"], classes=["A", "B"])
    with pytest.raises(LabelError, match=r"outside 0\.\.1"):
        metrics.accuracy_score([0, 1], [0, 5], classes=["A", "B"])
    with pytest.raises(LabelError, match="unique"):
        metrics.accuracy_score(["A"], ["A"], classes=["A", "A"])
    with pytest.raises(ReportError, match="one entry per image; got 2 and 1"):
        metrics.accuracy_score(["A", "B"], ["A"])
    with pytest.raises(ReportError, match="y_pred is missing"):
        metrics.accuracy_score(["A", "B"])


def test_integer_indices_and_labels_give_the_same_tables() -> None:
    classes = ["A", "B", "C"]
    with quiet():
        by_index = metrics.per_class_accuracy([0, 1, 1], [0, 1, 2], classes=classes)
        by_label = metrics.per_class_accuracy(["A", "B", "B"], ["A", "B", "C"], classes=classes)
    pd.testing.assert_frame_equal(by_index, by_label)


# ------------------------------------------------------------------------------------------
# Wilson intervals
# ------------------------------------------------------------------------------------------
@SETTINGS
@given(
    st.integers(1, 2000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    st.sampled_from([0.8, 0.9, 0.95, 0.99]),
)
def test_wilson_matches_statsmodels(counts: tuple[int, int], confidence: float) -> None:
    successes, n = counts
    low, high = metrics.wilson_interval(successes, n, confidence=confidence)
    expected = proportion_confint(successes, n, alpha=1 - confidence, method="wilson")
    assert (low, high) == pytest.approx(expected, abs=1e-12)


def test_wilson_vectorised_and_empty() -> None:
    low, high = metrics.wilson_intervals([0, 15, 30, 0], [30, 30, 30, 0])
    ref_low, ref_high = proportion_confint(
        np.array([0, 15, 30]), np.array([30, 30, 30]), method="wilson"
    )
    np.testing.assert_allclose(low[:3], ref_low, atol=1e-12)
    np.testing.assert_allclose(high[:3], ref_high, atol=1e-12)
    assert np.isnan(low[3]) and np.isnan(high[3])
    assert all(math.isnan(x) for x in metrics.wilson_interval(0, 0))
    # The claim: at 30 images an accuracy of 0.5 is known to about +-0.17.
    assert (high[1] - low[1]) / 2 == pytest.approx(0.1685, abs=1e-3)


@pytest.mark.parametrize(("successes", "n"), [(-1, 5), (6, 5), (1, -1)])
def test_wilson_rejects_impossible_counts(successes: int, n: int) -> None:
    with pytest.raises(ValueError, match="0 <= successes <= n"):
        metrics.wilson_interval(successes, n)


def test_wilson_rejects_bad_confidence() -> None:
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        metrics.wilson_interval(3, 5, confidence=95)


def test_accuracy_with_interval_matches_statsmodels() -> None:
    result = metrics.accuracy_with_interval(list("AABBC"), list("ABBBC"))
    assert (result.accuracy, result.correct, result.n) == (0.8, 4, 5)
    assert (result.ci_low, result.ci_high) == pytest.approx(
        proportion_confint(4, 5, method="wilson")
    )
    assert result.error_rate == pytest.approx(0.2)


# ------------------------------------------------------------------------------------------
# Per-class accuracy and the tutorial's table
# ------------------------------------------------------------------------------------------
@SETTINGS
@given(label_sets())
def test_per_class_accuracy_is_sklearn_recall(case) -> None:
    classes, y_true, y_pred = case
    with quiet():
        table = metrics.per_class_accuracy(y_true, y_pred, classes=classes)
        _, recall, _, support = skm.precision_recall_fscore_support(
            y_true, y_pred, labels=range(len(classes)), zero_division=np.nan
        )
    assert table.index.tolist() == classes
    np.testing.assert_array_equal(table["support"], support)
    np.testing.assert_allclose(table["accuracy"], recall, equal_nan=True)
    correct = [np.sum((y_true == i) & (y_pred == i)) for i in range(len(classes))]
    np.testing.assert_array_equal(table["correct"], correct)
    low, high = proportion_confint(np.array(correct), np.maximum(support, 1), method="wilson")
    defined = support > 0
    np.testing.assert_allclose(table["ci_low"][defined], low[defined], atol=1e-12)
    np.testing.assert_allclose(table["ci_high"][defined], high[defined], atol=1e-12)
    assert table["ci_low"][~defined].isna().all()


def test_class_without_images_is_nan_with_warning_and_kept() -> None:
    with pytest.warns(RuntimeWarning, match=r"accuracy is undefined .* without images: C"):
        table = metrics.per_class_accuracy(["A", "B"], ["A", "A"], classes=["A", "B", "C"])
    assert table.index.tolist() == ["A", "B", "C"]
    assert table.loc["C", "support"] == 0
    assert math.isnan(table.loc["C", "accuracy"])
    assert table.loc["B", "accuracy"] == 0.0


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
# Precision / recall / F1
# ------------------------------------------------------------------------------------------
@SETTINGS
@given(label_sets())
def test_classification_table_matches_sklearn(case) -> None:
    classes, y_true, y_pred = case
    labels = list(range(len(classes)))
    with quiet():
        table = metrics.classification_table(y_true, y_pred, classes=classes)
        expected = skm.precision_recall_fscore_support(
            y_true, y_pred, labels=labels, zero_division=np.nan
        )
        averages = {
            average: skm.precision_recall_fscore_support(
                y_true, y_pred, labels=labels, zero_division=np.nan, average=average
            )
            for average in ("macro", "weighted")
        }
    per_class = table.loc[classes]
    for column, reference in zip(["precision", "recall", "f1", "support"], expected, strict=True):
        np.testing.assert_allclose(per_class[column], reference, equal_nan=True)
    for row, average in (("macro avg", "macro"), ("weighted avg", "weighted")):
        got = table.loc[row, ["precision", "recall", "f1"]].to_numpy(dtype=float)
        reference = np.array(averages[average][:3], dtype=float)
        if average == "weighted":
            # When every class with a defined value has zero support, sklearn falls back to
            # the unweighted mean; a support-weighted mean is undefined there, so we give NaN.
            for column, value in enumerate(per_class.columns[:3]):
                defined = per_class[value].notna()
                if per_class.loc[defined, "support"].sum() == 0:
                    reference[column] = np.nan
        np.testing.assert_allclose(got, reference, equal_nan=True, atol=1e-12)
        assert table.loc[row, "support"] == len(y_true)
    assert metrics.macro_f1_score(y_true, y_pred, classes=classes) == pytest.approx(
        table.loc["macro avg", "f1"], nan_ok=True
    )


def test_class_never_predicted_has_nan_precision_and_warning() -> None:
    with pytest.warns(RuntimeWarning, match=r"precision is undefined .* never predicted: B, C"):
        table = metrics.classification_table(["A", "C"], ["A", "A"], classes=["A", "B", "C"])
    assert math.isnan(table.loc["C", "precision"])
    assert table.loc["C", "recall"] == 0.0
    assert table.loc["C", "f1"] == 0.0
    assert math.isnan(table.loc["B", "f1"])  # neither present nor predicted


@SETTINGS
@given(label_sets())
def test_balanced_accuracy_matches_sklearn(case) -> None:
    classes, y_true, y_pred = case
    with quiet():
        expected = skm.balanced_accuracy_score(y_true, y_pred)
    # sklearn averages over classes present in y_true; so do we.
    got = metrics.balanced_accuracy_score(y_true, y_pred, classes=classes)
    assert got == pytest.approx(expected)


# ------------------------------------------------------------------------------------------
# Top-k
# ------------------------------------------------------------------------------------------
@SETTINGS
@given(proba_sets(min_classes=3), st.integers(1, 6))
def test_top_k_matches_sklearn(case, k: int) -> None:
    classes, y_true, proba = case
    got = metrics.top_k_accuracy(y_true, proba, classes=classes, k=k)
    with quiet():
        expected = skm.top_k_accuracy_score(y_true, proba, k=k, labels=classes)
    assert got == pytest.approx(expected)


@SETTINGS
@given(proba_sets(min_classes=2))
def test_top_1_is_argmax_accuracy(case) -> None:
    classes, y_true, proba = case
    assert metrics.top_k_accuracy(y_true, proba, classes=classes, k=1) == pytest.approx(
        skm.accuracy_score(y_true, proba.argmax(axis=1))
    )


def test_top_k_ties_follow_argmax_and_k_beyond_classes() -> None:
    proba = [[0.5, 0.5, 0.0]]
    assert metrics.top_k_accuracy([0], proba, k=1) == 1.0
    assert metrics.top_k_accuracy([1], proba, k=1) == 0.0
    assert metrics.top_k_accuracy([2], proba, k=3) == 1.0
    assert metrics.top_k_accuracy([2], proba, k=10) == 1.0
    with pytest.raises(ValueError, match="positive integer"):
        metrics.top_k_accuracy([0], proba, k=0)


def test_proba_validation() -> None:
    with pytest.raises(ReportError, match="Apply softmax"):
        metrics.top_k_accuracy([0, 1], [[2.0, -1.0], [0.5, 0.5]])
    with pytest.raises(ReportError, match="2 columns but there are 3 classes"):
        metrics.log_loss([0], [[0.5, 0.5]], classes=["A", "B", "C"])
    with pytest.raises(ReportError, match=r"shape \(n_images, n_classes\)"):
        metrics.brier_score([0, 1], [[0.5, 0.5]])
    with pytest.raises(ReportError, match="y_proba is missing"):
        metrics.log_loss([0, 1])


# ------------------------------------------------------------------------------------------
# Confusion matrix and most confused
# ------------------------------------------------------------------------------------------
@SETTINGS
@given(label_sets(), st.sampled_from([None, "true", "pred", "all"]))
def test_confusion_matrix_matches_sklearn(case, normalize) -> None:
    classes, y_true, y_pred = case
    with quiet():
        got = metrics.confusion_matrix(
            names(classes, y_true), names(classes, y_pred), classes=classes, normalize=normalize
        )
        expected = skm.confusion_matrix(
            y_true, y_pred, labels=range(len(classes)), normalize=normalize
        )
    assert got.index.tolist() == classes and got.columns.tolist() == classes
    assert got.index.name == "actual" and got.columns.name == "predicted"
    values = got.to_numpy(dtype=float)
    # sklearn writes 0 where a row/column is empty; we write NaN.
    np.testing.assert_allclose(np.nan_to_num(values, nan=0.0), expected, atol=1e-12)
    if normalize == "true":
        empty_rows = np.bincount(y_true, minlength=len(classes)) == 0
        assert np.isnan(values[empty_rows]).all()
        assert not np.isnan(values[~empty_rows]).any()
    if normalize is None:
        assert values.sum() == len(y_true)  # nothing dropped


def test_confusion_normalize_validation_and_warning() -> None:
    with pytest.raises(ValueError, match="normalize must be"):
        metrics.confusion_matrix(["A"], ["A"], normalize="rows")  # type: ignore[arg-type]
    with pytest.warns(RuntimeWarning, match="never predicted: B"):
        metrics.confusion_matrix(["A", "B"], ["A", "A"], normalize="pred")


@SETTINGS
@given(label_sets(), st.integers(1, 3))
def test_most_confused_lists_off_diagonal_cells(case, min_count: int) -> None:
    classes, y_true, y_pred = case
    table = metrics.most_confused(y_true, y_pred, classes=classes, min_count=min_count)
    with quiet():
        reference = skm.confusion_matrix(y_true, y_pred, labels=range(len(classes)))
    expected = sorted(
        (-reference[i, j], i, j)
        for i in range(len(classes))
        for j in range(len(classes))
        if i != j and reference[i, j] >= min_count
    )
    assert list(table.columns) == ["actual", "predicted", "count"]
    assert list(zip(table["actual"], table["predicted"], table["count"], strict=True)) == [
        (classes[i], classes[j], -count) for count, i, j in expected
    ]


def test_most_confused_all_right_is_empty() -> None:
    table = metrics.most_confused(["A", "B"], ["A", "B"])
    assert table.empty and list(table.columns) == ["actual", "predicted", "count"]


# ------------------------------------------------------------------------------------------
# Top losses
# ------------------------------------------------------------------------------------------
def test_top_losses_orders_by_loss_and_keeps_paths() -> None:
    proba = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.05, 0.95]])
    predictions = Predictions.from_labels(
        ["A", "A", "B", "B"], proba, ["A", "B"], paths=["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    )
    table = metrics.top_losses(predictions, k=3)
    assert table["path"].tolist() == ["b.jpg", "c.jpg", "a.jpg"]
    assert table["actual"].tolist() == ["A", "B", "A"]
    assert table["predicted"].tolist() == ["B", "A", "A"]
    np.testing.assert_allclose(table["p_true"], [0.3, 0.4, 0.9])
    np.testing.assert_allclose(table["confidence"], [0.7, 0.6, 0.9])
    np.testing.assert_allclose(table["loss"], -np.log([0.3, 0.4, 0.9]))
    assert len(metrics.top_losses(predictions, k=None)) == 4
    with pytest.raises(ReportError, match="needs a Predictions"):
        metrics.top_losses(proba)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# Calibration
# ------------------------------------------------------------------------------------------
@SETTINGS
@given(proba_sets(min_classes=2), st.integers(1, 20))
def test_reliability_and_ece_match_sklearn_calibration_curve(case, n_bins: int) -> None:
    classes, y_true, proba = case
    table = metrics.reliability_table(y_true, proba, classes=classes, n_bins=n_bins)
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(int)
    filled = table[table["count"] > 0]
    assert table["count"].sum() == len(y_true)
    assert len(table) == n_bins
    # sklearn's calibration_curve bins the same way ((lower, upper], uniform) but drops empty
    # bins and needs both outcomes present.
    if 0 < correct.sum() < len(correct):
        accuracy, mean_confidence = calibration_curve(
            correct, confidence, n_bins=n_bins, strategy="uniform"
        )
        np.testing.assert_allclose(filled["accuracy"], accuracy, atol=1e-12)
        np.testing.assert_allclose(filled["confidence"], mean_confidence, atol=1e-12)
    # ECE by an explicit loop over images.
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for lower, upper in itertools.pairwise(edges):
        inside = (confidence > lower) & (confidence <= upper)
        if lower == 0:
            inside |= confidence == 0
        if inside.any():
            total += inside.sum() * abs(correct[inside].mean() - confidence[inside].mean())
    got = metrics.expected_calibration_error(y_true, proba, classes=classes, n_bins=n_bins)
    assert got == pytest.approx(total / len(y_true), abs=1e-12)


def test_ece_perfectly_calibrated_and_fully_overconfident() -> None:
    # 10 images at confidence 0.8, 8 right: calibrated.
    proba = np.tile([0.8, 0.2], (10, 1))
    y_true = [0] * 8 + [1] * 2
    assert metrics.expected_calibration_error(y_true, proba) == pytest.approx(0.0)
    # All wrong at confidence 0.8: ECE is the confidence.
    assert metrics.expected_calibration_error([1] * 10, proba) == pytest.approx(0.8)
    table = metrics.reliability_table(y_true, proba, n_bins=5)
    assert table["count"].tolist() == [0, 0, 0, 10, 0]  # 0.8 sits in (0.6, 0.8]
    assert table["accuracy"].isna().sum() == 4


def test_confidence_distribution_and_histogram() -> None:
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.55, 0.45], [0.6, 0.4]])
    y_true = [0, 0, 0, 1, 0]  # right, right, wrong, wrong, right
    table = metrics.confidence_distribution(y_true, proba)
    right, wrong = np.array([0.9, 0.8, 0.6]), np.array([0.7, 0.55])
    assert table.loc["correct", "count"] == 3 and table.loc["wrong", "count"] == 2
    assert table.loc["correct", "mean"] == pytest.approx(right.mean())
    assert table.loc["correct", "std"] == pytest.approx(right.std(ddof=1))
    assert table.loc["wrong", "median"] == pytest.approx(np.median(wrong))
    assert table.loc["correct", "q25"] == pytest.approx(np.quantile(right, 0.25))
    histogram = metrics.confidence_histogram(y_true, proba, n_bins=5)
    assert histogram["correct"].tolist() == [0, 0, 1, 1, 1]
    assert histogram["wrong"].tolist() == [0, 0, 1, 1, 0]
    all_right = metrics.confidence_distribution([0, 0], [[0.9, 0.1], [0.8, 0.2]])
    assert (
        all_right.loc["wrong", "count"] == 0 and all_right.loc["wrong"].drop("count").isna().all()
    )


@SETTINGS
@given(proba_sets(min_classes=2))
def test_brier_and_log_loss_match_sklearn(case) -> None:
    classes, y_true, proba = case
    brier = metrics.brier_score(y_true, proba, classes=classes)
    onehot = np.eye(len(classes))[y_true]
    assert brier == pytest.approx(np.mean(np.sum((proba - onehot) ** 2, axis=1)))
    assert brier == pytest.approx(
        skm.brier_score_loss(y_true, proba, labels=classes, scale_by_half=False)
    )
    if len(classes) == 2:
        # sklearn's customary binary Brier scores the positive column only: half of ours.
        assert brier == pytest.approx(2 * skm.brier_score_loss(y_true, proba[:, 1], pos_label=1))
    assert metrics.log_loss(y_true, proba, classes=classes) == pytest.approx(
        skm.log_loss(y_true, proba, labels=classes)
    )


def test_brier_and_log_loss_edge_cases() -> None:
    perfect = np.eye(3)
    assert metrics.brier_score([0, 1, 2], perfect, classes="ABC") == 0.0
    assert metrics.log_loss([0, 1, 2], perfect) == pytest.approx(0.0)
    assert metrics.brier_score([1, 2, 0], perfect) == 2.0  # all wrong, fully confident
    assert metrics.log_loss([1], [[1.0, 0.0]]) == pytest.approx(-np.log(metrics.EPS))
    # One class: always right.
    assert metrics.brier_score(["A"], [[1.0]], classes=["A"]) == 0.0
    with pytest.warns(RuntimeWarning, match="zero images"):
        assert math.isnan(metrics.log_loss([], np.zeros((0, 2))))


# ------------------------------------------------------------------------------------------
# Bootstrap
# ------------------------------------------------------------------------------------------
def test_bootstrap_matches_scipy_percentile_bootstrap() -> None:
    rng = np.random.default_rng(4)
    y_true = rng.integers(0, 4, 60)
    y_pred = np.where(rng.random(60) < 0.7, y_true, rng.integers(0, 4, 60))
    classes = ["a", "b", "c", "d"]
    ours = metrics.bootstrap_interval(
        metrics.macro_f1_score, y_true, y_pred, classes=classes, n_resamples=300, seed=7
    )

    def statistic(t: np.ndarray, p: np.ndarray) -> float:
        with quiet():
            return skm.f1_score(t, p, labels=range(4), average="macro", zero_division=np.nan)

    reference = scipy.stats.bootstrap(
        (y_true, y_pred),
        statistic,
        paired=True,
        vectorized=False,
        n_resamples=300,
        method="percentile",
        rng=np.random.default_rng(7),
    ).confidence_interval
    assert ours == pytest.approx((reference.low, reference.high), abs=1e-12)
    # Seeded: the same call gives the same numbers; another seed gives others.
    again = metrics.bootstrap_interval(
        metrics.macro_f1_score, y_true, y_pred, classes=classes, n_resamples=300, seed=7
    )
    assert again == ours
    other = metrics.bootstrap_interval(
        metrics.macro_f1_score, y_true, y_pred, classes=classes, n_resamples=300, seed=8
    )
    assert other != ours


def test_bootstrap_all_right_and_validation() -> None:
    assert metrics.bootstrap_interval(
        metrics.balanced_accuracy_score, list("ABAB"), list("ABAB"), n_resamples=50
    ) == (1.0, 1.0)
    with pytest.raises(ValueError, match="n_resamples"):
        metrics.bootstrap_interval(metrics.accuracy_score, ["A"], ["A"], n_resamples=0)


# ------------------------------------------------------------------------------------------
# Holm, domain comparison
# ------------------------------------------------------------------------------------------
@FEWER
@given(st.lists(st.floats(0, 1), min_size=1, max_size=30))
def test_holm_matches_statsmodels(p_values: list[float]) -> None:
    expected = multipletests(p_values, method="holm")[1]
    np.testing.assert_allclose(metrics.holm_adjust(p_values), expected, atol=1e-12)


def predictions_with_counts(
    classes: list[str], support: list[int], correct: list[int], name: str
) -> Predictions:
    y_true, y_pred = [], []
    for i, (n, right) in enumerate(zip(support, correct, strict=True)):
        y_true += [i] * n
        y_pred += [i] * right + [(i + 1) % len(classes)] * (n - right)
    proba = np.eye(len(classes))[y_pred] if y_pred else np.zeros((0, len(classes)))
    return Predictions(
        classes=tuple(classes),
        paths=tuple(f"{name}/{i}.jpg" for i in range(len(y_true))),
        y_true=np.array(y_true, dtype=np.int64),
        y_proba=proba,
        name=name,
    )


@FEWER
@given(
    st.integers(2, 6).flatmap(
        lambda k: st.tuples(
            st.lists(
                st.integers(0, 25).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))),
                min_size=k,
                max_size=k,
            ),
            st.lists(
                st.integers(0, 25).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))),
                min_size=k,
                max_size=k,
            ),
        )
    )
)
def test_domain_comparison_matches_fisher_and_holm(counts) -> None:
    inside_counts, outside_counts = counts
    classes = [f"c{i}" for i in range(len(inside_counts))]
    inside = predictions_with_counts(
        classes, [n for n, _ in inside_counts], [c for _, c in inside_counts], "in"
    )
    outside = predictions_with_counts(
        classes, [n for n, _ in outside_counts], [c for _, c in outside_counts], "out"
    )
    with quiet():
        table = metrics.domain_comparison(inside, outside)
    p_values = {}
    for name, (n_in, c_in), (n_out, c_out) in zip(
        classes, inside_counts, outside_counts, strict=True
    ):
        row = table.loc[name]
        assert (row["support_in"], row["correct_in"]) == (n_in, c_in)
        assert (row["support_out"], row["correct_out"]) == (n_out, c_out)
        if n_in and n_out:
            expected = scipy.stats.fisher_exact([[c_in, n_in - c_in], [c_out, n_out - c_out]])
            assert row["p_value"] == pytest.approx(expected.pvalue)
            assert row["drop"] == pytest.approx(c_in / n_in - c_out / n_out)
            p_values[name] = expected.pvalue
        else:
            assert math.isnan(row["drop"]) and math.isnan(row["p_value"])
            assert not row["significant"]
    if p_values:
        adjusted = multipletests(list(p_values.values()), method="holm")[1]
        for name, value in zip(p_values, adjusted, strict=True):
            assert table.loc[name, "p_adjusted"] == pytest.approx(value)
            assert table.loc[name, "significant"] == (value < 0.05)
    drops = table["drop"].to_numpy()
    defined = drops[~np.isnan(drops)]
    assert (np.diff(defined) <= 0).all()  # sorted by drop, largest first
    assert np.isnan(drops[len(defined) :]).all()  # undefined last


def test_domain_comparison_finds_a_real_drop_and_summarises() -> None:
    classes = ["A", "B", "C"]
    inside = predictions_with_counts(classes, [30, 30, 30], [30, 28, 15], "in")
    outside = predictions_with_counts(classes, [30, 30, 30], [3, 27, 15], "out")
    table = metrics.domain_comparison(inside, outside)
    assert table.index.tolist() == ["A", "B", "C"]
    assert table.loc["A", "significant"] and not table.loc["B", "significant"]
    one_sided = metrics.domain_comparison(inside, outside, alternative="greater")
    expected = scipy.stats.fisher_exact([[30, 0], [3, 27]], alternative="greater").pvalue
    assert one_sided.loc["A", "p_value"] == pytest.approx(expected)
    summary = metrics.domain_gap_summary(table)
    assert summary.n_significant_drops == 1 and summary.n_significant_gains == 0
    assert summary.accuracy_in == pytest.approx(73 / 90)
    assert summary.accuracy_out == pytest.approx(45 / 90)
    assert summary.worst_classes == ("A",)
    with pytest.raises(ReportError, match="missing columns"):
        metrics.domain_gap_summary(table.drop(columns="significant"))


def test_domain_comparison_rejects_mismatched_classes() -> None:
    inside = predictions_with_counts(["A", "B"], [2, 2], [2, 2], "in")
    outside = predictions_with_counts(["A", "C"], [2, 2], [2, 2], "out")
    with pytest.raises(ReportError, match="different classes"):
        metrics.domain_comparison(inside, outside)


# ------------------------------------------------------------------------------------------
# McNemar
# ------------------------------------------------------------------------------------------
@SETTINGS
@given(label_sets(max_classes=4), st.data())
def test_mcnemar_matches_statsmodels_and_binomtest(case, data) -> None:
    classes, y_true, pred_a = case
    pred_b = np.array(
        data.draw(
            st.lists(st.integers(0, len(classes) - 1), min_size=len(y_true), max_size=len(y_true))
        )
    )
    result = metrics.mcnemar_test(y_true, pred_a, pred_b, classes=classes)
    right_a, right_b = pred_a == y_true, pred_b == y_true
    table = [
        [np.sum(right_a & right_b), np.sum(right_a & ~right_b)],
        [np.sum(~right_a & right_b), np.sum(~right_a & ~right_b)],
    ]
    reference = sm_mcnemar(table, exact=True)
    assert (result.b, result.c) == (table[0][1], table[1][0])
    assert result.statistic == reference.statistic
    assert result.p_value == pytest.approx(reference.pvalue)
    if result.b + result.c:
        binomial = scipy.stats.binomtest(result.b, result.b + result.c, 0.5).pvalue
        assert result.p_value == pytest.approx(binomial)
    else:
        assert result.p_value == 1.0
    assert result.difference == pytest.approx(right_b.mean() - right_a.mean())

    with quiet():
        per_class = metrics.paired_class_differences(y_true, pred_a, pred_b, classes=classes)
    for i, name in enumerate(classes):
        rows = y_true == i
        row = per_class.loc[name]
        assert row["support"] == rows.sum()
        assert row["only_a"] == np.sum(right_a[rows] & ~right_b[rows])
        assert row["only_b"] == np.sum(~right_a[rows] & right_b[rows])
        if rows.any():
            assert row["difference"] == pytest.approx(right_b[rows].mean() - right_a[rows].mean())
            sub = sm_mcnemar([[0, row["only_a"]], [row["only_b"], 0]], exact=True).pvalue
            assert row["p_value"] == pytest.approx(sub)
        else:
            assert math.isnan(row["p_value"])


def test_mcnemar_accepts_two_predictions_and_checks_they_match() -> None:
    a = predictions_with_counts(["A", "B"], [10, 10], [10, 5], "a")
    b = predictions_with_counts(["A", "B"], [10, 10], [4, 10], "a")
    result = metrics.mcnemar_test(a, b)
    assert (result.b, result.c) == (6, 5)
    assert result.p_value == pytest.approx(scipy.stats.binomtest(5, 11).pvalue)
    other_images = predictions_with_counts(["A", "B"], [10, 10], [4, 10], "other")
    with pytest.raises(ReportError, match="not of the same images"):
        metrics.mcnemar_test(a, other_images)
    with pytest.raises(ReportError, match="two Predictions"):
        metrics.mcnemar_test(a, [0, 1])  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# Predictions as input, Evaluation, a real model
# ------------------------------------------------------------------------------------------
def test_predictions_input_rejects_extra_arrays_and_other_classes() -> None:
    predictions = tutorial_predictions()
    with pytest.raises(ReportError, match="either a Predictions alone"):
        metrics.accuracy_score(predictions, predictions.y_pred)
    with pytest.raises(ReportError, match="differ from the Predictions' classes"):
        metrics.per_class_accuracy(predictions, classes=["A", "B"])
    assert issubclass(LabelError, AslEvalError) and issubclass(LabelError, ValueError)


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
    assert summary["macro_f1_ci_low"] <= summary["macro_f1"] <= summary["macro_f1_ci_high"]
    assert evaluation.per_class["correct"].to_dict() == TUTORIAL_CORRECT
    html = evaluation._repr_html_()
    assert "<table" in html and "nothing" in html and "0.6195" in html
    assert "0.6195" in repr(evaluation)


def test_evaluate_warns_once_per_message() -> None:
    predictions = predictions_with_counts(["A", "B", "C"], [5, 5, 0], [5, 3, 0], "t")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics.evaluate(predictions, n_resamples=20)
    messages = [str(w.message) for w in caught]
    assert len(messages) == len(set(messages))
    assert any("without images: C" in m for m in messages)


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
    assert metrics.log_loss(predictions) == pytest.approx(reference_log_loss)
    assert metrics.brier_score(predictions) == pytest.approx(
        skm.brier_score_loss(y_true, proba, labels=labels, scale_by_half=False)
    )
    assert metrics.top_k_accuracy(predictions, k=3) == pytest.approx(
        skm.top_k_accuracy_score(y_true, proba, k=3, labels=labels)
    )
    losses = metrics.top_losses(predictions, k=5)
    assert set(losses["path"]) <= set(predictions.paths)
    assert losses["loss"].is_monotonic_decreasing
