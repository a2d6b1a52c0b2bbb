"""The findings on the real photos (../shared/data/asl): a small model trained on the training
frames with `asl-eval train`, reported on the official test folder and on massey/. The findings
name the worst out-of-domain classes with the numbers of the report's per-class tables.

Skipped when the photos are absent (as on a user's machine); slow (a 32-pixel resnet18 trained
from scratch for two epochs, a few minutes on two cores, once per session: conftest's
``real_asl_report``, which tests/test_real_data.py reads too). Such a model is weak even in domain
(about 20% on its validation split), so the test reads whatever it finds: the classes named
must be the per-class table's, and the baselines and the predicted classes the JSON's.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest, fisher_exact
from statsmodels.stats.multitest import multipletests

from .conftest import RealReport

pytestmark = pytest.mark.slow


@pytest.fixture
def real_findings(real_asl_report: RealReport) -> tuple[str, dict[str, object]]:
    """The session's real-photo report (conftest), the same one tests/test_real_data.py reads."""
    return real_asl_report.html, real_asl_report.report


def _table(report: dict[str, object], name: str) -> pd.DataFrame:
    comparison = next(c for c in report["comparisons"] if c["out_of_domain"] == name)  # type: ignore[attr-defined]
    return pd.DataFrame(comparison["per_class"]).set_index("class")


def _findings(report: dict[str, object]) -> list[dict[str, object]]:
    return report["sections"]["findings"]["findings"]  # type: ignore[index,no-any-return]


def test_the_findings_name_the_worst_massey_classes_with_the_tables_numbers(
    real_findings: tuple[str, dict[str, object]],
) -> None:
    html, report = real_findings
    table = _table(report, "massey")
    compared = table[(table["support_in"] > 0) & (table["support_out"] > 0)]
    # the per-class test, recomputed: Fisher's exact test per class, Holm across the classes
    p_values = [
        fisher_exact(
            [
                [r["correct_in"], r["support_in"] - r["correct_in"]],
                [r["correct_out"], r["support_out"] - r["correct_out"]],
            ]
        ).pvalue
        for _, r in compared.iterrows()
    ]
    adjusted = pd.Series(multipletests(p_values, method="holm")[1], index=compared.index)
    significant = compared[(adjusted < 0.05) & (compared["drop"] > 0)]
    worst = list(significant.sort_values("drop", ascending=False, kind="stable").index[:3])

    findings = _findings(report)
    (overall,) = [f for f in findings if f["id"] == "domain-drop:massey"]
    assert overall["evidence"]["classes"] == worst  # type: ignore[index]
    if worst:  # the classes named, with the per-class table's counts
        named = ", ".join(
            f"{c} {int(table.loc[c, 'correct_out'])} of {int(table.loc[c, 'support_out'])}"
            for c in worst
        )
        assert f"worst classes: {named}" in overall["sentence"]  # type: ignore[operator]
    else:  # a weak model (from scratch, tiny images): the finding says no class can be named
        assert "no single class drops significantly after Holm" in overall["sentence"]  # type: ignore[operator]

    drops = {f["evidence"]["classes"][0]: f for f in findings if f["check"] == "class-drop"}  # type: ignore[index]
    massey_drops = {c: f for c, f in drops.items() if f["evidence"]["set"] == "massey"}  # type: ignore[index]
    assert set(massey_drops) == set(significant.index)
    for name, finding in massey_drops.items():
        numbers, row = finding["numbers"], table.loc[name]
        assert numbers["accuracy_in"] == row["accuracy_in"]  # type: ignore[index]
        assert numbers["accuracy_out"] == row["accuracy_out"]  # type: ignore[index]
        assert numbers["p_adjusted"] == row["p_adjusted"]  # type: ignore[index]
        assert numbers["p_adjusted"] == pytest.approx(adjusted[name])  # type: ignore[index]
        counts = f"({int(row['correct_out'])} of {int(row['support_out'])})"
        assert f"on massey {counts}" in finding["sentence"]  # type: ignore[operator]
    # the page's massey table prints the same counts, side by side, for every class compared
    block = html[html.index('data-out-of-domain="massey"') :]
    block = block[: block.index("</table>")]
    for name, row in compared.iterrows():
        cells = re.search(
            rf'<th scope="row" data-sort="\d+">{re.escape(str(name))}</th>(.*?)</tr>', block, re.S
        )
        assert cells is not None
        text = cells.group(1)
        inside = f"{int(row['correct_in'])}/{int(row['support_in'])}"
        outside = f"{int(row['correct_out'])}/{int(row['support_out'])}"
        assert inside in text and outside in text
        assert (" * <span" in text) == (name in set(significant.index))


def test_the_official_folder_is_too_small_to_tell(
    real_findings: tuple[str, dict[str, object]],
) -> None:
    html, report = real_findings
    table = _table(report, "kaggle28")
    compared = table[(table["support_in"] > 0) & (table["support_out"] > 0)]
    assert len(compared) == 28 and (compared["support_out"] == 1).all()
    (finding,) = [f for f in _findings(report) if f["id"] == "too-few-drop:kaggle28"]
    assert finding["numbers"]["n_classes"] == 28  # type: ignore[index]
    block = html[html.index('data-out-of-domain="kaggle28"') :]
    block = block[: block.index("</table>")]
    assert block.count("too few to tell") == 28


def test_the_baselines_and_a_collapse_on_massey_match_the_confusion_matrix(
    real_findings: tuple[str, dict[str, object]],
) -> None:
    _, report = real_findings
    massey = next(s for s in report["sets"] if s["name"] == "massey")  # type: ignore[attr-defined]
    counts = np.array(massey["confusion_matrix"]["counts"])
    classes = massey["confusion_matrix"]["classes"]
    n, correct = int(counts.sum()), int(np.trace(counts))
    support, predicted = counts.sum(axis=1), counts.sum(axis=0)
    baseline = max(1 / len(classes), support.max() / n)
    p_value = binomtest(correct, n, baseline, alternative="greater").pvalue
    findings = {f["id"]: f for f in _findings(report)}
    assert ("chance:massey" in findings) == (p_value >= 0.05)
    if "chance:massey" in findings:
        numbers = findings["chance:massey"]["numbers"]
        assert numbers["p_value"] == pytest.approx(p_value)  # type: ignore[index]
        assert numbers["majority_class"] == classes[int(np.argmax(support))]  # type: ignore[index]
    top = int(np.argmax(predicted))
    collapse = [
        f
        for f in findings.values()
        if f["check"] == "collapse" and f["evidence"]["set"] == "massey"  # type: ignore[index]
    ]
    for finding in collapse:
        assert finding["id"] == f"collapse:massey:{classes[top]}"
        assert finding["numbers"]["predicted"] == int(predicted[top])  # type: ignore[index]
        assert finding["numbers"]["support"] == int(support[top])  # type: ignore[index]
