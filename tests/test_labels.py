"""Label rules, alignment with the model's classes, and the dry run.

Labels need no pixels, so most folders here hold empty files: the dry run must not open them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from asl_eval.demo_data import ASL_CLASSES
from asl_eval.errors import InputError, LabelError
from asl_eval.labels import (
    FILENAME_RULES,
    LabelOptions,
    align_label,
    align_labels,
    compile_label_regex,
    filename_label,
    folder_label,
    label_files,
    parse_label_map,
    preview_labels,
    read_labels_table,
    regex_label,
)

from .conftest import shared_asl_data


def touch(root: Path, *names: str) -> list[Path]:
    paths = []
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")  # zero bytes: labelling must never decode an image
        paths.append(path)
    return sorted(paths, key=str)


def outcome(labeled, root: Path) -> dict[str, tuple[str, str | None]]:  # type: ignore[no-untyped-def]
    """``relative path -> (status or class, label)`` for every file."""
    result: dict[str, tuple[str, str | None]] = {}
    for path, cls in labeled.items:
        result[Path(path).relative_to(root).as_posix()] = ("labeled", cls)
    for entry in labeled.entries:
        result[Path(entry.path).relative_to(root).as_posix()] = (entry.status, entry.label)
    return result


# -- built-in rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "label", "rule"),
    [
        ("U_test.jpg", "U", "kaggle-test"),
        ("space_test.jpg", "space", "kaggle-test"),
        ("nothing_test.JPG", "nothing", "kaggle-test"),
        ("X0023_test.jpg", "X", "kaggle-ood-test"),
        ("del0002_test.jpg", "del", "kaggle-ood-test"),
        ("nothing0013_test.jpeg", "nothing", "kaggle-ood-test"),
        ("A1234.jpg", "A", "kaggle-train"),
        ("space1.jpg", "space", "kaggle-train"),
        ("hand1_a_bot_seg_1_cropped.jpeg", None, None),
        ("A1234.png", None, None),
        ("_test.jpg", None, None),
    ],
)
def test_builtin_rules_on_the_asl_layouts(name: str, label: str | None, rule: str | None) -> None:
    assert filename_label(Path("some/folder") / name) == (label, rule)


file_numbers = st.integers(min_value=0, max_value=99_999)


@given(cls=st.sampled_from(ASL_CLASSES), number=file_numbers, upper=st.booleans())
def test_builtin_rules_round_trip_every_class(cls: str, number: int, upper: bool) -> None:
    ext = ".JPG" if upper else ".jpg"
    assert filename_label(Path(f"{cls}_test{ext}")) == (cls, "kaggle-test")
    assert filename_label(Path(f"{cls}{number:04d}_test{ext}")) == (cls, "kaggle-ood-test")
    assert filename_label(Path(f"{cls}{number}{ext}")) == (cls, "kaggle-train")
    assert folder_label(Path("root") / cls / f"{cls}{number}.jpg", Path("root")) == cls


@given(cls=st.sampled_from(ASL_CLASSES), number=file_numbers)
def test_each_builtin_regex_alone_round_trips(cls: str, number: int) -> None:
    names = {
        "kaggle-test": f"{cls}_test.jpg",
        "kaggle-ood-test": f"{cls}{number:04d}_test.jpg",
        "kaggle-train": f"{cls}{number}.jpg",
    }
    for rule, name in names.items():
        assert regex_label(Path(name), FILENAME_RULES[rule]) == cls


# -- user regex ----------------------------------------------------------------------------


def test_regex_named_group_or_single_group() -> None:
    assert regex_label(Path("img_B_003.png"), r"img_(?P<label>[A-Z])_(\d+)") == "B"
    assert regex_label(Path("img_B_003.png"), r"img_([A-Z])_") == "B"
    assert regex_label(Path("other.png"), r"img_([A-Z])_") is None
    assert regex_label(Path("img__003.png"), r"img_([A-Z]*)_") is None  # empty group: no label


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (r"img_[A-Z]", "has 0 capture groups; expected one group"),
        (r"(img)_([A-Z])", "has 2 capture groups"),
        (r"img_([A-Z]", "is not a valid regular expression"),
    ],
)
def test_bad_regex_is_a_label_error(pattern: str, message: str) -> None:
    with pytest.raises(LabelError, match=re.escape(message)):
        compile_label_regex(pattern)


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


# -- alignment -----------------------------------------------------------------------------


def test_alignment_order_exact_then_case_then_map() -> None:
    classes = ["A", "B", "del", "nothing"]
    alignment = align_labels(
        ["A", "b", "Del", "delete", "7"], classes, label_map={"delete": "nothing"}
    )
    assert dict(alignment.mapping) == {
        "A": "A",
        "b": "B",
        "Del": "del",
        "delete": "nothing",
        "7": None,
    }
    assert dict(alignment.method) == {
        "A": "exact",
        "b": "case",
        "Del": "case",
        "delete": "map",
        "7": "none",
    }
    assert align_label("a", classes) == "A"
    assert align_label("zz", classes) is None


def test_classes_with_both_cases_match_exactly() -> None:
    alignment = align_labels(["a", "A"], ["a", "A", "b"])
    assert dict(alignment.mapping) == {"a": "a", "A": "A"}
    assert alignment.merged() == {}


def test_label_matching_two_classes_ignoring_case_is_an_error_until_mapped() -> None:
    with pytest.raises(LabelError, match=r"'del' matches 2 classes ignoring case \(Del, DEL\)"):
        align_labels(["del"], ["Del", "DEL"])
    alignment = align_labels(["del"], ["Del", "DEL"], label_map={"del": "DEL"})
    assert alignment.mapping["del"] == "DEL"


def test_merge_found_only_by_ignoring_case_is_an_error() -> None:
    with pytest.raises(
        LabelError, match=r"'A' \(exact match\) and 'a' \(ignoring case\).*--label-map a=A"
    ):
        align_labels(["A", "a"], ["A", "B"])
    with pytest.raises(LabelError, match=r"--label-map DEL=del --label-map Del=del"):
        align_labels(["Del", "DEL"], ["del"])
    # the suggested fix is accepted
    fixed = align_labels(["Del", "DEL"], ["del"], label_map={"DEL": "del", "Del": "del"})
    assert fixed.merged() == {"del": ("DEL", "Del")}


def test_explicit_map_may_merge_labels() -> None:
    alignment = align_labels(
        ["A", "a", "delete", "del"], ["A", "del"], label_map=parse_label_map(["a=A,delete=del"])
    )
    assert alignment.merged() == {"A": ("A", "a"), "del": ("del", "delete")}
    assert alignment.method["a"] == "map"


def test_map_target_must_be_a_class() -> None:
    with pytest.raises(LabelError, match=r"targets must be model classes; delete=dell"):
        align_labels(["delete"], ["A", "del"], label_map={"delete": "dell"})


def test_map_entry_that_would_never_apply_is_an_error() -> None:
    with pytest.raises(LabelError, match=r"--label-map a=B would never apply: 'a' already matches"):
        align_labels(["a"], ["A", "B"], label_map={"a": "B"})


def test_without_classes_labels_are_kept_and_mapped() -> None:
    alignment = align_labels(["A", "delete"], None, label_map={"delete": "del"})
    assert dict(alignment.mapping) == {"A": "A", "delete": "del"}


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (["delete"], "expects LABEL=CLASS"),
        (["=del"], "expects LABEL=CLASS"),
        (["a=A", "a=B"], "both"),
    ],
)
def test_parse_label_map_errors(entries: list[str], message: str) -> None:
    with pytest.raises(LabelError, match=message):
        parse_label_map(entries)


CASE_CHANGES = (str.lower, str.upper, str.title, str.swapcase, str)


@st.composite
def alignment_cases(draw: st.DrawFn) -> tuple[list[str], list[str], dict[str, str]]:
    """Classes, labels that are often case variants of them, and a map for some labels."""
    word = st.text(alphabet="abdelABDEL", min_size=1, max_size=3)
    classes = draw(st.lists(word, min_size=1, max_size=6, unique=True))
    variants = st.tuples(st.sampled_from(classes), st.sampled_from(CASE_CHANGES)).map(
        lambda pair: pair[1](pair[0])
    )
    labels = draw(st.lists(st.one_of(variants, word), min_size=1, max_size=8, unique=True))
    keys = draw(st.lists(st.sampled_from(labels), max_size=3, unique=True))
    label_map = {key: draw(st.sampled_from(classes)) for key in keys}
    return labels, classes, label_map


def reference_alignment(
    labels: list[str], classes: list[str], label_map: dict[str, str]
) -> dict[str, str | None] | None:
    """The documented rules written out plainly; None where alignment must refuse."""

    def automatic(label: str) -> list[str]:
        if label in classes:
            return [label]
        return [c for c in classes if c.lower() == label.lower()]

    for key, target in label_map.items():
        matches = automatic(key)
        if len(matches) == 1 and matches[0] != target:
            return None  # the entry would never apply
    mapping: dict[str, str | None] = {}
    by_case: set[str] = set()
    for label in labels:
        if label in classes:
            mapping[label] = label
        elif label in label_map:
            mapping[label] = label_map[label]
        elif len(automatic(label)) == 1:
            mapping[label] = automatic(label)[0]
            by_case.add(label)
        elif automatic(label):
            return None  # ambiguous
        else:
            mapping[label] = None
    for target in set(mapping.values()) - {None}:
        sources = [label for label, t in mapping.items() if t == target]
        if len(sources) > 1 and by_case & set(sources):
            return None  # a merge found only by ignoring case
    return mapping


@given(alignment_cases())
def test_alignment_never_merges_labels_silently(
    case: tuple[list[str], list[str], dict[str, str]],
) -> None:
    labels, classes, label_map = case
    expected = reference_alignment(labels, classes, label_map)
    if expected is None:
        with pytest.raises(LabelError):
            align_labels(labels, classes, label_map=label_map)
        return
    alignment = align_labels(labels, classes, label_map=label_map)
    assert dict(alignment.mapping) == expected
    for label, target in alignment.mapping.items():
        if label in classes:  # exact matches are never redirected
            assert target == label and alignment.method[label] == "exact"
    for target, merged in alignment.merged().items():
        # different labels share a class only if each one is the class itself or was mapped
        for label in merged:
            assert label == target or (
                alignment.method[label] == "map" and label_map[label] == target
            ), (target, merged)


# -- choosing a rule -----------------------------------------------------------------------


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


# -- labels from a table -------------------------------------------------------------------


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
    import asl_eval.labels as labels_module

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


def test_bad_labels_tables(tmp_path: Path) -> None:
    with pytest.raises(
        LabelError, match=r"needs columns 'path' and 'label'; it has \['file', 'label'\]"
    ):
        read_labels_table(pd.DataFrame({"file": ["a"], "label": ["A"]}), root=tmp_path)
    with pytest.raises(
        LabelError, match=r"gives 1 path\(s\) two different labels: a.png \('A' and 'B'\)"
    ):
        read_labels_table(
            pd.DataFrame({"path": ["a.png", "a.png"], "label": ["A", "B"]}), root=tmp_path
        )
    with pytest.raises(LabelError, match="Cannot read labels CSV"):
        read_labels_table(tmp_path / "absent.csv", root=tmp_path)


# -- the dry run ---------------------------------------------------------------------------


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


# -- the real ASL photos (skipped when ../shared/data/asl is absent) ------------------------


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
