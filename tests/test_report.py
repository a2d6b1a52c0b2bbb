"""The report: numbers equal scikit-learn's, the JSON matches its schema, hostile names stay
text, output is deterministic, atomic and within its size budget."""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

from asl_eval.errors import ReportError
from asl_eval.inference import predict_folder
from asl_eval.predictions import Predictions
from asl_eval.report import (
    EvaluationSet,
    ModelInfo,
    build_context,
    read_report_json,
    write_report,
)
from asl_eval.report.reading import report_schema
from asl_eval.report.serialize import SCHEMA_VERSION, render_json

HOSTILE_CLASS = "<script>alert(1)</script>"
FORMULA_CLASS = "=SUM(A1)"
HOSTILE_FILE = '"><img src=x onerror=alert(1)>.jpg'


def _model_info(path: Path, classes: tuple[str, ...]) -> ModelInfo:
    return ModelInfo.describe(
        path, arch="resnet18", classes=classes, input_size="32×32", versions={"test": "1"}
    )


@pytest.fixture(scope="module")
def tiny_sets(tiny_model, tiny_learner):  # type: ignore[no-untyped-def]
    valid = Predictions.load(tiny_model.valid_predictions)
    ood = predict_folder(tiny_learner, tiny_model.data.ood_test, name="test")
    kaggle = predict_folder(tiny_learner, tiny_model.data.kaggle_test, name="asl_alphabet_test")
    return [
        EvaluationSet(valid, role="in-domain"),
        EvaluationSet(kaggle),
        EvaluationSet(ood),
    ]


@pytest.fixture(scope="module")
def tiny_context(tiny_sets, tiny_model):  # type: ignore[no-untyped-def]
    return build_context(
        tiny_sets,
        model=_model_info(tiny_model.path, tiny_sets[0].predictions.classes),
        command="asl-eval report model.pkl test/",
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )


def _none_or(value: float) -> float | None:
    return None if math.isnan(value) else value


def test_json_numbers_equal_scikit_learn(tiny_context, tiny_sets) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(render_json(tiny_context))
    assert data["schema"] == "asl-eval/report" and data["schema_version"] == 4
    assert data["sharing"] == {"redact_paths": False, "images": True}
    for evaluation, result in zip(tiny_sets, data["sets"], strict=True):
        p = evaluation.predictions
        labels = list(range(len(p.classes)))
        y_pred = p.y_proba.argmax(axis=1)
        assert result["name"] == p.name
        assert result["accuracy"] == pytest.approx(accuracy_score(p.y_true, y_pred))
        assert result["macro_f1"] == pytest.approx(
            f1_score(p.y_true, y_pred, labels=labels, average="macro", zero_division=np.nan)
        )
        assert result["top_k"] == 5
        assert result["top_k_accuracy"] == pytest.approx(
            top_k_accuracy_score(p.y_true, p.y_proba, k=5, labels=labels)
        )
        # the model's probabilities are float32 (stored exactly as float64): scikit-learn checks
        # that rows sum to one within the tolerance of the dtype it is given
        proba32 = p.y_proba.astype(np.float32)
        assert result["log_loss"] == pytest.approx(log_loss(p.y_true, proba32, labels=labels))
        one_hot = np.eye(len(p.classes))[p.y_true]
        brier = np.mean(np.sum((p.y_proba - one_hot) ** 2, axis=1))  # by hand
        assert result["brier_score"] == pytest.approx(brier)
        matrix = confusion_matrix(p.y_true, y_pred, labels=labels)
        assert result["confusion_matrix"]["counts"] == matrix.tolist()
        precision, recall, f1, support = precision_recall_fscore_support(
            p.y_true, y_pred, labels=labels, zero_division=np.nan
        )
        rows = {row["class"]: row for row in result["per_class"]}
        assert list(rows) == list(p.classes)
        for i, name in enumerate(p.classes):
            assert rows[name]["support"] == support[i]
            assert rows[name]["accuracy"] == pytest.approx(_none_or(recall[i]), nan_ok=True)
            if support[i] and not math.isnan(precision[i]):
                assert rows[name]["precision"] == pytest.approx(precision[i])
                assert rows[name]["f1"] == pytest.approx(_none_or(f1[i]), nan_ok=True)
        # the ledger counts every file in the set's folder (the saved split: its images)
        folder = Path(p.source)
        on_disk = sum(f.is_file() for f in folder.rglob("*")) if folder.is_dir() else p.n_images
        assert result["ledger"]["found"] == on_disk
        assert result["ledger"]["evaluated"] == p.n_images


