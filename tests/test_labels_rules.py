"""Label rules (asl_eval.labels.rules): built-in file-name rules, the user regex, the labels CSV.

Labels need no pixels: nothing here opens an image.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from asl_eval.demo_data import ASL_CLASSES
from asl_eval.errors import LabelError
from asl_eval.labels import (
    FILENAME_RULES,
    compile_label_regex,
    filename_label,
    folder_label,
    read_labels_table,
    regex_label,
)

# -- built-in rules ----------------------------------------------------------------------------


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


# -- user regex --------------------------------------------------------------------------------


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


# -- labels from a table -----------------------------------------------------------------------


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
