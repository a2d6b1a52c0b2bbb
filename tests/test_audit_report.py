"""The leakage analysis in the report (section registered, page escaped, JSON valid), its
figure, and the ``asl-eval audit`` command (training's split, text and JSON output, exit codes);
a slow check on the real ASL frames."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from matplotlib.axes import Axes
from PIL import Image, ImageEnhance
from typer.testing import CliRunner

from asl_eval.analysis import AnalysisResult
from asl_eval.audit import ThresholdRule, audit_leakage, leakage_record
from asl_eval.audit.command import run_audit
from asl_eval.audit.plots import plot_distance_distribution
from asl_eval.audit_cli import audit_command
from asl_eval.demo_data import make_demo_dataset
from asl_eval.predictions import Predictions
from asl_eval.report import EvaluationSet, ModelInfo, build_context, read_report_json, write_report
from asl_eval.report.audit_section import AUDIT_SECTION, build
from asl_eval.report.registry import section_spec
from asl_eval.report.render import make_environment

HOSTILE = "<img src=x onerror=alert(1)>&.jpg"
ASL_TRAIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "asl" / "asl_alphabet_train"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("audit_report")
    return make_demo_dataset(
        root, n_train_per_class=30, n_ood_per_class=3, size=64, classes=("A", "B", "C")
    ).root


@pytest.fixture(scope="module")
def result(demo: Path) -> AnalysisResult:
    """Validation predictions over files with a hostile name, one planted copy among them."""
    train = demo / "asl_alphabet_train"
    valid = demo / "valid"
    files = []
    for label in ("A", "B", "C"):
        source = train / label / f"{label}7.jpg"
        target = valid / label / f"{label}{HOSTILE}"
        target.parent.mkdir(parents=True, exist_ok=True)
        ImageEnhance.Brightness(Image.open(source)).enhance(1.1).save(target, format="JPEG")
        files.append(target)
        for other in sorted((demo / "test" / label).glob("*.jpg")):
            files.append(other)
    labels = [p.parent.name for p in files]
    proba = np.array([np.eye(3)["ABC".index(label)] for label in labels])
    predictions = Predictions.from_labels(
        labels, proba, ["A", "B", "C"], paths=[str(p) for p in files], name="valid"
    )
    reference = demo / "reference"
    if not reference.exists():
        shutil.copytree(train, reference)
        for label in ("A", "B", "C"):
            (reference / label / f"{label}7.jpg").rename(reference / label / f"{label}{HOSTILE}")
    return audit_leakage(reference, predictions)


def test_section_is_registered_and_renders_escaped(result: AnalysisResult) -> None:
    assert section_spec("leakage") is AUDIT_SECTION
    variables = build(result)
    html = make_environment().get_template("audit.html.j2").render(section=variables, title="t")
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;&amp;.jpg" in html
    assert html.count('src="data:image/png;base64,') == 1 + 2 * len(result.info["pairs"])
    assert "leak-adjusted" in html


def test_report_with_the_section_writes_valid_json(result: AnalysisResult, tmp_path: Path) -> None:
    predictions = Predictions.from_labels(["A", "B"], np.eye(2), ["A", "B"], name="valid")
    model_file = tmp_path / "m.pkl"
    model_file.write_bytes(b"m")
    context = build_context(
        [EvaluationSet(predictions)],
        model=ModelInfo.describe(
            model_file, arch="x", classes=("A", "B"), input_size="?", versions={}
        ),
        command="x",
        sections={"leakage": result},
    )
    files = write_report(context, tmp_path / "out", name="r")
    html = files.html.read_text(encoding="utf-8")
    assert '<section id="leakage">' in html and "<img src=x" not in html
    read_report_json(files.json)  # validates against the report's JSON Schema
    raw = json.loads(files.json.read_text(encoding="utf-8"))["sections"]["leakage"]
    assert raw["summary"]["near_duplicates"] == 3
    assert {row["nearest_train"] for row in raw["near_duplicates"]} == {
        f"{c}/{c}{HOSTILE}" for c in "ABC"
    }
    assert all("image_png" not in row for row in raw["closest_pairs"])


def test_record_is_plain_json(result: AnalysisResult) -> None:
    text = json.dumps(leakage_record(result), allow_nan=False)
    record = json.loads(text)
    summary = record["summary"]
    assert summary["accuracy"] == 1.0 and summary["leak_adjusted_accuracy"] == 1.0
    assert summary["near_duplicates"] == 3


def test_distance_plot_marks_the_thresholds(result: AnalysisResult) -> None:
    thresholds = result.info["thresholds"]
    assert isinstance(thresholds, pd.DataFrame)
    ax = plot_distance_distribution(result.items, result.info["calibration_counts"], thresholds)
    assert isinstance(ax, Axes)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "same-class training pairs" in labels
    assert any(label.startswith(("threshold", "median")) for label in labels)
    assert ax.get_xlim() == (-0.5, 64.5)


def test_command_recreates_trainings_split(demo: Path) -> None:
    from asl_eval.training.split import validation_items

    train = demo / "asl_alphabet_train"
    audited = run_audit(train, valid_pct=0.2, seed=42)
    valid = audited.items[audited.items["set"] == "valid"]
    expected = validation_items(train, valid_pct=0.2, seed=42)
    assert sorted(valid["path"]) == sorted(str(p) for p, _ in expected)
    # the demo's frames drift slowly: a random split leaks
    assert audited.summary_record()["near_duplicate_share"] > 0.3


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("audit")(audit_command)

    @app.command("noop")
    def noop() -> None:  # a second command, so "audit" is a sub-command as in asl-eval
        """Nothing."""

    return app


def test_command_output_and_exit_codes(demo: Path) -> None:
    runner = CliRunner()
    train = str(demo / "asl_alphabet_train")
    text = runner.invoke(_app(), ["audit", train, "--against", str(demo / "test")])
    assert text.exit_code == 0, text.output
    assert "valid: 18 images" in text.stdout and "test: 9 images" in text.stdout
    as_json = runner.invoke(_app(), ["audit", train, "--json", "--threshold", "64"])
    assert as_json.exit_code == 0
    record = json.loads(as_json.stdout)
    assert {row["phash_threshold"] for row in record["thresholds"]} == {64}
    assert {row["source"] for row in record["thresholds"]} == {"override"}
    assert runner.invoke(_app(), ["audit", train, "--valid-pct", "1.5"]).exit_code == 2
    missing = runner.invoke(_app(), ["audit", str(demo / "nowhere")])
    assert missing.exit_code == 1 and "error:" in missing.stderr and not missing.stdout


@pytest.mark.slow
@pytest.mark.skipif(not ASL_TRAIN.is_dir(), reason="the shared ASL frames are not here")
def test_real_asl_calibration_does_not_flag_almost_everything() -> None:
    calibrated = run_audit(ASL_TRAIN, valid_pct=0.2, seed=42)
    share = calibrated.summary_record()["near_duplicate_share"]
    assert 0.02 < share < 0.5
    global_only = run_audit(ASL_TRAIN, valid_pct=0.2, seed=42, threshold=10)
    assert global_only.summary_record()["near_duplicate_share"] > share
    assert isinstance(ThresholdRule().describe(), str)