def test_json_headline_numbers_carry_the_evaluation_summary_names(tiny_context) -> None:  # type: ignore[no-untyped-def]
    """Each number has one name: the JSON uses metrics.Evaluation.summary()'s keys (top-k as
    top_k and top_k_accuracy, so the keys do not depend on k)."""
    data = json.loads(render_json(tiny_context))
    for result, block in zip(tiny_context.sets, data["sets"], strict=True):
        summary = result.evaluation.summary()
        k = result.evaluation.top_k
        assert (block["n_resamples"], block["seed"]) == (result.evaluation.n_resamples, 0)
        assert block["top_k_accuracy"] == pytest.approx(summary.pop(f"top_{k}_accuracy"))
        for key in set(summary) - {"name", "n_classes"}:
            assert block[key] == pytest.approx(_none_or(float(summary[key])), nan_ok=True), key


def test_a_real_report_matches_the_json_schema(tiny_context, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from jsonschema import Draft202012Validator

    schema = report_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema_version"] == {"const": SCHEMA_VERSION}  # type: ignore[index]
    files = write_report(tiny_context, tmp_path, name="r")
    document = json.loads(files.json.read_text(encoding="utf-8"))
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(document)]
    assert errors == []
    assert read_report_json(files.json) == document
    # the schema is strict: an unversioned new key is caught
    document["sets"][0]["new_number"] = 1.0
    assert list(Draft202012Validator(schema).iter_errors(document))


def test_classes_without_images_are_null_not_zero(tiny_context) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(render_json(tiny_context))
    kaggle = next(s for s in data["sets"] if s["name"] == "asl_alphabet_test")
    row = next(r for r in kaggle["per_class"] if r["class"] == "del")
    assert row["support"] == 0 and row["accuracy"] is None


def test_headline_puts_the_sets_side_by_side(tiny_context) -> None:  # type: ignore[no-untyped-def]
    headline = tiny_context.headline
    for name in ("valid", "asl_alphabet_test", "test"):
        assert f"on {name}" in headline
    # each comparison: how many classes drop, or that its classes are too small to tell
    for comparison in tiny_context.comparisons:
        name = comparison.out_of_domain
        if comparison.n_compared and comparison.n_too_few == comparison.n_compared:
            assert f"too few images per class on {name} to tell which classes drop" in headline
        else:
            counted = f"{comparison.n_significant} of {comparison.n_compared} classes drop"
            assert f"{counted} significantly on {name}" in headline


def test_json_is_deterministic_apart_from_the_timestamp(tiny_sets, tiny_model) -> None:  # type: ignore[no-untyped-def]
    model = _model_info(tiny_model.path, tiny_sets[0].predictions.classes)
    texts = []
    for hour in (1, 2):
        context = build_context(
            tiny_sets, model=model, command="x", now=datetime(2026, 1, 1, hour, tzinfo=UTC)
        )
        texts.append(render_json(context))
    assert texts[0] != texts[1]
    strip = [
        "\n".join(line for line in text.splitlines() if '"generated_at"' not in line)
        for text in texts
    ]
    assert strip[0] == strip[1]


class _TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def _hostile_predictions(folder: Path) -> Predictions:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate([HOSTILE_FILE, "ok.jpg", "=HYPERLINK(1).jpg"]):
        path = folder / name
        Image.new("RGB", (40, 40), (i * 60, 20, 20)).save(path, format="JPEG")
        paths.append(str(path))
    classes = [HOSTILE_CLASS, FORMULA_CLASS]
    proba = np.array([[0.2, 0.8], [0.7, 0.3], [0.1, 0.9]])
    y_true = [HOSTILE_CLASS, FORMULA_CLASS, HOSTILE_CLASS]
    return Predictions.from_labels(y_true, proba, classes, paths=paths)


def test_hostile_names_are_text(tmp_path: Path) -> None:
    predictions = _hostile_predictions(tmp_path / "images")
    model_file = tmp_path / "m.pkl"
    model_file.write_bytes(b"model")
    context = build_context(
        [EvaluationSet(predictions)],
        model=_model_info(model_file, predictions.classes),
        command="asl-eval report m.pkl '<b>x</b>'",
    )
    files = write_report(context, tmp_path / "out", name="hostile")
    html = files.html.read_text(encoding="utf-8")
    parser = _TagCollector()
    parser.feed(html)
    scripts = [tag for tag, _ in parser.tags if tag == "script"]
    assert len(scripts) == 1  # the report's own sorting script, nothing else
    for tag, attrs in parser.tags:
        for key, value in attrs:
            assert not key.startswith("on"), (tag, key)
            if tag == "img" and key == "src":
                assert value is not None and value.startswith("data:image/")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<b>x</b>" not in html
    frame = pd.read_csv(files.predictions_csv)
    assert set(frame["y_true"]) == {HOSTILE_CLASS, "'=SUM(A1)"}
    for column in ("path", "y_true", "y_pred"):
        assert not frame[column].astype(str).str.startswith(("=", "+", "-", "@")).any()


