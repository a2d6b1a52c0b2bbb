"""Labelling a list of files (asl_eval.labels.label_files): choosing a rule and accounting for
every file.

Labels need no pixels, so the folders here hold empty files.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from asl_eval.demo_data import ASL_CLASSES
from asl_eval.errors import LabelError
from asl_eval.labels import LabeledFiles, LabelOptions, label_files, preview_labels


def touch(root: Path, *names: str) -> list[Path]:
    paths = []
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")  # zero bytes: labelling must never decode an image
        paths.append(path)
    return sorted(paths, key=str)


def outcome(labeled: LabeledFiles, root: Path) -> dict[str, tuple[str, str | None]]:
    """``relative path -> (status or class, label)`` for every file."""
    result: dict[str, tuple[str, str | None]] = {}
    for path, cls in labeled.items:
        result[Path(path).relative_to(root).as_posix()] = ("labeled", cls)
    for entry in labeled.entries:
        result[Path(entry.path).relative_to(root).as_posix()] = (entry.status, entry.label)
    return result


# -- user regex --------------------------------------------------------------------------------


def test_regex_option_labels_a_flat_folder(tmp_path: Path) -> None:
    paths = touch(tmp_path, "sign-a-1.png", "sign-B-2.png", "readme.png")
    labeled = label_files(
        paths,
        root=tmp_path,
        classes=["A", "B"],
        options=LabelOptions(regex=r"sign-(?P<label>\w)-\d"),
    )
    assert labeled.rule == "regex"
    assert outcome(labeled, tmp_path) == {
        "sign-a-1.png": ("labeled", "A"),
        "sign-B-2.png": ("labeled", "B"),
        "readme.png": ("unlabeled", None),
    }
    assert labeled.entries[0].reason == "file name does not match --label-regex"


# -- choosing a rule ---------------------------------------------------------------------------


def test_flat_official_test_folder_uses_the_file_names(tmp_path: Path) -> None:
    paths = touch(tmp_path, "A_test.jpg", "space_test.jpg", "nothing_test.jpg", "oops.jpg")
    labeled = label_files(paths, root=tmp_path, classes=ASL_CLASSES)
    assert labeled.rule == "filename"
    assert outcome(labeled, tmp_path) == {
        "A_test.jpg": ("labeled", "A"),
        "space_test.jpg": ("labeled", "space"),
        "nothing_test.jpg": ("labeled", "nothing"),
        "oops.jpg": ("unlabeled", None),
    }


def test_folder_and_file_name_agree_on_the_ood_layout(tmp_path: Path) -> None:
    paths = touch(
        tmp_path, "X/X0023_test.jpg", "del/del0002_test.jpg", "nothing/nothing0013_test.jpg"
    )
    for classes in (ASL_CLASSES, None):
        labeled = label_files(paths, root=tmp_path, classes=classes)
        assert labeled.rule == "folder"
        assert [cls for _, cls in labeled.items] == ["X", "del", "nothing"]
        assert labeled.entries == ()


def test_massey_layout_aligns_letters_and_lists_digits(tmp_path: Path) -> None:
    paths = touch(
        tmp_path, "a/hand1_a_bot_seg_1_cropped.jpeg", "b/hand2_b_top.jpeg", "7/hand1_7.jpeg"
    )
    labeled = label_files(paths, root=tmp_path, classes=ASL_CLASSES)
    assert labeled.rule == "folder"
    assert outcome(labeled, tmp_path) == {
        "a/hand1_a_bot_seg_1_cropped.jpeg": ("labeled", "A"),
        "b/hand2_b_top.jpeg": ("labeled", "B"),
        "7/hand1_7.jpeg": ("not_in_classes", "7"),
    }
    assert labeled.entries[0].reason == "label is not one of the model's classes"


def test_strict_turns_unknown_labels_into_an_error(tmp_path: Path) -> None:
    paths = touch(tmp_path, "a/1.png", "7/2.png", "loose.png")
    with pytest.raises(
        LabelError,
        match=r"--strict: 2 of 3 files cannot be used; 1 have labels that are not model "
        r"classes \(7\).*1 have no label",
    ):
        label_files(paths, root=tmp_path, classes=ASL_CLASSES, options=LabelOptions(strict=True))


def test_rules_that_disagree_are_an_error_showing_both_readings(tmp_path: Path) -> None:
    paths = touch(tmp_path, "A/A0001.jpg", "A/A0002.jpg", "B/A0003.jpg", "B/C0004.jpg")
    with pytest.raises(LabelError) as caught:
        label_files(paths, root=tmp_path, classes=ASL_CLASSES)
    message = str(caught.value)
    assert (
        "parent folder name and the built-in file-name rules give different labels for 2 of 4"
        in message
    )
    assert "B/A0003.jpg: parent folder name 'B', built-in file-name rules 'A'" in message
    assert "--labels-from folder, --labels-from filename" in message
    # choosing resolves it
    labeled = label_files(
        paths, root=tmp_path, classes=ASL_CLASSES, options=LabelOptions(source="folder")
    )
    assert [cls for _, cls in labeled.items] == ["A", "A", "B", "B"]
    labeled = label_files(
        paths, root=tmp_path, classes=ASL_CLASSES, options=LabelOptions(source="filename")
    )
    assert [cls for _, cls in labeled.items] == ["A", "A", "A", "C"]


def test_disagreement_without_classes_ignores_case(tmp_path: Path) -> None:
    paths = touch(tmp_path, "a/A0001.jpg", "b/B0002.jpg")
    labeled = label_files(paths, root=tmp_path)
    assert labeled.rule == "folder" and [c for _, c in labeled.items] == ["a", "b"]
    paths = touch(tmp_path / "other", "cats/cat001.jpg")
    with pytest.raises(LabelError, match="'cats', built-in file-name rules 'cat'"):
        label_files(paths, root=tmp_path / "other")


def test_rule_that_matches_classes_wins_over_one_that_labels_more(tmp_path: Path) -> None:
    # every file is in a subfolder named "batch1", but the file names carry the classes
    paths = touch(tmp_path, "batch1/A_test.jpg", "batch1/B_test.jpg")
    labeled = label_files(paths, root=tmp_path, classes=ASL_CLASSES)
    assert labeled.rule == "filename" and [c for _, c in labeled.items] == ["A", "B"]


def test_no_label_at_all_is_an_error(tmp_path: Path) -> None:
    paths = touch(tmp_path, "one.png", "two.png")
    with pytest.raises(LabelError, match=r"None of the 2 files has a label .*--label-regex RE"):
        label_files(paths, root=tmp_path, classes=ASL_CLASSES)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (LabelOptions(source="csv"), "needs --labels-csv FILE"),
        (
            LabelOptions(source="folder", regex="(x)"),
            "cannot be combined with --labels-from folder",
        ),
        (LabelOptions(source="folder", labels_csv="x.csv"), "--labels-csv cannot be combined"),
        (LabelOptions(regex="(x)", labels_csv="x.csv"), "not both"),
        (LabelOptions(source="guess"), "must be one of auto, folder, filename, csv"),  # type: ignore[arg-type]
    ],
)
def test_contradictory_options_are_errors(
    tmp_path: Path, options: LabelOptions, message: str
) -> None:
    paths = touch(tmp_path, "A/1.png")
    with pytest.raises(LabelError, match=re.escape(message)):
        label_files(paths, root=tmp_path, classes=ASL_CLASSES, options=options)


# -- labels from a table -----------------------------------------------------------------------


def test_labels_csv_relative_and_absolute_paths(tmp_path: Path) -> None:
    images = tmp_path / "images"
    paths = touch(images, "x/1.png", "2.png", "3.png", "4.png", "5.png")
    csv = tmp_path / "labels.csv"
    csv.write_text(
        f"path,label\nx/1.png,a\n{images / '2.png'},NA\n3.png,\n5.png,digit7\nmissing.png,B\n",
        encoding="utf-8",
    )
    with pytest.warns(UserWarning, match=r"1 rows of the labels CSV name no image"):
        labeled = label_files(
            paths, root=images, classes=["A", "NA", "B"], options=LabelOptions(labels_csv=csv)
        )
    assert labeled.rule == "csv"
    assert outcome(labeled, images) == {
        "x/1.png": ("labeled", "A"),
        "2.png": ("labeled", "NA"),  # "NA" is a label, not a missing value
        "3.png": ("unlabeled", None),
        "4.png": ("unlabeled", None),
        "5.png": ("not_in_classes", "digit7"),
    }


def test_labels_csv_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Labelling and the dry run read the table once, unused-row check included (a spy around
    the real reader, which still does the work)."""
    import asl_eval.labels.detection as labels_module

    paths = touch(tmp_path, "p.png", "q.png")
    csv = tmp_path / "l.csv"
    csv.write_text("path,label\np.png,A\nq.png,B\ngone.png,C\n")
    calls: list[object] = []
    real = labels_module.read_labels_table

    def spy(table: object, *, root: Path) -> dict[str, str]:
        calls.append(table)
        return real(table, root=root)  # type: ignore[arg-type]

    monkeypatch.setattr(labels_module, "read_labels_table", spy)
    with pytest.warns(UserWarning, match="1 rows of the labels CSV"):
        label_files(paths, root=tmp_path, classes=ASL_CLASSES, options=LabelOptions(labels_csv=csv))
    assert calls == [csv]
    calls.clear()
    preview = preview_labels(tmp_path, options=LabelOptions(labels_csv=csv))
    assert [Path(row).name for row in preview.unused_csv_rows] == ["gone.png"]
    assert calls == [csv]


def test_former_option_name_csv_path_still_works(tmp_path: Path) -> None:
    paths = touch(tmp_path, "p.png")
    (tmp_path / "l.csv").write_text("path,label\np.png,A\n")
    options = LabelOptions(csv_path=tmp_path / "l.csv")
    assert options.labels_csv == tmp_path / "l.csv"
    labeled = label_files(paths, root=tmp_path, classes=ASL_CLASSES, options=options)
    assert labeled.items == ((paths[0], "A"),)


def test_labels_from_a_dataframe(tmp_path: Path) -> None:
    paths = touch(tmp_path, "p.png", "q.png")
    frame = pd.DataFrame({"path": ["p.png", "q.png"], "label": ["space", "del"]})
    labeled = label_files(
        paths, root=tmp_path, classes=ASL_CLASSES, options=LabelOptions(labels_csv=frame)
    )
    assert [c for _, c in labeled.items] == ["space", "del"]
