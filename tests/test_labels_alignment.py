"""Alignment of labels with the model's classes (asl_eval.labels.alignment): exact, case, map."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asl_eval.errors import LabelError
from asl_eval.labels import align_label, align_labels, parse_label_map


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


CaseChange = Callable[[str], str]
CASE_CHANGES: tuple[CaseChange, ...] = (str.lower, str.upper, str.title, str.swapcase, str)


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
    for merged_class in set(mapping.values()) - {None}:
        sources = [label for label, t in mapping.items() if t == merged_class]
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
