"""The findings in the report: the section is registered first, renders its sentences as
escaped text (hostile class names included), links each finding to its evidence, and writes
every finding to the JSON with numbers equal to the per-class table's. One end-to-end test runs
the checks on the tiny trained model's validation predictions."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np

import asl_eval.report.findings_section  # noqa: F401  (registers the section)
from asl_eval.findings import FindingsSet, find, findings_of
from asl_eval.metrics import evaluate
from asl_eval.predictions import Predictions
from asl_eval.report import EvaluationSet, ModelInfo, build_context, write_report
from asl_eval.report.findings_section import N_TOP, build
from asl_eval.report.registry import registered_sections

HOSTILE = "<img src=x onerror=alert(1)>"
CLASSES = ["A", "B", "C", HOSTILE]


def _set(plan: dict[str, dict[str, int]], name: str) -> Predictions:
    y_true, y_pred = [], []
    for true, row in plan.items():
        for pred, count in row.items():
            y_true += [true] * count
            y_pred += [pred] * count
    proba = np.full((len(y_true), len(CLASSES)), 0.02)
    proba[np.arange(len(y_true)), [CLASSES.index(p) for p in y_pred]] = 0.94
    paths = [f"/data/{name}/{t}/{i}.jpg" for i, t in enumerate(y_true)]
    return Predictions.from_labels(y_true, proba, CLASSES, paths=paths, name=name)


def _report(tmp_path: Path) -> tuple[str, dict[str, object], list[EvaluationSet]]:
    inside = _set({c: {c: 38, "A" if c != "A" else "B": 2} for c in CLASSES}, "valid")
    outside_plan = {c: {c: 27, "B" if c != "B" else "C": 3} for c in CLASSES}
    outside_plan[HOSTILE] = {"C": 25, HOSTILE: 5}
    outside = _set(outside_plan, "massey")
    sets = [EvaluationSet(inside, "in-domain"), EvaluationSet(outside, "test")]
    findings = find([FindingsSet(e.predictions, e.role) for e in sets])
    model = tmp_path / "m.pkl"
    model.write_bytes(b"m")
    context = build_context(
        sets,
        model=ModelInfo.describe(model, arch="x", classes=CLASSES, input_size="?", versions={}),
        command="asl-eval report",
        sections={"findings": findings},
    )
    files = write_report(context, tmp_path / "out", name="r")
    return (
        files.html.read_text(encoding="utf-8"),
        json.loads(files.json.read_text(encoding="utf-8")),
        sets,
    )


def test_the_findings_section_comes_first() -> None:
    assert registered_sections()[0].key == "findings"
    assert registered_sections()[0].anchor == "findings"


def test_sentences_are_escaped_text_with_links_to_their_evidence(tmp_path: Path) -> None:
    html, _, _ = _report(tmp_path)
    assert HOSTILE not in html
    assert "&lt;img src=x onerror=alert(1)&gt; drops from 95% on valid (38 of 40)" in html
    assert "&lt;img src=x onerror=alert(1)&gt; is predicted as C in 25 of 30 massey images" in html
    assert '<section id="findings">' in html
    assert '<a href="#per-class">evidence</a>' in html
    assert '<a href="#pairs">evidence</a>' in html


def test_the_json_holds_every_finding_with_the_per_class_numbers(tmp_path: Path) -> None:
    _, report, _ = _report(tmp_path)
    block = report["sections"]["findings"]  # type: ignore[index]
    ids = [f["id"] for f in block["findings"]]
    assert f"class-drop:massey:{HOSTILE}" in ids and f"confusion:massey:{HOSTILE}>C" in ids
    assert [f["rank"] for f in block["findings"]] == list(range(1, len(ids) + 1))
    (comparison,) = report["comparisons"]  # type: ignore[index]
    table = {row["class"]: row for row in comparison["per_class"]}
    for finding in block["findings"]:
        if finding["check"] == "class-drop":
            (name,) = finding["evidence"]["classes"]
            numbers = finding["numbers"]
            assert numbers["accuracy_in"] == table[name]["accuracy_in"]
            assert numbers["accuracy_out"] == table[name]["accuracy_out"]
            assert numbers["p_adjusted"] == table[name]["p_adjusted"]
            assert table[name]["significant"] is True
    assert {s["check"] for s in block["skipped"]} >= {"cam-background", "leakage"}
    assert block["score_definition"].startswith("Findings are ranked by the number")


def test_the_page_lists_the_top_findings_and_folds_the_rest() -> None:
    plan = {c: {c: 10, CLASSES[(i + 1) % 4]: 20} for i, c in enumerate(CLASSES)}
    inside = _set({c: {c: 40} for c in CLASSES}, "valid")
    sets = [FindingsSet(inside, "in-domain")]
    sets += [FindingsSet(_set(plan, f"set{i}")) for i in range(3)]
    result = find(sets)
    variables = build(result)
    top, more = variables["top"], variables["more"]
    assert len(top) == N_TOP  # type: ignore[arg-type]
    assert len(top) + len(more) == len(findings_of(result))  # type: ignore[arg-type]
    empty = build(find([FindingsSet(inside, "in-domain")]))
    assert empty["top"] == () and empty["n_findings"] == 0


def test_findings_on_the_tiny_models_validation_predictions(tiny_model) -> None:  # type: ignore[no-untyped-def]
    valid = Predictions.load(tiny_model.valid_predictions)
    result = find([FindingsSet(valid, "in-domain")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        evaluation = evaluate(valid, n_top_losses=None)
    per_class = evaluation.per_class
    wide = per_class[
        (per_class["support"] > 0) & (per_class["ci_high"] - per_class["ci_low"] > 0.5)
    ]
    too_few = [f for f in findings_of(result) if f.check == "too-few"]
    assert [f.evidence.classes for f in too_few] == ([tuple(wide.index)] if len(wide) else [])
    for finding in findings_of(result):
        assert finding.score >= 0 and finding.sentence.endswith(".")
        assert finding.evidence.set_name in ("", valid.name)
        if finding.check == "overconfidence":
            assert finding.numbers["ece"] == evaluation.ece
        if math.isfinite(finding.effect_low):
            assert finding.effect_low <= finding.effect <= finding.effect_high
    assert result.summary_record()["n_findings"] == len(findings_of(result))