def test_writing_is_atomic(tiny_context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import asl_eval.report.write as write

    def broken(context: object) -> str:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(write, "render_json", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write.write_report(tiny_context, tmp_path / "out", name="r")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    monkeypatch.undo()
    files = write.write_report(tiny_context, tmp_path / "out", name="r")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [files.html.name, files.json.name, files.predictions_csv.name]
    )
    # a failure while a file is being swapped in keeps the old file whole and leaves no temp
    old_html = files.html.read_bytes()
    real_replace = os.replace

    def failing_replace(source: str, target: str | Path) -> None:
        if Path(target) == files.html:
            raise OSError("disk full")
        real_replace(source, target)

    old_json, old_csv = files.json.read_bytes(), files.predictions_csv.read_bytes()
    files.json.write_bytes(old_json.replace(b'"title"', b'"title_old"'))  # tell old from new
    old_json = files.json.read_bytes()
    monkeypatch.setattr(write.os, "replace", failing_replace)
    with pytest.raises(ReportError, match=r"disk full.*no file was changed"):
        write.write_report(tiny_context, tmp_path / "out", name="r")
    # the JSON and CSV were already swapped in when the HTML failed: both are rolled back
    assert files.html.read_bytes() == old_html
    assert files.json.read_bytes() == old_json
    assert files.predictions_csv.read_bytes() == old_csv
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [files.html.name, files.json.name, files.predictions_csv.name]
    )


def test_report_file_is_self_contained_and_within_budget(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Default settings (Grad-CAM section included), 870 out-of-domain images of 200 px and the
    in-domain split: the HTML stays within 5 MB and references nothing outside itself."""
    from asl_eval.demo_data import make_demo_dataset
    from asl_eval.pipeline import ReportRequest, run_report

    data = make_demo_dataset(tmp_path / "big", n_train_per_class=0, n_ood_per_class=30, size=200)
    files = run_report(
        ReportRequest(
            model=tiny_model.path, test_sets=[("test", data.ood_test)], out=tmp_path / "out"
        )
    )
    report = json.loads(files.json.read_text(encoding="utf-8"))
    assert [s["n_images"] for s in report["sets"]][1] == 870
    assert report["sections"]["cam"]["classes"]  # the default report explains failing classes
    html = files.html.read_text(encoding="utf-8")
    assert files.html.stat().st_size <= 5 * 1024 * 1024
    parser = _TagCollector()
    parser.feed(html)
    for tag, attrs in parser.tags:
        for key, value in attrs:
            if key in ("src", "href") and value and not value.startswith("#"):
                assert value.startswith("data:"), (tag, key, value[:60])
        assert tag != "link"
    assert "@import" not in html and "url(" not in html


def _two_class_set(correct_a: int, correct_b: int, name: str) -> Predictions:
    """30 images of A and 30 of B, with the given numbers predicted right."""
    truth = ["A"] * 30 + ["B"] * 30
    right_a = [[0.9, 0.1]] * correct_a + [[0.2, 0.8]] * (30 - correct_a)
    right_b = [[0.1, 0.9]] * correct_b + [[0.7, 0.3]] * (30 - correct_b)
    return Predictions.from_labels(truth, np.array(right_a + right_b), ["A", "B"], name=name)


def test_a_significant_gain_is_not_counted_as_a_drop(tmp_path: Path) -> None:
    from scipy.stats import fisher_exact

    valid = _two_class_set(30, 3, "valid")
    test = _two_class_set(5, 30, "test")
    model_file = tmp_path / "m.pkl"
    model_file.write_bytes(b"m")
    context = build_context(
        [EvaluationSet(valid, role="in-domain"), EvaluationSet(test)],
        model=_model_info(model_file, ("A", "B")),
        command="x",
    )
    # both changes are significant on their own (and after Holm over two classes)
    assert fisher_exact([[30, 0], [5, 25]])[1] < 0.025
    assert fisher_exact([[3, 27], [30, 0]])[1] < 0.025
    assert context.comparisons[0].n_significant == 1
    assert context.headline.endswith("1 of 2 classes drop significantly on test.")
    html = write_report(context, tmp_path / "out", name="r").html.read_text(encoding="utf-8")
    assert "83.3 *" in html  # A: 100% -> 16.7%, in points
    assert "-90.0 +" in html  # B: 10% -> 100%, a significant gain


@pytest.mark.parametrize("use_cache", [True, False])
def test_the_report_names_the_model_files_sha256(tiny_model, tmp_path: Path, use_cache) -> None:  # type: ignore[no-untyped-def]
    """With the predictions cache, the report takes the file's hash from the cache's key (the
    file is read once); without it, hashes the file itself: either way, hashlib's digest."""
    import hashlib

    from asl_eval.pipeline import ReportRequest, run_report

    test = sorted(Path(tiny_model.data.ood_test).iterdir())[0]
    files = run_report(
        ReportRequest(
            model=tiny_model.path,
            test_sets=[("test", test)],
            out=tmp_path / "out",
            cam=None,
            use_cache=use_cache,
            cache_dir=tmp_path / "cache",
        )
    )
    report = json.loads(files.json.read_text(encoding="utf-8"))
    expected = hashlib.sha256(Path(tiny_model.path).read_bytes()).hexdigest()
    assert report["model"]["sha256"] == expected
