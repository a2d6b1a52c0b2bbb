"""The robustness analysis in the report (section registered, escaped, self-contained, under
5 MB, JSON valid), the findings check that names the change matching the real drop, and a slow
sweep on the real ASL photos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from asl_eval.analysis import AnalysisResult
from asl_eval.findings import FindingsSet, find
from asl_eval.findings.checks import robustness as robustness_check
from asl_eval.findings.checks.robustness import spearman_interval
from asl_eval.findings.run import findings_of, skipped_of
from asl_eval.predictions import Predictions
from asl_eval.report import EvaluationSet, ModelInfo, build_context, read_report_json, write_report
from asl_eval.report.registry import section_spec
from asl_eval.report.render import make_environment
from asl_eval.report.robustness_section import ROBUSTNESS_SECTION, build
from asl_eval.stress.result import add_forecasts, build_result, ood_class_accuracy

from .conftest import shared_asl_data

HOSTILE = "<b>x</b>"
CLASSES = ("A", "B", "C", "D", "E", "F", "G", HOSTILE)


def _items() -> pd.DataFrame:
    """10 images per class; rotate at 1 and 3 leaves class k right in k+2 of 10 images; blur
    leaves every class at 8 of 10; flip at 1 breaks everything."""
    rows = []
    for k, cls in enumerate(CLASSES):
        for j in range(10):
            index = 10 * k + j
            path = f"/data/{cls}/{j}.png"
            for name, level, correct in (
                ("clean", 0, True),
                ("rotate", 1, j < k + 2),
                ("rotate", 3, j < k + 2),
                ("defocus_blur", 1, j < 8),
                ("horizontal_flip", 1, False),
            ):
                predicted = cls if correct else CLASSES[(k + 1) % len(CLASSES)]
                rows.append((index, path, cls, name, level, predicted, correct, 0.7, 0.8))
    columns = ["index", "path", "class", "corruption", "severity", "predicted", "correct"]
    return pd.DataFrame(rows, columns=[*columns, "p_true", "p_predicted"])


def _predictions(name: str, correct_per_class: list[int], n: int = 10) -> Predictions:
    labels, proba = [], []
    for k, cls in enumerate(CLASSES):
        for j in range(n):
            labels.append(cls)
            row = np.full(len(CLASSES), 0.01)
            row[k if j < correct_per_class[k] else (k + 1) % len(CLASSES)] = 0.93
            proba.append(row / row.sum())
    paths = [f"/{name}/{label}/{i}.png" for i, label in enumerate(labels)]
    return Predictions.from_labels(labels, np.array(proba), CLASSES, paths=paths, name=name)


@pytest.fixture(scope="module")
def sets() -> tuple[Predictions, Predictions]:
    valid = _predictions("valid", [10] * len(CLASSES))
    ood = _predictions("massey", [1, 2, 4, 3, 5, 7, 8, 9])  # ranks like rotate (one swap)
    return valid, ood


@pytest.fixture(scope="module")
def result(sets: tuple[Predictions, Predictions]) -> AnalysisResult:
    parameters = {"severities": [1, 3], "n_per_class": 10, "seed": 0}
    swept = build_result(_items(), classes=CLASSES, parameters=parameters, set_name="valid")
    return add_forecasts(swept, {"massey": ood_class_accuracy(sets[1])})


def test_section_is_registered_and_renders_escaped(result: AnalysisResult) -> None:
    assert section_spec("robustness") is ROBUSTNESS_SECTION
    variables = build(result)
    html = (
        make_environment().get_template("robustness.html.j2").render(section=variables, title="t")
    )
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert html.count('src="data:image/png;base64,') == 2
    assert "Forecast against massey" in html and "rotate most closely" in html
    assert "mCE = mean over the label-preserving changes" in html
    assert "no: not label-preserving" in html  # the flip row
    assert variables["worst_corruption"] == "rotate"


def test_report_with_the_section_is_self_contained_and_small(
    result: AnalysisResult, sets: tuple[Predictions, Predictions], tmp_path: Path
) -> None:
    valid, ood = sets
    model_file = tmp_path / "m.pkl"
    model_file.write_bytes(b"m")
    context = build_context(
        [EvaluationSet(valid, role="in-domain"), EvaluationSet(ood, role="test")],
        model=ModelInfo.describe(
            model_file, arch="x", classes=CLASSES, input_size="?", versions={}
        ),
        command="x",
        sections={"robustness": result},
        findings=True,
    )
    files = write_report(context, tmp_path / "out", name="r")
    html = files.html.read_text(encoding="utf-8")
    assert '<section id="robustness">' in html and "<b>x</b>" not in html
    assert files.html.stat().st_size < 5 * 1024 * 1024
    assert "http://" not in html and "https://" not in html.replace("https://github", "")
    read_report_json(files.json)  # validates against the report's JSON Schema
    raw = json.loads(files.json.read_text(encoding="utf-8"))["sections"]["robustness"]
    assert raw["summary"]["worst_corruption"] == "rotate"
    assert raw["forecast_sentences"]["massey"].startswith("On massey, per-class accuracy follows")
    assert len(raw["per_class"]) == len(CLASSES) * 5


def test_shared_report_redacts_the_sweeps_paths(
    result: AnalysisResult, sets: tuple[Predictions, Predictions], tmp_path: Path
) -> None:
    from asl_eval.report.sharing import Sharing

    valid, ood = sets
    model_file = tmp_path / "m.pkl"
    model_file.write_bytes(b"m")
    context = build_context(
        [EvaluationSet(valid, role="in-domain"), EvaluationSet(ood, role="test")],
        model=ModelInfo.describe(
            model_file, arch="x", classes=CLASSES, input_size="?", versions={}
        ),
        command="x",
        sections={"robustness": result},
        sharing=Sharing(redact_paths=True, images=False),
    )
    files = write_report(context, tmp_path / "out", name="r")
    text = files.html.read_text(encoding="utf-8") + files.json.read_text(encoding="utf-8")
    assert '<section id="robustness">' in text
    assert "/data/" not in text


def test_findings_name_the_change_that_matches_the_real_drop(
    result: AnalysisResult, sets: tuple[Predictions, Predictions]
) -> None:
    valid, ood = sets
    found = find(
        [FindingsSet(valid, "in-domain"), FindingsSet(ood, "test")],
        sections={"robustness": result},
    )
    (finding,) = [f for f in findings_of(found) if f.check == "robustness"]
    forecast = result.info["forecast"]
    assert isinstance(forecast, pd.DataFrame)
    best = forecast[forecast["corruption"] == "rotate"].iloc[0]
    assert finding.effect == pytest.approx(best["rho"])
    assert (finding.effect_low, finding.effect_high) == pytest.approx(
        spearman_interval(best["rho"], int(best["n_classes"]))
    )
    assert finding.evidence.anchor == "robustness" and finding.evidence.set_name == "massey"
    assert "rotate" in finding.sentence and "massey" in finding.sentence
    n_errors = int(np.sum(ood.y_pred != ood.y_true))
    assert finding.score == pytest.approx(n_errors * finding.effect_low)
    # without the section, the check is skipped with its note
    bare = find([FindingsSet(valid, "in-domain"), FindingsSet(ood, "test")])
    reasons = {s.check: s.reason for s in skipped_of(bare)}
    assert reasons["robustness"].startswith("no robustness sweep")
    assert ROBUSTNESS_SECTION.anchor == robustness_check.ROBUSTNESS_ANCHOR


def test_no_finding_when_nothing_matches(sets: tuple[Predictions, Predictions]) -> None:
    valid, _ = sets
    shuffled = _predictions("other", [9, 2, 8, 1, 7, 3, 5, 4])
    parameters = {"severities": [1, 3], "n_per_class": 10, "seed": 0}
    swept = build_result(_items(), classes=CLASSES, parameters=parameters)
    compared = add_forecasts(swept, {"other": ood_class_accuracy(shuffled)})
    found = find(
        [FindingsSet(valid, "in-domain"), FindingsSet(shuffled, "test")],
        sections={"robustness": compared},
    )
    assert [f for f in findings_of(found) if f.check == "robustness"] == []
    assert "no simulated change matches" in compared.info["forecast_sentences"]["other"]  # type: ignore[index]


def test_spearman_interval_contains_rho() -> None:
    low, high = spearman_interval(0.5, 20)
    assert low < 0.5 < high
    assert all(np.isnan(spearman_interval(0.5, 3)))


@pytest.mark.slow
def test_real_photos_sweep_and_report(tmp_path: Path) -> None:
    """A small model on 5 real classes; the sweep on its validation images, forecast against
    massey's 5 matching classes; the report shows the section."""
    from asl_eval.inference import predict_folder
    from asl_eval.stress.sweep import robustness_for_report
    from asl_eval.training import TrainConfig, train_model
    from asl_eval.trust import load_learner_file

    data = shared_asl_data()
    train = tmp_path / "train"
    for cls in "ABCLV":
        target = train / cls
        target.mkdir(parents=True)
        for source in sorted((data / "asl_alphabet_train" / cls).glob("*.jpg"))[:40]:
            shutil.copy(source, target / source.name)
    config = TrainConfig(
        image_size=32, epochs=2, lr=5e-3, batch_size=16, pretrained=False, show_progress=False
    )
    trained = train_model(train, tmp_path / "model.pkl", config)
    learner = load_learner_file(trained.model_path)
    valid = Predictions.load(trained.valid_predictions_path)
    massey = predict_folder(learner, data / "massey", name="massey")
    result = robustness_for_report(
        learner,
        valid,
        [massey],
        corruptions=["brightness", "background", "rotate"],
        severities=[3],
        n_per_class=4,
    )
    summary = result.summary_record()
    assert summary["n_images"] == 20 and summary["n_classes"] == 5
    forecast = result.info["forecast"]
    assert isinstance(forecast, pd.DataFrame) and set(forecast["set"]) == {"massey"}
    assert forecast["n_classes"].max() == 5
    context = build_context(
        [EvaluationSet(valid, role="in-domain"), EvaluationSet(massey, role="test")],
        model=ModelInfo.describe(
            trained.model_path, arch="resnet18", classes=valid.classes, input_size="32", versions={}
        ),
        command="x",
        sections={"robustness": result},
        findings=True,
    )
    files = write_report(context, tmp_path / "out", name="real")
    html = files.html.read_text(encoding="utf-8")
    assert '<section id="robustness">' in html and "Forecast against massey" in html
    assert files.html.stat().st_size < 5 * 1024 * 1024
    read_report_json(files.json)
