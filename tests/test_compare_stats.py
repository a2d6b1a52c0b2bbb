"""The numbers of ``asl-eval compare`` against independent implementations: McNemar's exact
test and Holm's adjustment against statsmodels, the rejection threshold against scipy's
binomial test, the power formula and the paired interval against simulation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from asl_eval.compare import CompareOptions, compare_sides
from asl_eval.compare.reading import ReportSide, SetRecord, SplitInfo
from asl_eval.compare.statistics import (
    mcnemar_power,
    paired_difference_interval,
    rejection_threshold,
)
from asl_eval.metrics import holm_adjust

CLASSES = tuple("ABCDEFG")


def _side(label: str, y_true: np.ndarray, y_pred: np.ndarray) -> ReportSide:
    n = len(y_true)
    rows = pd.DataFrame(
        {
            "path": [f"/d/{i}.jpg" for i in range(n)],
            "relpath": [f"{i}.jpg" for i in range(n)],
            "sha256": [f"{i:064x}" for i in range(n)],
            "y_true": [CLASSES[t] for t in y_true],
            "y_pred": [CLASSES[p] for p in y_pred],
            "confidence": np.full(n, 0.9),
        }
    )
    return ReportSide(
        label=label,
        json_path=Path(f"{label}.json"),
        model_path="",
        model_sha256="",
        classes=CLASSES,
        sets={"test": SetRecord("test", "test", None, None, rows)},
        split=SplitInfo(None, ""),
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mcnemar_and_per_class_values_equal_statsmodels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 700
    y = rng.integers(0, len(CLASSES), n)
    base = np.where(rng.random(n) < 0.8, y, rng.integers(0, len(CLASSES), n))
    worse = rng.random(n) < np.where(y == 2, 0.3, 0.03)  # class C hit hardest
    new = np.where(worse, (y + 1) % len(CLASSES), np.where(rng.random(n) < 0.05, y, base))
    result = compare_sides(_side("BASE", y, base), _side("NEW", y, new), CompareOptions())
    (s,) = result.sets
    right_base, right_new = base == y, new == y
    table = [
        [np.sum(right_base & right_new), np.sum(right_base & ~right_new)],
        [np.sum(~right_base & right_new), np.sum(~right_base & ~right_new)],
    ]
    assert (s.only_base, s.only_new) == (table[0][1], table[1][0])
    assert s.p_value == pytest.approx(mcnemar(table, exact=True).pvalue, rel=1e-10)
    p_values = []
    for k, name in enumerate(CLASSES):
        mask = y == k
        b = int(np.sum(right_base[mask] & ~right_new[mask]))
        c = int(np.sum(~right_base[mask] & right_new[mask]))
        row = s.per_class.loc[name]
        assert (row["only_a"], row["only_b"]) == (b, c)
        expected = mcnemar([[0, b], [c, 0]], exact=True).pvalue
        assert row["p_value"] == pytest.approx(expected, rel=1e-10)
        p_values.append(expected)
    holm = multipletests(p_values, method="holm")[1]
    assert s.per_class["p_adjusted"].to_numpy() == pytest.approx(holm, rel=1e-10)
    assert "C" in s.regressed_classes


def test_holm_adjust_equals_statsmodels() -> None:
    rng = np.random.default_rng(3)
    for size in (1, 2, 5, 30):
        p = rng.random(size) ** 3
        assert holm_adjust(p) == pytest.approx(multipletests(p, method="holm")[1], rel=1e-12)


def test_rejection_threshold_matches_scipy_binomial_test() -> None:
    for alpha in (0.05, 0.01, 0.0125):
        totals = np.arange(1, 160)
        k = rejection_threshold(totals, alpha)
        for total, threshold in zip(totals, k, strict=True):
            rejects = [binomtest(b, total, 0.5).pvalue < alpha for b in range(total // 2 + 1)]
            expected = max((b for b, r in enumerate(rejects) if r), default=-1)
            assert threshold == expected, (alpha, total)
        assert rejection_threshold(0, alpha).tolist() == [-1]


@pytest.mark.parametrize(
    ("n", "drop", "discordance", "alpha"),
    [(300, 0.03, 0.08, 0.05), (1000, 0.01, 0.01, 0.05), (150, 0.05, 0.2, 0.025)],
)
def test_power_formula_agrees_with_simulation(
    n: int, drop: float, discordance: float, alpha: float
) -> None:
    """Simulate paired outcomes, run the exact test (scipy's binomtest), count rejections."""
    rng = np.random.default_rng(7)
    n_sim = 3000
    p_b, p_c = (discordance + drop) / 2, (discordance - drop) / 2
    counts = rng.multinomial(n, [p_b, p_c, 1 - p_b - p_c], size=n_sim)
    cache: dict[tuple[int, int], bool] = {}
    rejected = 0
    for b, c, _ in counts:
        key = (int(b), int(c))
        if key not in cache:
            cache[key] = b + c > 0 and binomtest(int(b), int(b + c), 0.5).pvalue < alpha
        rejected += cache[key]
    simulated = rejected / n_sim
    computed = mcnemar_power(n, drop=drop, discordance=discordance, alpha=alpha)
    standard_error = np.sqrt(computed * (1 - computed) / n_sim)
    assert abs(simulated - computed) < 4 * standard_error + 1e-3


def test_power_grows_with_size_and_refuses_impossible_arguments() -> None:
    powers = [mcnemar_power(n, drop=0.01, discordance=0.03) for n in (100, 1000, 5000, 20000)]
    assert powers == sorted(powers) and powers[0] < 0.1 < 0.9 < powers[-1]
    with pytest.raises(ValueError, match="drop <= discordance"):
        mcnemar_power(100, drop=0.05, discordance=0.01)


@pytest.mark.parametrize(
    ("n", "p_both", "p_only_base", "p_only_new"),
    [(60, 0.7, 0.1, 0.05), (200, 0.85, 0.04, 0.04), (40, 0.85, 0.08, 0.02)],
)
def test_paired_interval_covers_the_true_difference(
    n: int, p_both: float, p_only_base: float, p_only_new: float
) -> None:
    """Newcombe's method 10 keeps close to its nominal 95% (he reports 0.93-0.97)."""
    rng = np.random.default_rng(11)
    truth = p_only_new - p_only_base
    probabilities = [p_both, p_only_base, p_only_new, 1 - p_both - p_only_base - p_only_new]
    tables = rng.multinomial(n, probabilities, size=3000)
    covered = [
        low <= truth <= high
        for low, high in (paired_difference_interval(*map(int, t)) for t in tables)
    ]
    assert 0.92 <= np.mean(covered) <= 0.99


def test_paired_interval_holds_the_estimate_and_stays_in_range() -> None:
    for table in [(80, 10, 2, 8), (0, 0, 0, 5), (5, 0, 0, 0), (0, 7, 0, 0), (3, 1, 9, 2)]:
        low, high = paired_difference_interval(*table)
        n = sum(table)
        estimate = (table[2] - table[1]) / n
        assert -1 <= low <= estimate <= high <= 1
    assert np.isnan(paired_difference_interval(0, 0, 0, 0)).all()


def test_the_paired_interval_matches_newcombes_published_example() -> None:
    """Newcombe (1998), Statistics in Medicine 17:2635, Table II, method 10 (hybrid score, no
    continuity correction): 36 pairs right for both, 12 right only for one, 2 only for the
    other, 0 for neither -> 0.0569 to 0.3404 for the difference of 10/50."""
    assert paired_difference_interval(36, 2, 12, 0) == pytest.approx((0.0569, 0.3404), abs=5e-5)
    low, high = paired_difference_interval(36, 12, 2, 0)
    assert (low, high) == pytest.approx((-0.3404, -0.0569), abs=5e-5)
