"""asl_eval.metrics.intervals (Wilson) and .bootstrap, checked against statsmodels and scipy."""

from __future__ import annotations

import inspect
import math
import warnings

import numpy as np
import pytest
import scipy.stats
import sklearn.metrics as skm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import UndefinedMetricWarning
from statsmodels.stats.proportion import proportion_confint

from asl_eval import metrics
from asl_eval.errors import MetricError
from asl_eval.predictions import Predictions

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CLASSES = ["a", "b", "c", "d"]


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
    with pytest.raises(MetricError, match="0 <= successes <= n"):
        metrics.wilson_interval(successes, n)


def test_wilson_rejects_bad_confidence() -> None:
    with pytest.raises(MetricError, match="strictly between 0 and 1"):
        metrics.wilson_interval(3, 5, confidence=95)


def test_accuracy_with_interval_matches_statsmodels() -> None:
    result = metrics.accuracy_with_interval(list("AABBC"), list("ABBBC"))
    assert (result.accuracy, result.correct, result.n) == (0.8, 4, 5)
    assert (result.ci_low, result.ci_high) == pytest.approx(
        proportion_confint(4, 5, method="wilson")
    )
    assert result.error_rate == pytest.approx(0.2)

    assert result.error_rate == pytest.approx(0.2)
    assert issubclass(MetricError, ValueError)  # callers catching ValueError keep working


