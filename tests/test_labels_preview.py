"""The dry run (asl_eval.labels.preview_labels) and its terminal rendering.

Labels need no pixels, so most folders here hold empty files: the dry run must not open them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from asl_eval.demo_data import ASL_CLASSES
from asl_eval.errors import InputError
from asl_eval.labels import LabelOptions, preview_labels, render_label_preview

from .conftest import shared_asl_data


def touch(root: Path, *names: str) -> list[Path]:
    paths = []
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")  # zero bytes: labelling must never decode an image
        paths.append(path)
    return sorted(paths, key=str)


# -- the dry run -------------------------------------------------------------------------------


def test_preview_counts_rules_classes_and_unmatched(tmp_path: Path) -> None:
    touch(tmp_path, "a/1.jpg", "a/2.jpg", "b/3.jpg", "7/4.jpg", "loose.jpg", "c/notes.txt")
    (tmp_path / "b" / "bad.jpg").write_text("not an image at all")  # never opened

    preview = preview_labels(tmp_path, classes=["A", "B", "C"])

    assert preview.ok and preview.chosen == "folder"
    assert preview.n_found == 6
    assert preview.class_counts == {"A": 2, "B": 2, "C": 0}
    assert preview.not_in_classes == {"7": 1}
    assert [Path(p).name for p in preview.unlabeled] == ["loose.jpg"]
    rules = {r.rule: (r.n_labeled, r.n_in_classes) for r in preview.rules}
    assert rules["folder"] == (5, 4) and rules["filename"] == (0, 0)
    assert preview.skipped == {"not an image extension": 1}
    text = preview.render_text()
    assert re.search(r"^  C\s+0  \(no images\)$", text, re.MULTILINE)
    assert re.search(r"^  A\s+2$", text, re.MULTILINE)
    assert "a -> A (ignoring case, 2 files)" in text
    assert "Not in the model's classes (1 files, excluded from accuracy)" in text
    data = json.loads(json.dumps(preview.to_dict()))
    assert data["classes_without_files"] == ["C"] and data["n_unlabeled"] == 1
    assert data["chosen_rule"] == "folder" and data["n_labeled"] == 4


def test_preview_reports_a_conflict_instead_of_raising(tmp_path: Path) -> None:
    touch(tmp_path, "A/A0001.jpg", "B/A0003.jpg")
    preview = preview_labels(tmp_path, classes=ASL_CLASSES)
    assert not preview.ok and preview.chosen is None
    assert "give different labels for 1 of 2 files" in (preview.error or "")
    assert "Error: The parent folder name" in preview.render_text()
    assert preview.to_dict()["ok"] is False


def test_preview_without_classes_counts_labels(tmp_path: Path) -> None:
    touch(tmp_path, "A_test.jpg", "B_test.jpg", "B0001_test.jpg")
    preview = preview_labels(tmp_path)
    assert preview.chosen == "filename"
    assert preview.class_counts == {"A": 1, "B": 2}
    by_rule = {r.rule: r.n_labeled for r in preview.rules}
    assert by_rule["filename:kaggle-test"] == 2 and by_rule["filename:kaggle-ood-test"] == 1
    assert "Files per label (3 labelled)" in preview.render_text()


def test_preview_missing_folder_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        preview_labels(tmp_path / "absent")


def test_rendering_shows_map_csv_leftovers_and_the_strict_error(tmp_path: Path) -> None:
    touch(tmp_path, "p.png", "q.png", "r.png")
    csv = tmp_path / "l.csv"  # not an image: skipped by discovery
    csv.write_text("path,label\np.png,A\nq.png,delete\ngone.png,C\n")
    options = LabelOptions(labels_csv=csv, label_map={"delete": "del"}, strict=True)

    preview = preview_labels(tmp_path, classes=["A", "del"], options=options)

    assert not preview.ok and preview.chosen is None
    assert [r.rule for r in preview.rules][:3] == ["csv", "folder", "filename"]
    assert preview.class_counts == {"A": 1, "del": 1}
    text = render_label_preview(preview)
    assert text == preview.render_text()
    assert text.startswith(f"{tmp_path}: 3 files found\n  skipped (not inputs): 1 ")
    assert "  delete -> del (by --label-map, 1 files)" in text
    assert re.search(r"^Unlabeled \(1 files\): .*r\.png$", text, re.MULTILINE)
    assert re.search(r"^Labels CSV rows with no file \(1\): .*gone\.png$", text, re.MULTILINE)
    assert text.endswith(
        "Error: --strict: 1 of 3 files cannot be used; 1 have no label: "
        f"{tmp_path / 'r.png'}. Fix the files or the label rule, or drop --strict."
    )
    assert "(* = rule used" not in text  # a run would stop: no rule is marked as used


# -- the real ASL photos (skipped when ../shared/data/asl is absent) ---------------------------


def test_real_official_test_folder() -> None:
    preview = preview_labels(shared_asl_data() / "asl_alphabet_test", classes=ASL_CLASSES)
    assert preview.ok and preview.chosen == "filename"
    assert preview.n_found == 28 and preview.n_labeled == 28
    assert preview.class_counts["del"] == 0
    assert all(n == 1 for c, n in preview.class_counts.items() if c != "del")
    assert preview.not_in_classes == {} and preview.unlabeled == ()


def test_real_training_frames() -> None:
    preview = preview_labels(shared_asl_data() / "asl_alphabet_train", classes=ASL_CLASSES)
    assert preview.ok and preview.n_found == 2900 and preview.n_labeled == 2900
    assert preview.class_counts == dict.fromkeys(ASL_CLASSES, 100)
    rules = {r.rule: r.n_in_classes for r in preview.rules}
    assert rules["folder"] == 2900 and rules["filename:kaggle-train"] == 2900  # they agree
    unmodelled = preview_labels(shared_asl_data() / "asl_alphabet_train")
    assert unmodelled.ok and unmodelled.class_counts == dict.fromkeys(sorted(ASL_CLASSES), 100)


def test_real_massey_letters_align_and_digits_are_listed() -> None:
    preview = preview_labels(shared_asl_data() / "massey", classes=ASL_CLASSES)
    assert preview.ok and preview.chosen == "folder" and preview.n_found == 720
    letters = [c for c in ASL_CLASSES if len(c) == 1]
    assert {c: preview.class_counts[c] for c in letters} == dict.fromkeys(letters, 20)
    assert {c: preview.class_counts[c] for c in ("del", "nothing", "space")} == dict.fromkeys(
        ("del", "nothing", "space"), 0
    )
    assert preview.not_in_classes == {str(d): 20 for d in range(10)}
    methods = {a["label"]: (a["class"], a["method"]) for a in preview.alignment}
    assert methods["a"] == ("A", "case") and methods["0"] == (None, "none")
    assert "Not in the model's classes (200 files" in preview.render_text()


def test_rendering_never_prints_terminal_escapes_from_names(tmp_path: Path) -> None:
    """A folder or file name with an escape sequence is shown escaped, never sent raw."""
    hostile = "X\x1b[2J\x1b]0;owned\x07"
    touch(tmp_path, f"{hostile}/a.jpg", f"{hostile}/b.jpg", f"A/{hostile}.jpg", "loose\r.jpg")
    text = render_label_preview(preview_labels(tmp_path, classes=["A", "B"]))
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert "X\\x1b[2J" in text  # the name is still there, readable
