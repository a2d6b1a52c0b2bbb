"""asl_eval.metrics.calibration checked against scikit-learn and explicit loops."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.special
import sklearn.metrics as skm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.calibration import calibration_curve

from asl_eval import metrics
from asl_eval.errors import LabelError, MetricError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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
    assert metrics.brier_score(list("ABC"), perfect, classes="ABC") == 0.0
    assert metrics.brier_score([0, 1, 2], perfect, classes=[0, 1, 2]) == 0.0
    assert metrics.log_loss([0, 1, 2], perfect) == pytest.approx(0.0)
    assert metrics.brier_score([1, 2, 0], perfect) == 2.0  # all wrong, fully confident
    assert metrics.log_loss([1], [[1.0, 0.0]]) == pytest.approx(-np.log(metrics.EPS))
    # One class: always right.
    assert metrics.brier_score(["A"], [[1.0]], classes=["A"]) == 0.0
    with pytest.warns(RuntimeWarning, match="zero images"):
        assert math.isnan(metrics.log_loss([], np.zeros((0, 2))))
    with pytest.warns(RuntimeWarning, match="Brier score is undefined"):
        assert math.isnan(metrics.brier_score([], np.zeros((0, 2))))
    with pytest.raises(
        LabelError, match=r"integer labels \(0, 1, 2\) but classes hold no integers"
    ):
        metrics.brier_score([0, 1, 2], perfect, classes="ABC")


def test_proba_validation() -> None:
    with pytest.raises(MetricError, match="Apply softmax"):
        metrics.top_k_accuracy([0, 1], [[2.0, -1.0], [0.5, 0.5]])
    with pytest.raises(MetricError, match=r"rows 0\)"):
        metrics.log_loss([0], [[np.nan, 1.0]])
    with pytest.raises(MetricError, match="2 columns but there are 3 classes"):
        metrics.log_loss([0], [[0.5, 0.5]], classes=["A", "B", "C"])
    with pytest.raises(MetricError, match=r"shape \(n_images, n_classes\)"):
        metrics.brier_score([0, 1], [[0.5, 0.5]])
    with pytest.raises(MetricError, match="y_proba is missing"):
        metrics.log_loss([0, 1])
    with pytest.raises(MetricError, match="n_bins must be a positive integer; got 0"):
        metrics.reliability_table([0], [[1.0, 0.0]], n_bins=0)
    with pytest.raises(MetricError, match=r"n_bins must be a positive integer; got 2\.5"):
        metrics.confidence_histogram([0], [[1.0, 0.0]], n_bins=2.5)  # type: ignore[arg-type]


def test_ece_of_no_images_is_nan_with_warning() -> None:
    with pytest.warns(RuntimeWarning, match="ECE is undefined"):
        assert math.isnan(metrics.expected_calibration_error([], np.zeros((0, 2))))
    empty = metrics.confidence_distribution([], np.zeros((0, 2)))
    assert empty["count"].tolist() == [0, 0] and empty.drop(columns="count").isna().all().all()
