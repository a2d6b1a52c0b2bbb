"""asl_eval.metrics.comparison checked against scipy and statsmodels."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests

from asl_eval import metrics
from asl_eval.errors import MetricError
from asl_eval.predictions import Predictions

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# statsmodels' multipletests costs tens of milliseconds a call; fewer examples keep it quick.
FEWER = settings(SETTINGS, max_examples=20)


@st.composite
def label_sets(draw: st.DrawFn, max_classes: int = 4, max_n: int = 40):
    """Class names and index arrays; some classes are usually absent."""
    k = draw(st.integers(1, max_classes))
    n = draw(st.integers(1, max_n))
    index = st.integers(0, k - 1)
    y_true = np.array(draw(st.lists(index, min_size=n, max_size=n)), dtype=np.int64)
    y_pred = np.array(draw(st.lists(index, min_size=n, max_size=n)), dtype=np.int64)
    return [f"c{i}" for i in range(k)], y_true, y_pred


def names(classes: list[str], indices: np.ndarray) -> np.ndarray:
    return np.asarray(classes, dtype=object)[indices]


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
    with warnings.catch_warnings():  # classes without images in a set: NaN rows, warned
        warnings.simplefilter("ignore", RuntimeWarning)
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
    with pytest.raises(MetricError, match="missing columns"):
        metrics.domain_gap_summary(table.drop(columns="significant"))


def test_domain_comparison_rejects_mismatched_classes() -> None:
    inside = predictions_with_counts(["A", "B"], [2, 2], [2, 2], "in")
    outside = predictions_with_counts(["A", "C"], [2, 2], [2, 2], "out")
    with pytest.raises(MetricError, match="different classes"):
        metrics.domain_comparison(inside, outside)


# ------------------------------------------------------------------------------------------
def test_domain_comparison_warns_for_classes_missing_from_a_set() -> None:
    inside = predictions_with_counts(["A", "B"], [4, 4], [4, 2], "in")
    outside = predictions_with_counts(["A", "B"], [4, 0], [1, 0], "out")
    with pytest.warns(RuntimeWarning, match="without images in both sets: B"):
        table = metrics.domain_comparison(inside, outside)
    assert table.index.tolist() == ["A", "B"] and math.isnan(table.loc["B", "drop"])


def test_domain_comparison_rejects_bad_arguments() -> None:
    inside = predictions_with_counts(["A", "B"], [2, 2], [2, 2], "in")
    with pytest.raises(MetricError, match="in_domain needs a Predictions; got list"):
        metrics.domain_comparison([0, 1], inside)  # type: ignore[arg-type]
    with pytest.raises(MetricError, match="alternative must be one of 'two-sided', 'greater'"):
        metrics.domain_comparison(inside, inside, alternative="less")  # type: ignore[arg-type]
    with pytest.raises(MetricError, match="alpha must lie strictly between 0 and 1"):
        metrics.domain_comparison(inside, inside, alpha=5)


# McNemar
# ------------------------------------------------------------------------------------------
@SETTINGS
@given(label_sets(), st.data())
def test_mcnemar_matches_statsmodels_and_binomtest(case, data) -> None:
    classes, y_true, pred_a = case
    pred_b = np.array(
        data.draw(
            st.lists(st.integers(0, len(classes) - 1), min_size=len(y_true), max_size=len(y_true))
        )
    )
    labels = [names(classes, y) for y in (y_true, pred_a, pred_b)]
    result = metrics.mcnemar_test(*labels, classes=classes)
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

    with warnings.catch_warnings():  # classes without images: NaN rows, warned
        warnings.simplefilter("ignore", RuntimeWarning)
        per_class = metrics.paired_class_differences(*labels, classes=classes)
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
    with pytest.raises(MetricError, match="not of the same images"):
        metrics.mcnemar_test(a, other_images)
    with pytest.raises(MetricError, match="two Predictions"):
        metrics.mcnemar_test(a, [0, 1])  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------


def test_paired_class_differences_warns_for_classes_without_images() -> None:
    with pytest.warns(RuntimeWarning, match="paired difference is undefined .* without images: C"):
        table = metrics.paired_class_differences(list("AB"), list("AA"), list("AB"), classes="ABC")
    assert math.isnan(table.loc["C", "p_value"]) and table.loc["B", "only_b"] == 1
