"""The report at a glance (issue 16): chance and majority-class rates beside each accuracy, the
distribution of predicted classes, one compact per-class table per comparison with the drop's
interval, "too few to tell" at each class's sizes, tied confused pairs ordered by loss, and the
uncertainty note at each set's own sizes. Numbers are checked against scipy, statsmodels,
scikit-learn or a hand count."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact
from sklearn.metrics import confusion_matrix
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from asl_eval.findings import findings_of
from asl_eval.predictions import Predictions
from asl_eval.report import EvaluationSet, ModelInfo, build_context, write_report
from asl_eval.report.tables import (
    comparison_rows,
    confused_pairs_by_loss,
    predicted_classes,
    uncertainty_note,
)

CLASSES = ["A", "B", "C", "D", "E", "F"]


def make_set(
    plan: dict[str, dict[str, int]], name: str, confidence: float | np.ndarray = 0.9
) -> Predictions:
    """A set from ``{true: {predicted: count}}``; ``confidence`` on the predicted class."""
    y_true: list[str] = []
    y_pred: list[str] = []
    for true, row in plan.items():
        for pred, count in row.items():
            y_true += [true] * count
            y_pred += [pred] * count
    conf = np.broadcast_to(np.asarray(confidence, dtype=float), (len(y_true),))
    proba = np.repeat(((1 - conf) / (len(CLASSES) - 1))[:, None], len(CLASSES), axis=1)
    proba[np.arange(len(y_true)), [CLASSES.index(p) for p in y_pred]] = conf
    paths = [f"/data/{name}/{t}/{i}.jpg" for i, t in enumerate(y_true)]
    return Predictions.from_labels(y_true, proba, CLASSES, paths=paths, name=name)


def _context(tmp_path: Path, *sets: EvaluationSet):  # type: ignore[no-untyped-def]
    model = tmp_path / "m.pkl"
    model.write_bytes(b"m")
    context = build_context(
        list(sets),
        model=ModelInfo.describe(model, arch="x", classes=CLASSES, input_size="?", versions={}),
        command="asl-eval report",
        findings=True,
    )
    files = write_report(context, tmp_path / "out", name="r")
    html = files.html.read_text(encoding="utf-8")
    return context, html, json.loads(files.json.read_text(encoding="utf-8"))


def collapsed_plan() -> dict[str, dict[str, int]]:
    """B predicted for 20 of every other class's 30 images (and for all of its own)."""
    return {c: {"B": 20, c: 10} if c != "B" else {"B": 30} for c in CLASSES}


# -- chance, majority class and the predicted classes ----------------------------------------
def test_chance_majority_and_predicted_classes_against_a_hand_count(tmp_path: Path) -> None:
    plan = collapsed_plan()
    plan["F"] = {"F": 5, "B": 5}  # F is small: the majority class is A (first of the 30s)
    collapsed = make_set(plan, "massey")
    context, html, _ = _context(tmp_path, EvaluationSet(collapsed))
    (result,) = context.sets
    predicted = result.predicted
    y_true = [collapsed.classes[i] for i in collapsed.y_true]
    y_pred = [collapsed.classes[i] for i in collapsed.y_pred]
    counts = confusion_matrix(y_true, y_pred, labels=CLASSES)
    n = counts.sum()
    assert predicted.n_images == n == 160
    assert predicted.chance_accuracy == pytest.approx(1 / 6)
    assert predicted.majority_class == "A"
    assert predicted.majority_accuracy == pytest.approx(30 / 160)
    assert predicted.n_distinct == int((counts.sum(axis=0) > 0).sum()) == 6
    top = predicted.top[0]
    assert (top.name, top.predicted, top.support) == ("B", 20 * 4 + 30 + 5, 30)
    assert top.share == pytest.approx(115 / 160)
    # the page: both baselines in the overview, the distribution in its own table
    assert "16.7%" in html and "18.8%" in html
    assert '<h3 id="predicted-classes">' in html
    assert "<strong>B</strong> 115\n        (71.9%; 30 true)" in html
    # the collapse is a finding, linked to that table, with the same numbers
    found = {f.check: f for f in findings_of(context.sections["findings"])}
    collapse = found["collapse"]
    assert collapse.evidence.anchor == "predicted-classes"
    assert (collapse.numbers["predicted"], collapse.numbers["support"]) == (115, 30)
    low, _ = proportion_confint(115, 160, method="wilson")
    assert collapse.effect_low == pytest.approx(low)
    assert "predicts B for 115 of 160 massey images (72%" in collapse.sentence
    assert "#predicted-classes" in html


