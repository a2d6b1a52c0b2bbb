"""The real ASL photos (../shared/data/asl): train with `asl-eval train`, report with
`asl-eval report`, and check the report's per-class numbers against scikit-learn.

Skipped when the photos are absent (as on a user's machine).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, recall_score

from asl_eval.demo_data import ASL_CLASSES

from .conftest import RealReport

pytestmark = pytest.mark.slow


@pytest.fixture
def real_report(real_asl_report: RealReport) -> tuple[Path, dict[str, object]]:
    return real_asl_report.out, real_asl_report.report


def test_real_report_per_class_numbers_equal_scikit_learn(real_report) -> None:  # type: ignore[no-untyped-def]
    out, data = real_report
    assert data["model"]["classes"] == list(ASL_CLASSES)
    per_image = pd.read_csv(out / "asl.predictions.csv")
    classes = list(ASL_CLASSES)
    for result in data["sets"]:
        rows = per_image[per_image["set"] == result["name"]]
        y_true, y_pred = rows["y_true"].astype(str), rows["y_pred"].astype(str)
        assert result["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
        recall = recall_score(y_true, y_pred, labels=classes, average=None, zero_division=0)
        matrix = confusion_matrix(y_true, y_pred, labels=classes)
        assert result["confusion_matrix"]["counts"] == matrix.tolist()
        for row, expected, support in zip(
            result["per_class"], recall, matrix.sum(axis=1), strict=True
        ):
            assert row["support"] == support
            assert row["accuracy"] == (pytest.approx(expected) if support else None)


def test_real_report_accounts_for_every_file(real_report) -> None:  # type: ignore[no-untyped-def]
    _, data = real_report
    sets = {s["name"]: s for s in data["sets"]}
    assert set(sets) == {"valid", "kaggle28", "massey"}
    kaggle = sets["kaggle28"]["ledger"]
    assert kaggle["found"] == kaggle["evaluated"] == 28
    massey = sets["massey"]["ledger"]
    # 26 lowercase letters align with the model's A-Z; the ten digits are not its classes
    assert massey["found"] == 720
    assert massey["evaluated"] == 520
    assert massey["not_in_classes"] == {str(d): 20 for d in range(10)}
    assert sets["valid"]["n_images"] == 580  # 20% of 2,900 frames
    assert [c["out_of_domain"] for c in data["comparisons"]] == ["kaggle28", "massey"]


def test_real_report_explains_the_worst_massey_classes(real_report) -> None:  # type: ignore[no-untyped-def]
    out, data = real_report
    cam = data["sections"]["cam"]
    assert (cam["ood_set"], cam["method"], cam["layer"]) == ("massey", "gradcam", "0.5")
    massey = next(s for s in data["sets"] if s["name"] == "massey")
    accuracy = {r["class"]: r["accuracy"] for r in massey["per_class"] if r["support"]}
    explained = [c["class"] for c in cam["classes"]]
    assert len(explained) == 3
    # the explained classes are the three worst on massey
    assert sorted(accuracy[c] for c in explained) == sorted(accuracy.values())[:3]
    html = (out / "asl.html").read_text(encoding="utf-8")
    for name in explained:
        assert f"heatmap for {name}" in html
