"""asl_eval.audit.splits.random_split gives exactly fastai's RandomSplitter indices (which
training uses) without importing torch, and the audit command re-creates training's split."""

from __future__ import annotations

import pytest
from fastai.data.transforms import RandomSplitter

from asl_eval.audit import random_split
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