def test_a_baseline_not_beaten_is_marked() -> None:
    counts = pd.DataFrame(np.diag([10, 10, 10]), index=list("ABC"), columns=list("ABC"))
    found = predicted_classes(counts)
    assert found.chance_accuracy == pytest.approx(1 / 3)
    assert found.majority_accuracy == pytest.approx(1 / 3)
    assert [c.name for c in found.top] == ["A", "B", "C"]  # ties keep the class order
    empty = predicted_classes(
        pd.DataFrame(np.zeros((2, 2), int), index=["A", "B"], columns=["A", "B"])
    )
    assert empty.top == () and math.isnan(empty.majority_accuracy)


def test_the_overview_marks_an_accuracy_at_chance(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y_pred = rng.integers(0, 6, 180)
    plan: dict[str, dict[str, int]] = {}
    for i, c in enumerate(CLASSES):
        row = np.bincount(y_pred[30 * i : 30 * (i + 1)], minlength=6)
        plan[c] = {CLASSES[j]: int(k) for j, k in enumerate(row) if k}
    _, html, _ = _context(tmp_path, EvaluationSet(make_set(plan, "random")))
    assert '<td class="num sig">16.7%</td>' in html  # chance not below the interval


# -- one compact table per comparison -------------------------------------------------------
def comparison_sets() -> tuple[Predictions, Predictions]:
    inside = make_set({c: {c: 38, "A" if c != "A" else "B": 2} for c in CLASSES}, "valid")
    plan = {c: {c: 25, "B" if c != "B" else "C": 5} for c in CLASSES}
    plan["E"] = {"E": 2, "A": 28}
    plan["F"] = {"F": 0, "A": 1}  # one image, wrong
    return inside, make_set(plan, "massey")


def test_comparison_rows_equal_independent_computations() -> None:
    from asl_eval.metrics import domain_comparison

    inside, outside = comparison_sets()
    table = domain_comparison(inside, outside)
    rows, n_too_few = comparison_rows(CLASSES, table)
    assert [r.name for r in rows] == CLASSES  # the model's order, not the drop's
    for row in rows:
        c_in, n_in = row.inside.correct, row.inside.support
        c_out, n_out = row.outside.correct, row.outside.support
        low, high = confint_proportions_2indep(c_in, n_in, c_out, n_out, method="newcomb")
        assert (row.drop_low, row.drop_high) == pytest.approx((low, high))
        assert row.drop == pytest.approx(c_in / n_in - c_out / n_out)
        assert (row.outside.ci_low, row.outside.ci_high) == pytest.approx(
            proportion_confint(c_out, n_out, method="wilson")
        )
        extreme = fisher_exact([[n_in, 0], [0, n_out]]).pvalue
        assert row.too_few == (extreme >= 0.05 / 6)
        assert row.p_adjusted == table.loc[row.name, "p_adjusted"]
    too_few = [r.name for r in rows if r.too_few]
    assert too_few == ["F"] and n_too_few == 1


def test_the_page_has_one_compact_table_per_comparison(tmp_path: Path) -> None:
    inside, outside = comparison_sets()
    other = make_set({c: {c: 30} for c in CLASSES}, "studio")
    context, html, report = _context(
        tmp_path, EvaluationSet(inside, "in-domain"), EvaluationSet(outside), EvaluationSet(other)
    )
    assert html.count('<table class="sortable per-class comparison"') == 2
    assert 'data-out-of-domain="massey"' in html and 'data-out-of-domain="studio"' in html
    massey = next(c for c in context.comparisons if c.out_of_domain == "massey")
    e_row = next(r for r in massey.rows if r.name == "E")
    # 95% -> 6.7%: the drop in points with its interval and marker, beside both accuracies
    assert "88.3 *" in html
    low, high = confint_proportions_2indep(38, 40, 2, 30, method="newcomb")
    assert f"({100 * low:.1f}–{100 * high:.1f})" in html
    assert (e_row.drop_low, e_row.drop_high) == pytest.approx((low, high))
    assert "too few to tell" in html
    assert "for 1 of them\n    there are too few images to tell" in html
    # every set side by side stays available, folded
    assert "<details><summary>Every set side by side</summary>" in html
    assert html.count('class="sortable per-class all-sets"') == 1
    # the JSON's comparison numbers are unchanged (the table of metrics.domain_comparison)
    first = report["comparisons"][0]
    assert first["out_of_domain"] == "massey"
    rows = {r["class"]: r for r in first["per_class"]}
    assert rows["E"]["accuracy_out"] == pytest.approx(2 / 30)


def test_without_an_in_domain_set_the_sets_sit_side_by_side(tmp_path: Path) -> None:
    _, html, _ = _context(tmp_path, EvaluationSet(make_set({c: {c: 5} for c in CLASSES}, "only")))
    assert "per-class comparison" not in html
    assert "Every set side by side" not in html
    assert 'class="sortable per-class all-sets"' in html


# -- confused pairs and the uncertainty note --------------------------------------------------
def test_tied_confused_pairs_are_ordered_by_loss(tmp_path: Path) -> None:
    plan = {c: {c: 20} for c in CLASSES}
    plan["A"] = {"A": 17, "B": 3}
    plan["C"] = {"C": 17, "D": 3}
    plan["E"] = {"E": 17, "F": 3}
    confidence = np.full(120, 0.6)
    predictions = make_set(plan, "massey", confidence)
    # make the E->F mistakes the surest (highest loss), then C->D
    y_pred = predictions.y_pred
    surest = {("E", "F"): 0.98, ("C", "D"): 0.9}
    for (actual, pred), value in surest.items():
        rows = (predictions.y_true == CLASSES.index(actual)) & (y_pred == CLASSES.index(pred))
        confidence[rows] = value
    predictions = make_set(plan, "massey", confidence)
    context, html, report = _context(tmp_path, EvaluationSet(predictions))
    pairs = [(p.actual, p.predicted) for p in context.sets[0].figures.confused_pairs]
    assert pairs == [("E", "F"), ("C", "D"), ("A", "B")]
    losses = [p.loss for p in context.sets[0].figures.confused_pairs]
    assert losses == pytest.approx([-3 * math.log(0.004), -3 * math.log(0.02), -3 * math.log(0.08)])
    assert [(p["actual"], p["predicted"]) for p in report["sets"][0]["most_confused"]] == pairs
    assert "summed loss" in html


def test_confused_pairs_by_loss_keeps_counts_first() -> None:
    pairs = pd.DataFrame(
        {"actual": ["A", "B", "C"], "predicted": ["B", "C", "A"], "count": [5, 2, 2]}
    )
    losses = pd.DataFrame(
        {"actual": ["A", "B", "C"], "predicted": ["B", "C", "A"], "loss": [0.1, 1.0, 3.0]}
    )
    ordered = confused_pairs_by_loss(pairs, losses)
    assert ordered["actual"].tolist() == ["A", "C", "B"]
    assert ordered["loss"].tolist() == [0.1, 3.0, 1.0]


def test_the_uncertainty_note_speaks_of_each_sets_own_sizes(tmp_path: Path) -> None:
    inside = make_set({c: {c: 20} for c in CLASSES}, "valid")
    official = make_set({c: {c: 1} for c in CLASSES}, "official")
    _, html, _ = _context(tmp_path, EvaluationSet(inside, "in-domain"), EvaluationSet(official))
    low, _ = proportion_confint(10, 20, method="wilson")
    assert f"valid (about 20 images per class): 10 of 20 right gives {100 * low:.0f}–" in html
    one_low, _ = proportion_confint(1, 1, method="wilson")
    assert f"official (1 image per class): 0 of 1 right gives 0–{100 * (1 - one_low):.0f}%" in html
    assert uncertainty_note([("x", 0)]) == ""
    # one image per class cannot show a drop: the headline says so instead of "0 of 6 drop"
    assert "too few images per class on official to tell which classes drop." in html
    assert "0 of 6 classes drop significantly on official" not in html


# -- the charts ------------------------------------------------------------------------------
def test_the_drop_chart_puts_the_surest_drops_first() -> None:
    from matplotlib.figure import Figure

    from asl_eval.metrics import domain_comparison
    from asl_eval.report.figures import plot_class_drops

    inside, outside = comparison_sets()
    rows, _ = comparison_rows(CLASSES, domain_comparison(inside, outside))
    ax = plot_class_drops(rows, Figure().add_subplot(), in_domain="valid", out_of_domain="massey")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    lows = {r.name: r.drop_low for r in rows}
    names = [label.split(" (")[0] for label in labels]
    assert [lows[n] for n in names] == sorted(lows.values(), reverse=True)
    # E (28 of 30 wrong) tops it; F (one image, the largest drop: 95 points) comes after it
    assert max(rows, key=lambda r: r.drop).name == "F"
    assert names[:2] == ["E", "F"]
    assert labels[:2] == ["E (40/30) *", "F (40/1)"]
    points = ax.collections[-1].get_offsets()
    assert points[1][0] == pytest.approx(next(r.drop for r in rows if r.name == "F"))


def test_the_accuracy_chart_sizes_points_by_images() -> None:
    from matplotlib.figure import Figure

    from asl_eval.metrics import per_class_accuracy
    from asl_eval.report.figures import plot_class_accuracy_points

    _, outside = comparison_sets()
    table = per_class_accuracy(outside)
    ax = plot_class_accuracy_points({"massey": table}, Figure().add_subplot())
    scatter = ax.collections[-1]
    sizes = scatter.get_sizes()
    assert sizes[CLASSES.index("F")] < sizes[CLASSES.index("A")]  # 1 image against 30
    hollow = scatter.get_facecolors()[:, 3] == 0
    width = (table["ci_high"] - table["ci_low"]).to_numpy()
    assert hollow.tolist() == (width > 0.5).tolist()
