"""Content hashes: each evaluated image is identified by the SHA-256 of its bytes and its path
relative to its set's folder, in ``Predictions``, its Parquet file, the report's CSV and JSON."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from asl_eval.errors import MetricError
from asl_eval.predictions import Predictions
from asl_eval.report import EvaluationSet, ModelInfo, build_context, read_report_json, write_report

CLASSES = ("A", "B", "=cmd")


def _hashed(tmp_path: Path) -> Predictions:
    """Three real files under ``tmp_path/set``, their hashes computed here with hashlib."""
    root = tmp_path / "set"
    names = ["A/1.jpg", "B/2.jpg", "=cmd/3.jpg"]
    digests = []
    for i, name in enumerate(names):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes([i]) * (10 + i))
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
    proba = np.array([[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    return replace(
        Predictions.from_labels(
            ["A", "B", "=cmd"], proba, CLASSES, paths=[str(root / n) for n in names]
        ),
        sha256=tuple(digests),
        relpaths=tuple(names),
        source=str(root),
    )


def test_the_set_digest_is_the_hash_of_the_sorted_lines(tmp_path: Path) -> None:
    p = _hashed(tmp_path)
    lines = sorted(f"{r}\t{h}\n" for r, h in zip(p.relpaths, p.sha256, strict=True))
    assert p.content_digest == hashlib.sha256("".join(lines).encode()).hexdigest()
    # the same files in another order, or under another folder, give the same digest
    order = [2, 0, 1]
    shuffled = replace(
        Predictions.from_labels(
            [p.labels_true[i] for i in order],
            p.y_proba[order],
            CLASSES,
            paths=[f"/elsewhere/{p.relpaths[i]}" for i in order],
        ),
        sha256=tuple(p.sha256[i] for i in order),
        relpaths=tuple(p.relpaths[i] for i in order),
    )
    assert shuffled.content_digest == p.content_digest
    renamed = replace(p, relpaths=("A/1.jpg", "B/2.jpg", "=cmd/4.jpg"))
    assert renamed.content_digest != p.content_digest
    assert replace(p, sha256=(), relpaths=()).content_digest is None


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"sha256": ("0" * 64,)}, "sha256 must have 3 entries"),
        ({"sha256": ("0" * 63 + "G",) * 3}, "sha256 entries are malformed"),
        ({"sha256": ("0" * 64 + "0",) * 3}, "sha256 entries are malformed"),
        ({"relpaths": ("a", "b")}, "relpaths must have 3 entries"),
        ({"relpaths": ("a", "../b", "c")}, "relpaths entries are malformed"),
        ({"relpaths": ("/a", "b", "c")}, "relpaths entries are malformed"),
        ({"relpaths": ("a", "b\\c", "d")}, "relpaths entries are malformed"),
    ],
)
def test_malformed_hashes_or_paths_are_refused(
    tmp_path: Path, change: dict[str, object], problem: str
) -> None:
    with pytest.raises(MetricError, match=problem):
        replace(_hashed(tmp_path), **change)  # type: ignore[arg-type]


def test_parquet_keeps_the_hashes_and_reads_version_1(tmp_path: Path) -> None:
    p = _hashed(tmp_path)
    saved = p.save(tmp_path / "p.parquet")
    back = Predictions.load(saved)
    assert (back.sha256, back.relpaths) == (p.sha256, p.relpaths)
    assert json.loads(pq.read_schema(saved).metadata[b"asl_eval"])["schema_version"] == 2
    # a version-1 file: no relpath or sha256 columns
    table = pq.read_table(saved).drop_columns(["relpath", "sha256"])
    meta = json.loads(table.schema.metadata[b"asl_eval"]) | {"schema_version": 1}
    table = table.replace_schema_metadata({b"asl_eval": json.dumps(meta).encode()})
    pq.write_table(table, tmp_path / "v1.parquet")
    old = Predictions.load(tmp_path / "v1.parquet")
    assert (old.sha256, old.relpaths, old.content_digest) == ((), (), None)
    np.testing.assert_array_equal(old.y_proba, p.y_proba)


def test_the_report_csv_and_json_carry_the_hashes(tmp_path: Path) -> None:
    p = _hashed(tmp_path)
    unhashed = replace(p, name="old", sha256=(), relpaths=())
    model_file = tmp_path / "model.pkl"
    model_file.write_bytes(b"not a model, only hashed")
    model = ModelInfo.describe(
        model_file, arch="none", classes=CLASSES, input_size="8×8", versions={}
    )
    context = build_context(
        [EvaluationSet(p, role="test"), EvaluationSet(unhashed, role="test")],
        model=model,
        command="test",
    )
    files = write_report(context, tmp_path / "out", name="r")
    with files.predictions_csv.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    hashed_rows = [r for r in rows if r["set"] == p.name]
    assert [r["sha256"] for r in hashed_rows] == list(p.sha256)
    # a relative path a spreadsheet would run as a formula is quoted, like the other text cells
    assert [r["relpath"] for r in hashed_rows] == ["A/1.jpg", "B/2.jpg", "'=cmd/3.jpg"]
    assert all(r["sha256"] == "" and r["relpath"] == "" for r in rows if r["set"] == "old")
    document = read_report_json(files.json)
    contents = {s["name"]: s["content"] for s in document["sets"]}  # type: ignore[index, union-attr]
    assert contents[p.name] == {"n_hashed": 3, "digest": p.content_digest}
    assert contents["old"] == {"n_hashed": 0, "digest": None}


def test_the_report_names_the_engine_and_warns_on_low_agreement(tmp_path: Path) -> None:
    p = _hashed(tmp_path)
    model_file = tmp_path / "model.pkl"
    model_file.write_bytes(b"not a model, only hashed")
    agreement = {"n_checked": 200, "max_abs_diff": 0.03, "top1_agreement": 0.975}
    engine = {"engine": "onnx-int8", "calibration_images": 64, "agreement": agreement}
    model = ModelInfo.describe(
        model_file, arch="none", classes=CLASSES, input_size="8×8", versions={}, engine=engine
    )
    context = build_context([EvaluationSet(p, role="test")], model=model, command="test")
    files = write_report(context, tmp_path / "out", name="r")
    assert read_report_json(files.json)["model"]["engine"] == engine  # type: ignore[index, call-overload]
    html = files.html.read_text(encoding="utf-8")
    assert "onnx-int8 (calibration_images 64)" in html
    assert "top-1 agreement 97.5%" in html and "below 99%" in html
    fine = replace(model, engine={**engine, "agreement": {**agreement, "top1_agreement": 1.0}})
    context = build_context([EvaluationSet(p, role="test")], model=fine, command="test")
    files = write_report(context, tmp_path / "out", name="r2")
    html = files.html.read_text(encoding="utf-8")
    assert "top-1 agreement 100.0%" in html and "below 99%" not in html


def test_the_saved_validation_split_carries_hashes(tiny_model) -> None:  # type: ignore[no-untyped-def]
    """Training saves the validation predictions with hashes relative to the training folder,
    so ``compare`` can tell whether two models were validated on the same images."""
    saved = Predictions.load(tiny_model.valid_predictions)
    root = Path(tiny_model.data.train)
    assert saved.n_images and len(saved.sha256) == saved.n_images
    for path, relpath, digest in zip(saved.paths, saved.relpaths, saved.sha256, strict=True):
        assert (root / relpath).resolve() == Path(path).resolve()
        assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest
