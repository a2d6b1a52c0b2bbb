"""asl_eval.audit.splits.random_split gives exactly fastai's RandomSplitter indices (which
training uses) without importing torch; the grouped split never divides a group, whether the
groups are frame groups, explicit labels (a signer column) or both joined."""

from __future__ import annotations

import numpy as np
import pytest
from fastai.data.transforms import RandomSplitter
from hypothesis import given, settings
from hypothesis import strategies as st

from asl_eval.audit import grouped_split, random_split
from asl_eval.audit.splits import join_groups
from asl_eval.errors import MetricError


@pytest.mark.parametrize(
    ("n", "valid_pct", "seed"),
    [
        (0, 0.2, 42),
        (1, 0.5, 1),
        (10, 0.2, 42),
        (2900, 0.2, 42),
        (8700, 0.3, 7),
        (50, 0.2, -3),
        (50, 0.2, 2**40 + 5),
    ],
)
def test_random_split_equals_fastai(n: int, valid_pct: float, seed: int) -> None:
    expected_train, expected_valid = RandomSplitter(valid_pct=valid_pct, seed=seed)(list(range(n)))
    train, valid = random_split(n, valid_pct=valid_pct, seed=seed)
    assert valid.tolist() == [int(i) for i in expected_valid]
    assert train.tolist() == [int(i) for i in expected_train]


def test_random_split_checks_its_arguments() -> None:
    with pytest.raises(MetricError, match="valid_pct"):
        random_split(10, valid_pct=0.0, seed=1)
    with pytest.raises(MetricError, match="supports"):
        random_split(-1, valid_pct=0.2, seed=1)


# -- the grouped split with explicit groups (a metadata column such as signer) ----------------

group_labels = st.lists(
    st.tuples(st.sampled_from("ABC"), st.sampled_from(["s1", "s2", "s3", "s4", "s5", "x"])),
    min_size=1,
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(rows=group_labels, valid_pct=st.floats(0.05, 0.95), seed=st.integers(0, 2**31))
def test_grouped_split_never_splits_an_explicit_group(
    rows: list[tuple[str, str]], valid_pct: float, seed: int
) -> None:
    labels = [label for label, _ in rows]
    groups = [group for _, group in rows]
    train, valid = grouped_split(range(len(rows)), labels, groups, valid_pct=valid_pct, seed=seed)
    assert sorted(train.tolist() + valid.tolist()) == list(range(len(rows)))
    assert not {groups[i] for i in train} & {groups[i] for i in valid}


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(st.tuples(st.sampled_from("AB"), st.integers(0, 8)), min_size=1, max_size=40),
    seed=st.integers(0, 1000),
)
def test_grouped_split_depends_on_group_identity_not_its_name(
    rows: list[tuple[str, int]], seed: int
) -> None:
    """Renaming groups without changing their order (ids 0.. to 10*id+7, or to text that sorts
    the same) gives the same split, so frame-group splits stay as they were."""
    labels = [label for label, _ in rows]
    ids = [group for _, group in rows]
    expected = grouped_split(ids, labels, ids, valid_pct=0.3, seed=seed)
    for renamed in ([10 * g + 7 for g in ids], [f"g{g:02d}" for g in ids], np.array(ids)):
        got = grouped_split(ids, labels, renamed, valid_pct=0.3, seed=seed)
        assert got[0].tolist() == expected[0].tolist()
        assert got[1].tolist() == expected[1].tolist()


def test_join_groups_is_the_union_of_groupings() -> None:
    frames = [0, 0, 1, 1, 2, 3]
    signers = ["a", "b", "b", "c", "c", "d"]
    # frames link 0-1 and 2-3; signers link 1-2 and 3-4: one chain 0..4, and 5 alone
    assert join_groups(frames, signers).tolist() == [0, 0, 0, 0, 0, 1]
    assert join_groups(signers).tolist() == [0, 1, 1, 2, 2, 3]
    with pytest.raises(MetricError, match="different lengths"):
        join_groups([0, 1], ["a"])
    with pytest.raises(MetricError, match="one label and one group"):
        grouped_split(range(3), list("AAB"), ["a", "b"], valid_pct=0.5, seed=0)
