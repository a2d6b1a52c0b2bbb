"""The findings checks on planted problems: each check fires on a small constructed set with
its problem, with numbers checked against scipy/statsmodels or by hand, and stays silent on a
clean one. The ranking orders several planted problems on one scale."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom, fisher_exact, mannwhitneyu, ttest_1samp
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from asl_eval.analysis import AnalysisResult
from asl_eval.errors import MetricError
from asl_eval.findings import (
    Check,
    Evidence,
    Finding,
    FindingsOptions,
    FindingsSet,
    SkipCheck,
    find,
    findings_of,
    findings_text,
    register_check,
    skipped_of,
    unregister_check,
)
from asl_eval.findings.stats import (
    concentration_p_value,
    fisher_min_p_value,
    mann_whitney,
    mean_interval,
    newcombe_difference,
)
from asl_eval.metrics import domain_comparison, evaluate
from asl_eval.predictions import Predictions

CLASSES = ("A", "B", "C", "D", "E", "F")


def proba(pred: Sequence[str], confidence: float | Sequence[float], classes=CLASSES) -> np.ndarray:  # type: ignore[no-untyped-def]
    """One row per image: ``confidence`` on the predicted class, the rest spread evenly."""
    k = len(classes)
    conf = np.broadcast_to(np.asarray(confidence, dtype=float), (len(pred),))
    out = np.repeat(((1 - conf) / (k - 1))[:, None], k, axis=1)
    out[np.arange(len(pred)), [classes.index(c) for c in pred]] = conf
    return out


def make_set(
    plan: dict[str, dict[str, int]],
    name: str,
    confidence: float | Sequence[float] = 0.9,
    classes: Sequence[str] = CLASSES,
) -> Predictions:
    """A set from ``{true: {predicted: count}}``."""
    y_true: list[str] = []
    y_pred: list[str] = []
    for true, row in plan.items():
        for pred, count in row.items():
            y_true += [true] * count
            y_pred += [pred] * count
    paths = [f"{name}/{t}/{i}.jpg" for i, t in enumerate(y_true)]
    return Predictions.from_labels(
        y_true, proba(y_pred, confidence, tuple(classes)), list(classes), paths=paths, name=name
    )


def clean_plan(n: int, wrong: int = 0) -> dict[str, dict[str, int]]:
    """Every class right ``n - wrong`` times, its errors spread one each over the next ones."""
    plan = {}
    for i, c in enumerate(CLASSES):
        row = {c: n - wrong}
        for j in range(wrong):
            other = CLASSES[(i + 1 + j) % len(CLASSES)]
            row[other] = row.get(other, 0) + 1
        plan[c] = row
    return plan


def by_check(result: AnalysisResult, check: str) -> list[Finding]:
    return [f for f in findings_of(result) if f.check == check]


def run(*sets: tuple[Predictions, str], **kwargs) -> AnalysisResult:  # type: ignore[no-untyped-def]
    return find([FindingsSet(p, role) for p, role in sets], **kwargs)  # type: ignore[arg-type]


# -- the statistics against independent implementations ------------------------------------
@pytest.mark.parametrize(
    "counts", [(19, 20, 3, 30), (228, 240, 112, 180), (5, 5, 0, 1), (0, 7, 3, 9)]
)
def test_newcombe_difference_matches_statsmodels(counts: tuple[int, int, int, int]) -> None:
    difference, low, high = newcombe_difference(*counts)
    expected = confint_proportions_2indep(*counts, method="newcomb", compare="diff")
    assert difference == pytest.approx(counts[0] / counts[1] - counts[2] / counts[3])
    assert (low, high) == pytest.approx(tuple(map(float, expected)), abs=1e-12)


def test_mean_interval_matches_scipy_t_interval() -> None:
    values = np.random.default_rng(3).normal(0.2, 0.5, size=40)
    mean, low, high = mean_interval(values)
    ci = ttest_1samp(values, 0.0).confidence_interval(0.95)
    assert (mean, low, high) == pytest.approx((values.mean(), ci.low, ci.high))
    assert math.isnan(mean_interval([0.3])[1])


def test_concentration_p_value_is_the_union_bound_by_hand() -> None:
    # 6 of 8 errors to one of 4 other classes: 4 * P[Binomial(8, 1/4) >= 6]
    tail = sum(math.comb(8, i) * 0.25**i * 0.75 ** (8 - i) for i in range(6, 9))
    assert concentration_p_value(6, 8, 4) == pytest.approx(4 * tail)
    assert concentration_p_value(1, 8, 4) == 1.0  # the bound caps at 1
    assert concentration_p_value(3, 3, 1) == 1.0  # one other class: nothing to prefer


@pytest.mark.parametrize(("n_1", "n_2"), [(1, 1), (2, 3), (5, 5), (3, 20)])
def test_fisher_min_p_value_by_hand(n_1: int, n_2: int) -> None:
    extreme = 1 / math.comb(n_1 + n_2, n_1)
    expected = min(1.0, 2 * extreme if n_1 == n_2 else extreme)
    assert fisher_min_p_value(n_1, n_2) == pytest.approx(expected)


def test_mann_whitney_auc_is_the_pairwise_share() -> None:
    first, second = np.array([0.9, 0.5, 0.7, 0.7]), np.array([0.7, 0.2, 0.6])
    pairs = [(a > b) + 0.5 * (a == b) for a in first for b in second]
    auc, p_value = mann_whitney(first, second)
    assert auc == pytest.approx(np.mean(pairs))
    assert p_value == pytest.approx(mannwhitneyu(first, second).pvalue)


# -- (1) the out-of-domain drop -------------------------------------------------------------
def drop_sets() -> tuple[Predictions, Predictions]:
    inside = make_set(clean_plan(40, wrong=2), "valid")
    plan = clean_plan(30, wrong=3)
    plan["E"] = {"A": 10, "B": 10, "C": 10}  # E never right out of domain
    plan["A"] = {"A": 12, "D": 18}  # A mostly taken for D
    return inside, make_set(plan, "massey", confidence=0.7)


def test_domain_drop_fires_with_the_report_numbers() -> None:
    inside, outside = drop_sets()
    result = run((inside, "in-domain"), (outside, "test"))
    (overall,) = by_check(result, "domain-drop")
    c_in, n_in = int((inside.y_true == inside.y_pred).sum()), inside.n_images
    c_out, n_out = int((outside.y_true == outside.y_pred).sum()), outside.n_images
    low, high = confint_proportions_2indep(c_in, n_in, c_out, n_out, method="newcomb")
    assert overall.effect == pytest.approx(c_in / n_in - c_out / n_out)
    assert (overall.effect_low, overall.effect_high) == pytest.approx((low, high))
    assert overall.numbers["p_value"] == pytest.approx(
        fisher_exact([[c_in, n_in - c_in], [c_out, n_out - c_out]]).pvalue
    )
    assert overall.score == pytest.approx(n_out * low)
    assert overall.evidence.anchor == "per-class"
    assert overall.evidence.classes[:2] == ("E", "A")
    assert "worst classes: E 0 of 30, A 12 of 30" in overall.sentence
    assert f"({c_in} of {n_in})" in overall.sentence


def test_class_drops_equal_the_per_class_table_after_holm() -> None:
    inside, outside = drop_sets()
    result = run((inside, "in-domain"), (outside, "test"))
    table = domain_comparison(inside, outside)  # the report's per-class drop columns
    significant = table[table["significant"] & (table["drop"] > 0)]
    found = {f.evidence.classes[0]: f for f in by_check(result, "class-drop")}
    assert set(found) == set(significant.index) == {"A", "E"}
    for name, finding in found.items():
        row = table.loc[name]
        assert finding.numbers["accuracy_in"] == row["accuracy_in"]
        assert finding.numbers["accuracy_out"] == row["accuracy_out"]
        assert finding.numbers["p_adjusted"] == row["p_adjusted"]
        assert finding.effect == pytest.approx(row["drop"])
    # and against an independent Fisher's exact test per class with Holm across the classes
    counts = [
        (
            int(((inside.y_true == i) & (inside.y_pred == i)).sum()),
            int((inside.y_true == i).sum()),
            int(((outside.y_true == i) & (outside.y_pred == i)).sum()),
            int((outside.y_true == i).sum()),
        )
        for i in range(len(CLASSES))
    ]
    raw = [fisher_exact([[a, n - a], [b, m - b]]).pvalue for a, n, b, m in counts]
    holm = multipletests(raw, method="holm")[1]
    expected = {
        CLASSES[i] for i, (a, n, b, m) in enumerate(counts) if holm[i] < 0.05 and a / n > b / m
    }
    assert set(found) == expected
    for name, finding in found.items():
        assert finding.numbers["p_adjusted"] == pytest.approx(holm[CLASSES.index(name)])
    assert "E drops from 95% on valid (38 of 40) to 0% on massey (0 of 30)" in found["E"].sentence
    paths = found["E"].evidence.paths
    assert paths and all("/E/" in p for p in paths)


def test_no_drop_finding_when_both_domains_agree() -> None:
    inside = make_set(clean_plan(40, wrong=4), "valid")
    outside = make_set(clean_plan(30, wrong=3), "massey")
    result = run((inside, "in-domain"), (outside, "test"))
    assert by_check(result, "domain-drop") == []
    assert by_check(result, "class-drop") == []


def test_classes_too_small_to_show_a_drop_are_named() -> None:
    inside = make_set(clean_plan(40), "valid")
    outside = make_set({c: {c: 1} for c in CLASSES}, "official")  # one image per class
    result = run((inside, "in-domain"), (outside, "test"))
    (finding,) = by_check(result, "too-few-drop")
    assert fisher_min_p_value(40, 1) == pytest.approx(1 / 41)  # below alpha, not alpha / 6
    assert 1 / 41 >= 0.05 / 6
    assert finding.numbers == {"n_classes": 6, "n_compared": 6, "bound": 0.05 / 6}
    assert finding.score == 0 and finding.severity == "info"
    assert "A (40 and 1 images)" in finding.sentence
    clean = run((inside, "in-domain"), (make_set(clean_plan(30), "massey"), "test"))
    assert by_check(clean, "too-few-drop") == []


# -- (2) concentrated confusions -------------------------------------------------------------
def test_the_issue_example_confusion() -> None:
    classes = [*CLASSES, "T", "X"]
    inside_plan = {c: {c: 100} for c in classes}
    outside_plan = {c: {c: 30} for c in classes}
    outside_plan["T"] = {"T": 10, "X": 18, "A": 1, "B": 1}
    inside = make_set(inside_plan, "valid", classes=classes)
    outside = make_set(outside_plan, "out-of-domain", classes=classes)
    result = run((inside, "in-domain"), (outside, "test"))
    (finding,) = by_check(result, "confusion")
    low, high = proportion_confint(18, 30, method="wilson")
    assert finding.id == "confusion:out-of-domain:T>X"
    assert (finding.effect, finding.effect_low, finding.effect_high) == pytest.approx(
        (0.6, low, high)
    )
    assert finding.sentence.startswith(
        "T is predicted as X in 18 of 30 out-of-domain images (60%, 95% CI 42–75%)"
    )
    assert finding.sentence.endswith("; on valid 0 of 100.")
    p_values = [binom.sf(17, 20, 1 / 7) * 7]  # T: 18 of its 20 errors, 7 other classes
    assert finding.numbers["p_adjusted"] == pytest.approx(min(1.0, p_values[0]))
    assert finding.score == pytest.approx(30 * low)
    assert finding.evidence.anchor == "pairs" and len(finding.evidence.paths) == 9


def test_errors_spread_evenly_are_not_a_concentrated_confusion() -> None:
    plan = clean_plan(30)
    plan["A"] = {"A": 10, "B": 4, "C": 4, "D": 4, "E": 4, "F": 4}
    result = run((make_set(plan, "massey"), "test"))
    assert by_check(result, "confusion") == []


def test_holm_across_classes_and_ties_broken_by_loss() -> None:
    plan = clean_plan(30)
    plan["A"] = {"A": 10, "B": 10, "C": 10}  # tied: B and C get 10 each
    plan["D"] = {"D": 24, "E": 6}
    outside = make_set(plan, "massey")
    # Make the A->C images the higher-loss ones.
    y_proba = outside.y_proba.copy()
    a_to_c = (outside.y_true == 0) & (outside.y_pred == 2)
    y_proba[a_to_c] = proba(["C"] * int(a_to_c.sum()), 0.99)
    outside = Predictions(CLASSES, outside.paths, outside.y_true, y_proba, name="massey")
    result = run((outside, "test"))
    found = {f.evidence.classes: f for f in by_check(result, "confusion")}
    assert ("A", "C") in found and ("A", "B") not in found
    raw = [concentration_p_value(10, 20, 5), concentration_p_value(6, 6, 5)]
    raw += [np.nan] * 4  # classes without errors are not in the family
    expected = multipletests(raw[:2], method="holm")[1]
    assert found["A", "C"].numbers["p_adjusted"] == pytest.approx(expected[0])
    assert found["D", "E"].numbers["p_adjusted"] == pytest.approx(expected[1])


# -- (3) classes given up, and a collapse ----------------------------------------------------
def test_a_class_never_predicted_is_given_up() -> None:
    plan = clean_plan(30)
    plan["F"] = {"A": 15, "B": 15}
    outside = make_set(plan, "massey")
    (finding,) = by_check(run((outside, "test")), "given-up")
    _, high = proportion_confint(0, 30, method="wilson")
    assert finding.sentence.startswith("The model never predicts F on massey: 0 of 180")
    assert finding.effect == 0 and finding.effect_high == pytest.approx(high)
    assert finding.score == pytest.approx(30 * (1 - high))
    n = outside.n_images
    p_values = [binom.cdf(0 if c == "F" else 30 + 15 * (c in "AB"), n, 30 / n) for c in CLASSES]
    assert finding.numbers["p_adjusted"] == pytest.approx(
        multipletests(p_values, method="holm")[1][-1]
    )


def test_a_rarely_predicted_small_class_is_not_given_up() -> None:
    plan = clean_plan(30)
    plan["F"] = {"F": 4, "A": 26}  # predicted 4 times for 30 images: above 10%
    assert by_check(run((make_set(plan, "massey"), "test")), "given-up") == []
    small = clean_plan(30)
    small["F"] = {"A": 4}  # never predicted, but only 4 images
    assert by_check(run((make_set(small, "massey"), "test")), "given-up") == []


def test_a_collapsed_set_and_a_healthy_one() -> None:
    plan = {c: {"B": 20, c: 10} if c != "B" else {"B": 30} for c in CLASSES}
    collapsed = make_set(plan, "massey")
    (finding,) = by_check(run((collapsed, "test")), "collapse")
    low, _ = proportion_confint(130, 180, method="wilson")
    assert finding.effect == pytest.approx(130 / 180)
    assert finding.score == pytest.approx(180 * low - 30)
    assert "predicts B for 130 of 180 massey images" in finding.sentence
    assert by_check(run((make_set(clean_plan(30, 3), "massey"), "test")), "collapse") == []


def test_a_set_at_chance_is_a_finding_and_a_good_one_is_not() -> None:
    from scipy.stats import binomtest

    rng = np.random.default_rng(1)
    plan = {c: {} for c in CLASSES}
    for c in CLASSES:
        for guess in rng.integers(0, 6, 30):
            plan[c][CLASSES[guess]] = plan[c].get(CLASSES[guess], 0) + 1
    guessing = make_set(plan, "massey")
    correct = int((guessing.y_true == guessing.y_pred).sum())
    (finding,) = by_check(run((guessing, "test")), "chance")
    test = binomtest(correct, 180, 1 / 6, alternative="greater")
    assert test.pvalue >= 0.05
    assert finding.numbers["p_value"] == pytest.approx(test.pvalue)
    low, high = proportion_confint(correct, 180, method="wilson")
    assert (finding.effect, finding.effect_low, finding.effect_high) == pytest.approx(
        (correct / 180, low, high)
    )
    assert finding.score == pytest.approx(180 * (1 - high))
    assert finding.sentence.startswith(
        f"On massey the model is not shown to beat a baseline: accuracy "
        f"{100 * correct / 180:.0f}% ({correct} of 180"
    )
    assert "17% for a uniform guess over 6 classes" in finding.sentence
    assert by_check(run((make_set(clean_plan(30, 3), "massey"), "test")), "chance") == []


def test_the_majority_class_baseline_and_the_ranking_of_several_problems() -> None:
    from scipy.stats import binomtest

    plan = {"A": {"A": 100}} | {c: {"A": 5} for c in CLASSES[1:]}  # always A: 80% right
    always_a = make_set(plan, "massey")
    result = run((always_a, "test"))
    (chance,) = by_check(result, "chance")
    assert chance.numbers["majority_class"] == "A"
    assert chance.numbers["majority_accuracy"] == pytest.approx(0.8)
    expected_p = binomtest(100, 125, 0.8, alternative="greater").pvalue
    assert chance.numbers["p_value"] == pytest.approx(expected_p)
    assert "80% for always predicting A" in chance.sentence
    # the ranking: the set at its baseline first, then the five classes never predicted
    given_up = by_check(result, "given-up")
    assert [f.evidence.classes[0] for f in given_up] == list(CLASSES[1:])
    high_set = proportion_confint(100, 125, method="wilson")[1]
    high_class = proportion_confint(0, 5, method="wilson")[1]
    ranked = [f.id for f in findings_of(result) if f.check in ("chance", "given-up")]
    assert ranked == ["chance:massey"] + [f"given-up:massey:{c}" for c in CLASSES[1:]]
    scores = {f.id: f.score for f in findings_of(result)}
    assert scores["chance:massey"] == pytest.approx(125 * (1 - high_set))
    assert scores["given-up:massey:B"] == pytest.approx(5 * (1 - high_class))
    p_values = [binom.cdf(0, 125, 5 / 125)] * 5 + [binom.cdf(125, 125, 100 / 125)]
    assert given_up[0].numbers["p_adjusted"] == pytest.approx(
        multipletests(p_values, method="holm")[1][0]
    )


# -- (4) overconfidence -----------------------------------------------------------------------
def test_an_overconfident_set_and_its_numbers() -> None:
    confidence = np.r_[np.full(60, 0.97), np.linspace(0.6, 0.99, 120)]
    plan = {c: {c: 18, CLASSES[(i + 1) % 6]: 12} for i, c in enumerate(CLASSES)}
    outside = make_set(plan, "massey", confidence=np.random.default_rng(0).permutation(confidence))
    (finding,) = by_check(run((outside, "test")), "overconfidence")
    right = outside.y_true == outside.y_pred
    gaps = outside.confidence - right
    ci = ttest_1samp(gaps, 0.0).confidence_interval(0.95)
    assert (finding.effect, finding.effect_low, finding.effect_high) == pytest.approx(
        (gaps.mean(), ci.low, ci.high)
    )
    assert finding.numbers["ece"] == evaluate(outside).ece  # the calibration section's ECE
    high = int(((outside.confidence >= 0.9) & ~right).sum())
    assert finding.numbers["n_high_confidence_errors"] == high
    assert f"{high} of 72 errors had a confidence of 90% or more" in finding.sentence
    wrong_c, right_c = outside.confidence[~right], outside.confidence[right]
    assert finding.numbers["mann_whitney_p"] == pytest.approx(mannwhitneyu(wrong_c, right_c).pvalue)
    assert finding.evidence.anchor == "calibration"
    shown = [outside.paths.index(p) for p in finding.evidence.paths]
    assert all(not right[i] and outside.confidence[i] >= 0.9 for i in shown)


def test_a_calibrated_set_is_not_overconfident() -> None:
    plan = {c: {c: 24, CLASSES[(i + 1) % 6]: 6} for i, c in enumerate(CLASSES)}  # 80% right
    assert by_check(run((make_set(plan, "massey", confidence=0.8), "test")), "overconfidence") == []


# -- (5) too few images to tell ---------------------------------------------------------------
def test_classes_with_too_wide_an_interval() -> None:
    plan = clean_plan(40)
    plan["E"] = {"E": 2, "A": 1}
    plan["F"] = {"F": 1}
    (finding,) = by_check(run((make_set(plan, "official"), "test")), "too-few")
    for k, n in [(2, 3), (1, 1)]:
        low, high = proportion_confint(k, n, method="wilson")
        assert high - low > 0.5
    low, high = proportion_confint(40, 40, method="wilson")
    assert high - low < 0.5
    assert finding.evidence.classes == ("E", "F")
    assert finding.sentence.endswith(
        "2 of 6 classes have too few images to tell (95% interval "
        "wider than 50 points): E (3 images), F (1 image)."
    )
    assert finding.severity == "info"
    assert by_check(run((make_set(clean_plan(40), "valid"), "test")), "too-few") == []


# -- (6) Grad-CAM, (7) leakage: the optional sections ------------------------
def cam_result(scores: Sequence[float], *, metric: str = "road", outside=None) -> AnalysisResult:  # type: ignore[no-untyped-def]
    n = len(scores)
    items = pd.DataFrame(
        {
            "group": ["class"] * n,
            "class": ["A"] * n,
            "path": [f"massey/A/{i}.jpg" for i in range(n)],
            "set": ["massey"] * n,
            "correct": [i % 4 == 0 for i in range(n)],
            "faithfulness_pred": list(scores),
        }
    )
    if outside is not None:
        items["outside_mass_pred"] = outside
    summary = pd.DataFrame(
        [
            {
                "ood_set": "massey",
                "faithfulness_metric": metric,
                "faithfulness_higher_is_better": metric != "confidence_drop",
            }
        ]
    )
    return AnalysisResult("cam", items, summary)


def test_unfaithful_heatmaps_and_faithful_ones() -> None:
    outside = make_set(clean_plan(30, 3), "massey")
    scores = np.r_[np.full(18, 0.01), np.full(2, 0.3)]
    result = run((outside, "test"), sections={"cam": cam_result(scores)})
    (finding,) = by_check(result, "cam-faithfulness")
    low, high = proportion_confint(18, 20, method="wilson")
    assert (finding.effect_low, finding.effect_high) == pytest.approx((low, high))
    assert finding.evidence.anchor == "cam"
    assert "18 of 20 explained images score at or below 0.05 on road" in finding.sentence
    good = run((outside, "test"), sections={"cam": cam_result(np.full(20, 0.3))})
    assert by_check(good, "cam-faithfulness") == []
    drop = run(
        (outside, "test"), sections={"cam": cam_result(np.full(20, 0.9), metric="confidence_drop")}
    )
    assert len(by_check(drop, "cam-faithfulness")) == 1  # a drop of 0.9 is unfaithful
    none = run((outside, "test"), sections={"cam": cam_result(np.full(20, np.nan), metric="none")})
    reasons = {s.check: s.reason for s in skipped_of(none)}
    assert "no faithfulness scores" in reasons["cam-faithfulness"]


def test_background_heatmaps_need_a_hand_estimate() -> None:
    outside = make_set(clean_plan(30, 3), "massey")
    result = run((outside, "test"), sections={"cam": cam_result(np.full(40, 0.3))})
    reasons = {s.check: s.reason for s in skipped_of(result)}
    assert "'outside_mass_pred'" in reasons["cam-background"]
    correct = np.array([i % 4 == 0 for i in range(40)])
    planted = np.where(correct, 0.2, 0.8)  # every wrong image's heatmap off the hand
    found = run((outside, "test"), sections={"cam": cam_result(np.full(40, 0.3), outside=planted)})
    (finding,) = by_check(found, "cam-background")
    low, _ = confint_proportions_2indep(30, 30, 0, 10, method="newcomb")
    assert (finding.effect, finding.effect_low) == pytest.approx((1.0, low))
    same = run(
        (outside, "test"), sections={"cam": cam_result(np.full(40, 0.3), outside=np.full(40, 0.8))}
    )
    assert by_check(same, "cam-background") == []


def leakage_result(
    near: int, correct_near: int, correct_clean: int, n: int = 200
) -> AnalysisResult:
    from asl_eval.audit import set_summary

    items = pd.DataFrame(
        {
            "set": "valid",
            "path": [f"valid/{i}.jpg" for i in range(n)],
            "near_duplicate": [i < near for i in range(n)],
            "exact_duplicate": False,
            "group": range(n),
            "phash_distance": [i % 7 for i in range(n)],
            "dhash_distance": 0,
            "correct": [
                (i < correct_near) if i < near else (i - near < correct_clean) for i in range(n)
            ],
        }
    )
    sets = pd.DataFrame([{"set": "valid", **set_summary(items)}])
    summary = pd.DataFrame([{"valid_set": "valid"}])
    return AnalysisResult("leakage", items, summary, info={"sets": sets})


def test_validation_inflated_by_near_duplicates() -> None:
    valid = make_set(clean_plan(40, 4), "valid")
    leak = leakage_result(near=120, correct_near=120, correct_clean=48)  # 100% vs 60%
    (finding,) = by_check(run((valid, "in-domain"), sections={"leakage": leak}), "leakage")
    row = leak.info["sets"].iloc[0]  # type: ignore[union-attr]
    assert finding.effect == pytest.approx(row["accuracy"] - row["leak_adjusted_accuracy"])
    assert finding.effect_low == pytest.approx(row["accuracy"] - row["leak_adjusted_accuracy_high"])
    assert finding.score == pytest.approx(200 * finding.effect_low)
    assert finding.evidence.anchor == "leakage"
    assert finding.sentence.startswith("valid accuracy is inflated by near-duplicates")
    honest = leakage_result(near=120, correct_near=100, correct_clean=67)
    assert by_check(run((valid, "in-domain"), sections={"leakage": honest}), "leakage") == []


def test_checks_on_absent_sections_are_skipped_with_a_note() -> None:
    valid = make_set(clean_plan(40, 4), "valid")
    reasons = {s.check: s.reason for s in skipped_of(run((valid, "in-domain")))}
    assert reasons["leakage"].startswith("no leakage audit")
    assert reasons["cam-background"] == "no Grad-CAM section in this report."
    # the robustness check lives in the sweep's own module, not as a stub here
    from asl_eval.findings.checks import sections

    assert not hasattr(sections, "robustness")


# -- ranking, registry, text, errors ----------------------------------------------------------
def test_several_planted_problems_rank_on_one_scale() -> None:
    inside, outside = drop_sets()
    leak = leakage_result(near=120, correct_near=120, correct_clean=48)
    result = run((inside, "in-domain"), (outside, "test"), sections={"leakage": leak})
    found = findings_of(result)
    scores = [f.score for f in found]
    assert scores == sorted(scores, reverse=True)
    assert result.items["rank"].tolist() == list(range(1, len(found) + 1))
    assert result.items["id"].tolist() == [f.id for f in found]
    # The scores, computed independently: images at the conservative end of each interval.
    c_in = int((inside.y_true == inside.y_pred).sum())
    c_out = int((outside.y_true == outside.y_pred).sum())
    drop_low = confint_proportions_2indep(c_in, 240, c_out, 180, method="newcomb")[0]
    row = leak.info["sets"].iloc[0]  # type: ignore[union-attr]
    leak_low = row["accuracy"] - row["leak_adjusted_accuracy_high"]
    given_up_high = proportion_confint(0, 30, method="wilson")[1]
    e_drop_low = confint_proportions_2indep(38, 40, 0, 30, method="newcomb")[0]
    a_to_d_low = proportion_confint(18, 30, method="wilson")[0]
    a_drop_low = confint_proportions_2indep(38, 40, 12, 30, method="newcomb")[0]
    expected = {
        "domain-drop:massey": 180 * drop_low,
        "leakage:valid": 200 * leak_low,
        "given-up:massey:E": 30 * (1 - given_up_high),
        "class-drop:massey:E": 30 * e_drop_low,
        "confusion:massey:A>D": 30 * a_to_d_low,
        "class-drop:massey:A": 30 * a_drop_low,
    }
    assert [f.id for f in found] == sorted(expected, key=lambda i: -expected[i])
    assert [f.score for f in found] == pytest.approx([expected[f.id] for f in found])
    assert [f.severity for f in found] == ["high"] * 4 + ["medium"] * 2  # 10% of a set
    summary = result.summary_record()
    assert summary["n_findings"] == len(found)
    assert summary["n_high"] == sum(f.severity == "high" for f in found)


def test_ties_keep_the_registry_order_then_the_id() -> None:
    def planted(data):  # type: ignore[no-untyped-def]
        return [
            Finding("zz:b", "zz", "info", 0.0, "x", 0, 0, 0, "b", Evidence("overview")),
            Finding("zz:a", "zz", "info", 0.0, "x", 0, 0, 0, "a", Evidence("overview")),
        ]

    register_check(Check("zz", "planted", planted, order=1))
    try:
        plan = clean_plan(40)
        plan["F"] = {"F": 1}
        result = run((make_set(plan, "valid"), "test"))
        ids = [f.id for f in findings_of(result) if f.score == 0]
        assert ids == ["zz:a", "zz:b", "too-few:valid"]  # zz registered first; then by id
        with pytest.raises(MetricError, match="already registered as 'zz'"):
            register_check(Check("zz", "again", print))  # another module
    finally:
        unregister_check("zz")


def test_a_check_can_skip_itself_and_a_new_one_plugs_in() -> None:
    def skipper(data):  # type: ignore[no-untyped-def]
        raise SkipCheck("needs the moon.")

    register_check(Check("moon", "lunar check", skipper, order=5))
    try:
        result = run((make_set(clean_plan(40), "valid"), "test"))
        assert {s.check: s.reason for s in skipped_of(result)}["moon"] == "needs the moon."
    finally:
        unregister_check("moon")


def test_findings_text_prints_the_top_three_escaped() -> None:
    classes = [*CLASSES[:5], "F\x1b[2J"]
    plan = {c: {c: 30} for c in classes}
    plan["F\x1b[2J"] = {"A": 30}
    plan["E"] = {"E": 10, "B": 20}
    inside = make_set({c: {c: 40} for c in classes}, "valid", classes=classes)
    result = run((inside, "in-domain"), (make_set(plan, "massey", classes=classes), "test"))
    text = findings_text(result)
    lines = text.splitlines()
    assert lines[0].startswith("1. [high] ")
    assert len(lines) == 4 and lines[-1].startswith("... and ")
    assert "\x1b" not in text and "\\x1b[2J" in text
    assert findings_text(run((make_set(clean_plan(40), "valid"), "test"))) == ""


def test_mistakes_are_refused() -> None:
    valid = make_set(clean_plan(40), "valid")
    with pytest.raises(MetricError, match="unique; repeated: \\['valid'\\]"):
        run((valid, "in-domain"), (valid, "test"))
    other = make_set({"A": {"A": 3}}, "other", classes=("A", "B"))
    with pytest.raises(MetricError, match="other classes"):
        run((valid, "in-domain"), (other, "test"))
    with pytest.raises(MetricError, match=r"strictly between 0 and 1; got alpha=1\.5"):
        FindingsOptions(alpha=1.5)
    with pytest.raises(MetricError, match="finite score >= 0"):
        Finding("x", "x", "info", -1.0, "x", 0, 0, 0, "s", Evidence("overview"))
    with pytest.raises(MetricError, match="at least one evaluation set"):
        find([])


def test_importing_the_findings_imports_neither_torch_nor_the_report() -> None:
    import subprocess
    import sys

    code = (
        "import sys, asl_eval.findings; "
        "print(sorted(m for m in ('torch', 'fastai', 'asl_eval.report', 'asl_eval.cam') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_docs_explain_every_built_in_check() -> None:
    """docs/findings.md has a row for each check this package registers (other stages'
    checks are documented with them)."""
    from pathlib import Path

    from asl_eval.findings import registered_checks

    page = (Path(__file__).resolve().parents[1] / "docs" / "findings.md").read_text()
    own = ("domain", "errors", "confidence", "sections")
    keys = [
        c.key
        for c in registered_checks()
        if c.run.__module__.rsplit(".", 1)[-1] in own
        and c.run.__module__.startswith("asl_eval.findings.checks.")
    ]
    assert len(keys) == 12
    missing = [key for key in keys if f"| `{key}` |" not in page]
    assert missing == []