# ------------------------------------------------------------------------------------------
# Bootstrap
# ------------------------------------------------------------------------------------------
def noisy_labels(seed: int, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Class names for ``n`` images, about 70% predicted right."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 4, n)
    y_pred = np.where(rng.random(n) < 0.7, y_true, rng.integers(0, 4, n))
    names = np.asarray(CLASSES, dtype=object)
    return names[y_true], names[y_pred]


def sklearn_macro_f1(t: np.ndarray, p: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return skm.f1_score(t, p, labels=CLASSES, average="macro", zero_division=np.nan)


def test_bootstrap_matches_scipy_percentile_bootstrap() -> None:
    y_true, y_pred = noisy_labels(4)
    ours = metrics.bootstrap_interval(
        metrics.macro_f1_score, y_true, y_pred, classes=CLASSES, n_resamples=300, seed=7
    )
    reference = scipy.stats.bootstrap(
        (y_true, y_pred),
        sklearn_macro_f1,
        paired=True,
        vectorized=False,
        n_resamples=300,
        method="percentile",
        rng=np.random.default_rng(7),
    ).confidence_interval
    assert ours == pytest.approx((reference.low, reference.high), abs=1e-12)
    # Seeded: the same call gives the same numbers; another seed gives others.
    again = metrics.bootstrap_interval(
        metrics.macro_f1_score, y_true, y_pred, classes=CLASSES, n_resamples=300, seed=7
    )
    assert again == ours
    other = metrics.bootstrap_interval(
        metrics.macro_f1_score, y_true, y_pred, classes=CLASSES, n_resamples=300, seed=8
    )
    assert other != ours


@pytest.mark.parametrize(
    ("metric", "reference"),
    [
        (metrics.accuracy_score, skm.accuracy_score),
        (metrics.error_rate, lambda t, p: 1 - skm.accuracy_score(t, p)),
        (metrics.balanced_accuracy_score, skm.balanced_accuracy_score),
    ],
)
def test_bootstrap_of_count_metrics_matches_scipy(metric, reference) -> None:  # type: ignore[no-untyped-def]
    y_true, y_pred = noisy_labels(5, n=40)
    ours = metrics.bootstrap_interval(metric, y_true, y_pred, n_resamples=200, seed=3)
    with warnings.catch_warnings():  # a resample may lack a class: sklearn warns, we do not
        warnings.simplefilter("ignore", UserWarning)
        expected = scipy.stats.bootstrap(
            (y_true, y_pred),
            reference,
            paired=True,
            vectorized=False,
            n_resamples=200,
            method="percentile",
            rng=np.random.default_rng(3),
        ).confidence_interval
    assert ours == pytest.approx((expected.low, expected.high), abs=1e-12)


def test_bootstrap_of_any_metric_equals_the_vectorised_path() -> None:
    """A metric the bootstrap does not recognise is called per resample; same numbers."""
    y_true, y_pred = noisy_labels(6)

    def wrapped(t: np.ndarray, p: np.ndarray, *, classes: list[str]) -> float:
        return metrics.macro_f1_score(t, p, classes=classes)

    generic = metrics.bootstrap_interval(wrapped, y_true, y_pred, n_resamples=100, seed=1)
    fast = metrics.bootstrap_interval(
        metrics.macro_f1_score, y_true, y_pred, n_resamples=100, seed=1
    )
    assert generic == pytest.approx(fast, abs=1e-12)


def test_bootstrap_leaves_out_nan_resamples_with_a_warning() -> None:
    y_true = np.array(list("AAAAAAAAAB"), dtype=object)
    y_pred = np.array(list("AAAAAAAAAB"), dtype=object)

    def precision_of_b(t: np.ndarray, p: np.ndarray, *, classes: list[str]) -> float:
        return float(metrics.classification_table(t, p, classes=classes).loc["B", "precision"])

    with pytest.warns(RuntimeWarning, match=r"NaN on \d+ of 200 resamples; they are left out"):
        low, high = metrics.bootstrap_interval(precision_of_b, y_true, y_pred, n_resamples=200)
    assert (low, high) == (1.0, 1.0)  # every resample that predicts B gets it right
    with pytest.warns(RuntimeWarning, match="NaN on every resample"):
        undefined = metrics.bootstrap_interval(
            lambda t, p, classes: math.nan, y_true, y_pred, n_resamples=20
        )
    assert all(math.isnan(x) for x in undefined)


def test_bootstrap_edge_cases_and_validation() -> None:
    assert metrics.bootstrap_interval(
        metrics.balanced_accuracy_score, list("ABAB"), list("ABAB"), n_resamples=50
    ) == (1.0, 1.0)
    assert metrics.bootstrap_interval(metrics.accuracy_score, ["A"], ["B"]) == (0.0, 0.0)
    with pytest.warns(RuntimeWarning, match="zero images"):
        empty = metrics.bootstrap_interval(metrics.accuracy_score, [], [], classes=["A"])
    assert all(math.isnan(x) for x in empty)
    with pytest.raises(MetricError, match="n_resamples must be a positive integer; got 0"):
        metrics.bootstrap_interval(metrics.accuracy_score, ["A"], ["A"], n_resamples=0)
    with pytest.raises(MetricError, match="confidence must lie strictly between 0 and 1"):
        metrics.bootstrap_interval(metrics.accuracy_score, ["A"], ["A"], confidence=1.0)


# ------------------------------------------------------------------------------------------
# One default number of resamples, shared by evaluate and the report
# ------------------------------------------------------------------------------------------
def test_one_default_number_of_resamples() -> None:
    assert metrics.DEFAULT_N_RESAMPLES == 1000
    for function in (metrics.bootstrap_interval, metrics.evaluate):
        default = inspect.signature(function).parameters["n_resamples"].default
        assert default is metrics.DEFAULT_N_RESAMPLES, function.__name__


def test_evaluate_interval_is_bootstrap_interval_with_the_default() -> None:
    """A notebook user recomputing the report's macro-F1 interval gets the same numbers."""
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 5, 120)
    proba = rng.dirichlet(np.ones(5), 120)
    proba[np.arange(120), y_true] += 0.4  # mostly right
    proba /= proba.sum(axis=1, keepdims=True)
    predictions = Predictions(
        classes=tuple("ABCDE"), paths=tuple(f"{i}.png" for i in range(120)), y_true=y_true,
        y_proba=proba,
    )  # fmt: skip
    evaluation = metrics.evaluate(predictions, seed=11)
    assert evaluation.n_resamples == metrics.DEFAULT_N_RESAMPLES and evaluation.seed == 11
    by_hand = metrics.bootstrap_interval(metrics.macro_f1_score, predictions, seed=11)
    assert evaluation.macro_f1_ci == by_hand
    explicit = metrics.bootstrap_interval(
        metrics.macro_f1_score, predictions, n_resamples=metrics.DEFAULT_N_RESAMPLES, seed=11
    )
    assert explicit == by_hand
    fewer = metrics.evaluate(predictions, n_resamples=300, seed=11)
    assert fewer.n_resamples == 300
    assert fewer.macro_f1_ci == metrics.bootstrap_interval(
        metrics.macro_f1_score, predictions, n_resamples=300, seed=11
    )
    assert fewer.macro_f1_ci != evaluation.macro_f1_ci
