"""The report JSON's version policy: the current schema_version and the older ones asl-eval
can upgrade (1 to 3) are read, upgraded in memory; anything else is refused; files keep the
user's umask."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from asl_eval.errors import ReportError
from asl_eval.report import read_report_json
from asl_eval.report.serialize import SCHEMA_VERSION
from asl_eval.report.write import atomic_write_text

VERSION_1 = Path(__file__).resolve().parent / "data" / "report_v1.json"
"""A report written by asl-eval 0.1.0 (schema_version 1), kept as it was written."""


def _write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_a_version_1_report_is_read_in_the_current_shape(tmp_path: Path) -> None:
    original = json.loads(VERSION_1.read_text(encoding="utf-8"))
    assert original["schema_version"] == 1
    original["sections"] = {"cam": {"method": "gradcam", "classes": []}}
    document = read_report_json(_write(tmp_path, original))
    assert document["schema_version"] == SCHEMA_VERSION
    for old, new in zip(original["sets"], document["sets"], strict=True):  # type: ignore[arg-type]
        assert [new["accuracy_ci_low"], new["accuracy_ci_high"]] == old["accuracy_ci"]
        assert [new["macro_f1_ci_low"], new["macro_f1_ci_high"]] == old["macro_f1_ci"]
        assert new["top_k"] == 5 and new["top_k_accuracy"] == old["top5_accuracy"]
        assert (new["n_resamples"], new["seed"]) == (300, 0)
        assert "top5_accuracy" not in new and "accuracy_ci" not in new
        assert new["per_class"] == old["per_class"]
        recalls = [r["accuracy"] for r in old["per_class"] if r["support"]]
        assert new["balanced_accuracy"] == pytest.approx(sum(recalls) / len(recalls))
    # the test set has no image of class C: balanced accuracy averages the classes it has
    assert any(r["support"] == 0 for r in original["sets"][1]["per_class"])
    assert document["sections"] == original["sections"]  # section blocks are kept as written
    assert document["sharing"] == {"redact_paths": False, "images": True}
    assert json.loads(VERSION_1.read_text(encoding="utf-8"))["schema_version"] == 1


def _as_version_3(document: dict) -> dict:  # type: ignore[type-arg]
    """``document`` without what version 4 added: each set's content, the model's engine."""
    sets = [{k: v for k, v in s.items() if k != "content"} for s in document["sets"]]
    model = {k: v for k, v in document["model"].items() if k != "engine"}
    return document | {"sets": sets, "model": model, "schema_version": 3}


def test_a_version_3_report_gets_empty_content_blocks(tmp_path: Path) -> None:
    """Version 4 added only each set's ``content`` and the model's ``engine``; a version-3
    file recorded no hashes and had one engine."""
    assert SCHEMA_VERSION == 4
    current = read_report_json(VERSION_1)
    version_3 = _as_version_3(current)
    document = read_report_json(_write(tmp_path, version_3))
    assert document == current
    assert [s["content"] for s in document["sets"]] == [{"n_hashed": 0, "digest": None}] * 2  # type: ignore[index, union-attr]
    assert document["model"]["engine"] == {"engine": "fastai"}  # type: ignore[index, call-overload]
    assert json.loads((tmp_path / "report.json").read_text())["schema_version"] == 3


def test_a_version_2_report_gets_the_sharing_block(tmp_path: Path) -> None:
    """Version 3 added only ``sharing``; a version-2 file is the same document without it."""
    current = read_report_json(VERSION_1)
    version_2 = {k: v for k, v in _as_version_3(current).items() if k != "sharing"}
    version_2["schema_version"] = 2
    document = read_report_json(_write(tmp_path, version_2))
    assert document == current
    assert document["sharing"] == {"redact_paths": False, "images": True}
    assert json.loads((tmp_path / "report.json").read_text())["schema_version"] == 2


def test_the_schema_requires_the_sharing_block(tmp_path: Path) -> None:
    document = read_report_json(VERSION_1)
    del document["sharing"]
    with pytest.raises(ReportError, match=r"schema version 4: .*'sharing' is a required"):
        read_report_json(_write(tmp_path, document))


@pytest.mark.parametrize("version", [0, SCHEMA_VERSION + 1, "2", None, True])
def test_other_versions_are_refused(tmp_path: Path, version: object) -> None:
    document = json.loads(VERSION_1.read_text(encoding="utf-8"))
    document["schema_version"] = version
    with pytest.raises(
        ReportError, match=r"schema_version .*; this asl-eval reads versions 1, 2, 3 and 4"
    ):
        read_report_json(_write(tmp_path, document))


def test_not_a_report_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="is not an asl-eval report JSON"):
        read_report_json(_write(tmp_path, {"schema": "something-else", "schema_version": 2}))
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    with pytest.raises(ReportError, match="Could not read report JSON"):
        read_report_json(tmp_path / "broken.json")


def test_a_document_off_the_schema_is_refused(tmp_path: Path) -> None:
    document = json.loads(VERSION_1.read_text(encoding="utf-8"))
    del document["sets"][0]["per_class"]
    with pytest.raises(ReportError, match=r"does not match .* schema version 4: .* sets/0"):
        read_report_json(_write(tmp_path, document))


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_get_the_usual_mode(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        path = atomic_write_text(tmp_path / "out" / "r.json", "{}\n")
        after = os.umask(umask)  # reading the umask means setting it: set the same value
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert after == umask  # writing left the umask alone
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.json"]
