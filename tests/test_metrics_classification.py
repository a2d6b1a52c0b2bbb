"""asl_eval.metrics.validation, .classification and .confusion, checked against scikit-learn.

scikit-learn is the reference; hand computations pin the edge cases (classes absent from y_true
or y_pred, one class, all right, all wrong, no images) and the label-encoding rules (nothing
dropped, no mixed label types).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
import scipy.special
import sklearn.metrics as skm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import UndefinedMetricWarning

from asl_eval import metrics
from asl_eval.errors import AslEvalError, LabelError, MetricError
from asl_eval.predictions import Predictions

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def label_sets(draw: st.DrawFn, max_classes: int = 6, min_n: int = 1, max_n: int = 40):
    """Class names and index arrays; some classes are usually absent from y_true or y_pred."""
    k = draw(st.integers(1, max_classes))
    n = draw(st.integers(min_n, max_n))
    index = st.integers(0, k - 1)
    y_true = np.array(draw(st.lists(index, min_size=n, max_size=n)), dtype=np.int64)
    y_pred = np.array(draw(st.lists(index, min_size=n, max_size=n)), dtype=np.int64)
    classes = [f"c{i}" for i in range(k)]
    return classes, y_true, y_pred


@st.composite
def proba_sets(draw: st.DrawFn, min_classes: int = 2, max_classes: int = 6, max_n: int = 40):
    """Classes ``0..k-1``, true indices and probability rows without ties (softmax of
    distinct integers)."""
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
    proba = scipy.special.softmax(np.array(rows, dtype=np.float64) / 8.0, axis=1)
    return list(range(k)), y_true, proba


def names(classes: list[str], indices: np.ndarray) -> np.ndarray:
    return np.asarray(classes, dtype=object)[indices]


@contextmanager
def quiet() -> Iterator[None]:
    """Silence the NaN warnings that hypothesis cases raise in ours and in the references, and
    scikit-learn's notes on labels missing from y_true or y_pred."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"sklearn\.")
        yield


# ------------------------------------------------------------------------------------------
# Accuracy
# ------------------------------------------------------------------------------------------
@SETTINGS
@given(label_sets())
def test_accuracy_matches_sklearn(case) -> None:
    classes, y_true, y_pred = case
    expected = skm.accuracy_score(y_true, y_pred)
    true_names, pred_names = names(classes, y_true), names(classes, y_pred)
    assert metrics.accuracy_score(true_names, pred_names) == pytest.approx(expected)
    assert metrics.accuracy_score(true_names, pred_names, classes=classes) == pytest.approx(
        expected
    )
    assert metrics.accuracy_score(y_true, y_pred) == pytest.approx(expected)  # integer labels
    assert metrics.error_rate(true_names, pred_names, classes=classes) == pytest.approx(
        1 - expected
    )


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
    with pytest.raises(LabelError, match=r"1 of 2 y_pred labels are not among the 2 classes: 5"):
        metrics.accuracy_score([0, 1], [0, 5], classes=[0, 1])
    with pytest.raises(LabelError, match="unique"):
        metrics.accuracy_score(["A"], ["A"], classes=["A", "A"])
    with pytest.raises(LabelError, match="classes is empty"):
        metrics.accuracy_score(["A"], ["A"], classes=[])
    with pytest.raises(MetricError, match="one entry per image; got 2 and 1"):
        metrics.accuracy_score(["A", "B"], ["A"])
    with pytest.raises(MetricError, match="y_pred is missing"):
        metrics.accuracy_score(["A", "B"])
    with pytest.raises(MetricError, match="one-dimensional"):
        metrics.accuracy_score([["A"]], [["A"]])


def test_integer_labels_with_string_classes_are_refused() -> None:
    """The issue's case: [1, 2] against classes "1", "2", "3" used to count as positions."""
    with pytest.raises(
        LabelError,
        match=r"y_true holds integer labels \(1, 2\) but classes hold no integers \('1', '2'",
    ):
        metrics.per_class_accuracy([1, 2], [1, 2], classes=["1", "2", "3"])
    with pytest.raises(LabelError, match=r"np\.asarray\(classes\)\[indices\]"):
        metrics.confusion_matrix(["A", "B"], np.array([0, 1]), classes=["A", "B"])
    with pytest.raises(LabelError, match="y_true holds integer labels"):
        metrics.log_loss([0, 1], [[0.5, 0.5], [0.5, 0.5]], classes=["A", "B"])
    with pytest.raises(LabelError, match="pred_b holds integer labels"):
        metrics.mcnemar_test(["A"], ["A"], [0], classes=["A", "B"])


def test_string_labels_with_integer_classes_and_mixed_labels_are_refused() -> None:
    with pytest.raises(
        LabelError, match=r"y_true holds string labels \('1', '2'\) but classes hold no strings"
    ):
        metrics.accuracy_score(["1", "2"], ["1", "2"], classes=[1, 2])
    with pytest.raises(LabelError, match="mix integers and strings"):
        metrics.accuracy_score([1, 2], ["1", "2"])
    with pytest.raises(LabelError, match="mix integers and strings"):
        metrics.accuracy_score(pd.Series([1, "A"], dtype=object), ["A", "A"])


def test_integer_classes_keep_integer_labels() -> None:
    """Integer labels with integer classes are matched by value (indices when 0..k-1)."""
    with pytest.warns(RuntimeWarning, match="without images: 2"):
        by_int = metrics.per_class_accuracy([0, 1, 1], [0, 1, 2], classes=[0, 1, 2])
    with pytest.warns(RuntimeWarning, match="without images: C"):
        by_name = metrics.per_class_accuracy(["A", "B", "B"], ["A", "B", "C"], classes=list("ABC"))
    np.testing.assert_array_equal(by_int.to_numpy(), by_name.to_numpy())
    assert by_int.index.tolist() == [0, 1, 2]
    assert metrics.accuracy_score([5, 7, 7], [5, 7, 5], classes=[7, 5]) == pytest.approx(2 / 3)
    assert metrics.accuracy_score([True, False], [True, True]) == 0.5  # booleans are labels


# ------------------------------------------------------------------------------------------
# Per-class accuracy
# ------------------------------------------------------------------------------------------
@SETTINGS
@given(label_sets())
def test_per_class_accuracy_is_sklearn_recall(case) -> None:
    from statsmodels.stats.proportion import proportion_confint

    classes, y_true, y_pred = case
    with quiet():
        table = metrics.per_class_accuracy(
            names(classes, y_true), names(classes, y_pred), classes=classes
        )
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


def test_warnings_point_at_the_callers_line() -> None:
    with pytest.warns(RuntimeWarning, match="without images") as record:
        metrics.per_class_accuracy(["A"], ["A"], classes=["A", "B"])
    assert record[0].filename == __file__


# ------------------------------------------------------------------------------------------
# Precision / recall / F1
# ------------------------------------------------------------------------------------------
@SETTINGS
@given(label_sets())
def test_classification_table_matches_sklearn(case) -> None:
    classes, y_true, y_pred = case
    labels = list(range(len(classes)))
    with quiet():
        table = metrics.classification_table(
            names(classes, y_true), names(classes, y_pred), classes=classes
        )
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
    macro_f1 = metrics.macro_f1_score(
        names(classes, y_true), names(classes, y_pred), classes=classes
    )
    assert macro_f1 == pytest.approx(table.loc["macro avg", "f1"], nan_ok=True)


def test_class_never_predicted_has_nan_precision_and_warning() -> None:
    with (
        pytest.warns(RuntimeWarning, match=r"recall is undefined .* without images: B"),
        pytest.warns(RuntimeWarning, match=r"precision is undefined .* never predicted: B, C"),
    ):
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
    got = metrics.balanced_accuracy_score(
        names(classes, y_true), names(classes, y_pred), classes=classes
    )
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
    with pytest.raises(MetricError, match="k must be a positive integer; got 0"):
        metrics.top_k_accuracy([0], proba, k=0)
    with pytest.raises(MetricError, match="positive integer; got True"):
        metrics.top_k_accuracy([0], proba, k=True)
    with pytest.warns(RuntimeWarning, match="zero images"):
        assert math.isnan(metrics.top_k_accuracy([], np.zeros((0, 3))))


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
    with pytest.raises(MetricError, match="normalize must be one of None, 'true'"):
        metrics.confusion_matrix(["A"], ["A"], normalize="rows")  # type: ignore[arg-type]
    with pytest.warns(RuntimeWarning, match="never predicted: B"):
        metrics.confusion_matrix(["A", "B"], ["A", "A"], normalize="pred")
    with pytest.warns(RuntimeWarning, match="without images: C"):
        metrics.confusion_matrix(["A", "B"], ["A", "A"], classes=list("ABC"), normalize="true")
    with pytest.warns(RuntimeWarning, match="zero images"):
        metrics.confusion_matrix([], [], classes=["A"], normalize="all")


@SETTINGS
@given(label_sets(), st.integers(1, 3))
def test_most_confused_lists_off_diagonal_cells(case, min_count: int) -> None:
    classes, y_true, y_pred = case
    table = metrics.most_confused(
        names(classes, y_true), names(classes, y_pred), classes=classes, min_count=min_count
    )
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
    with pytest.raises(MetricError, match="min_count must be a positive integer"):
        metrics.most_confused(["A"], ["A"], min_count=0)


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
    assert metrics.top_losses(predictions, k=0).empty
    with pytest.raises(MetricError, match="needs a Predictions"):
        metrics.top_losses(proba)  # type: ignore[arg-type]
    with pytest.raises(MetricError, match="k must be a non-negative integer; got -1"):
        metrics.top_losses(predictions, k=-1)


def test_predictions_input_rejects_extra_arrays_and_other_classes() -> None:
    predictions = Predictions.from_labels(["A", "B"], np.eye(2), ["A", "B"])
    with pytest.raises(MetricError, match="either a Predictions alone"):
        metrics.accuracy_score(predictions, predictions.y_pred)
    with pytest.raises(MetricError, match="differ from the Predictions' classes"):
        metrics.per_class_accuracy(predictions, classes=["A", "C"])
    assert issubclass(LabelError, AslEvalError) and issubclass(LabelError, ValueError)
    assert issubclass(MetricError, AslEvalError) and issubclass(MetricError, ValueError)
