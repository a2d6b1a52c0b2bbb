"""The readings of an analysis's data shared by the report's sections, the findings' checks and
the JSON writers: :func:`asl_eval.analysis.number_or_nan` and
:func:`asl_eval.analysis.json_value` (with its two faces, the report's ``clean`` and the
records' ``plain``)."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asl_eval.analysis import AnalysisResult, json_value, number_or_nan
from asl_eval.audit.records import plain
from asl_eval.report.serialize import clean

SETTINGS = settings(max_examples=80, deadline=None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, 3.0),
        (True, 1.0),
        (0.25, 0.25),
        (np.int64(7), 7.0),
        (np.uint8(200), 200.0),
        (np.float32(0.5), 0.5),
        (Fraction(1, 4), 0.25),
    ],
)
def test_a_real_number_reads_as_its_float(value: object, expected: float) -> None:
    read = number_or_nan({"x": value}, "x")
    assert type(read) is float
    assert read == expected


@pytest.mark.parametrize("value", [None, pd.NA, "3", b"3", np.bool_(True), np.complex128(1)])
def test_anything_but_a_real_number_reads_as_nan(value: object) -> None:
    assert math.isnan(number_or_nan({"x": value}, "x"))


def test_an_absent_key_is_nan_unless_required() -> None:
    row = {"n": 2}
    assert math.isnan(number_or_nan(row, "missing"))
    assert number_or_nan(row, "n", required=True) == 2.0
    with pytest.raises(KeyError, match="missing"):
        number_or_nan(row, "missing", required=True)


def test_a_summary_row_and_a_table_row_read_the_same() -> None:
    """``summary_record`` keeps numpy scalars, ``to_dict`` gives Python ones: same numbers."""
    table = pd.DataFrame({"set": ["ood"], "n": [12], "accuracy": [0.75], "p": [np.nan]})
    result = AnalysisResult("demo", table, table)
    summary, row = result.summary_record(), table.to_dict(orient="records")[0]
    assert isinstance(summary["n"], np.integer)
    for key in ("n", "accuracy"):
        assert number_or_nan(summary, key) == number_or_nan(row, key) == float(table[key][0])
    assert math.isnan(number_or_nan(summary, "p")) and math.isnan(number_or_nan(row, "p"))
    assert math.isnan(number_or_nan(summary, "set"))


def test_json_value_turns_numpy_and_pandas_into_json_data() -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": [0.5, np.nan], "c": ["x", "y"]})
    value = {
        1: np.arange(3),
        "frame": frame,
        "scalars": (np.bool_(False), np.int32(-4), np.float32(0.25), np.inf, -np.inf, None),
        "other": pd.Timestamp("2026-01-02"),
    }
    assert json_value(value) == {
        "1": [0, 1, 2],
        "frame": [{"a": 1, "b": 0.5, "c": "x"}, {"a": 2, "b": None, "c": "y"}],
        "scalars": [False, -4, 0.25, None, None, None],
        "other": "2026-01-02 00:00:00",
    }


def test_digits_round_to_significant_digits_and_none_keeps_every_digit() -> None:
    value = [0.1 + 0.2, 123456.7891234, np.float64(2) / 3]
    assert json_value(value) == [0.1 + 0.2, 123456.7891234, 2 / 3]
    assert json_value(value, digits=10) == [0.3, 123456.7891, 0.6666666667]
    assert json_value(value, digits=3) == [0.3, 123000.0, 0.667]


_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**62), 2**62),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(width=32).map(np.float32),
    st.integers(-(2**31), 2**31 - 1).map(np.int64),
    st.booleans().map(np.bool_),
    st.text(max_size=5),
)
_values = st.recursive(
    _leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=3), children, max_size=4)
    ),
    max_leaves=20,
)


@SETTINGS
@given(_values)
def test_plain_and_clean_are_json_value_unrounded_and_rounded(value: object) -> None:
    assert plain(value) == json_value(value)
    assert clean(value) == json_value(value, digits=10)
    # the report rounds the records plain wrote: the same as rounding the analysis at once
    assert clean(plain(value)) == clean(value)
    json.dumps(plain(value), allow_nan=False)
    json.dumps(clean(value), allow_nan=False)
