"""The shape every analysis stage returns (Grad-CAM today; the data audit, the robustness sweep
and the findings as they land), so the report composes its optional sections from a registry
instead of knowing each one.

The shape is cleanlab's issue-manager shape: a per-item table, a one-row summary and an info
dict. Next to it, the two readings every consumer of that shape makes: :func:`number_or_nan`
(one number of a table's row, for the report's sections and the findings' checks) and
:func:`json_value` (any of its values as JSON data, for the report's JSON and the commands'
``--json``). Imports numpy and pandas only; every stage may import it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Real
from typing import TypeVar

import numpy as np
import pandas as pd

from asl_eval.errors import ReportError

__all__ = ["AnalysisResult", "JsonValue", "json_value", "number_or_nan"]

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]

_Key = TypeVar("_Key")


@dataclass(frozen=True)
class AnalysisResult:
    """One analysis of one report: what a stage computed, ready for the report and the JSON.

    Attributes
    ----------
    name
        The stage's stable key (``"cam"``); the report's section registry is keyed by it.
    items
        One row per analysed item (an image, a pair of images, a class), with the columns the
        stage documents.
    summary
        Exactly one row: the headline numbers of the analysis.
    info
        Everything else the section shows: parameters, smaller tables, encoded figures (bytes).
    """

    name: str
    items: pd.DataFrame
    summary: pd.DataFrame
    info: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "_").isidentifier():
            raise ReportError(
                f"an analysis needs a short identifier as its name; got {self.name!r}."
            )
        if len(self.summary) != 1:
            raise ReportError(
                f"the summary of analysis {self.name!r} must have exactly one row; "
                f"it has {len(self.summary)}."
            )

    def summary_record(self) -> dict[str, object]:
        """The summary row as a plain dict (for the JSON)."""
        return {str(key): value for key, value in self.summary.iloc[0].items()}


def number_or_nan(row: Mapping[_Key, object], key: _Key, *, required: bool = False) -> float:
    """The value under ``key`` as a float; NaN when it is not a real number (None, NA, text)
    or, unless ``required``, when the row has no ``key`` (a column the analysis did not write).

    Real numbers are Python's and numpy's integers and floats; a Python bool counts as 0 or 1.

    Raises
    ------
    KeyError
        When ``required`` and the row has no ``key``.

    >>> number_or_nan({"n": np.int64(3), "note": "3"}, "n")
    3.0
    >>> [number_or_nan({"n": None, "note": "3"}, key) for key in ("n", "note", "absent")]
    [nan, nan, nan]
    """
    value = row[key] if required else row.get(key)
    if isinstance(value, Real):
        return float(value)
    return math.nan


def json_value(value: object, *, digits: int | None = None) -> JsonValue:
    """``value`` as JSON data: numpy scalars as Python numbers, NaN and infinities as None,
    mappings as objects with text keys, lists, tuples, arrays and DataFrames (one object per
    row) as lists, anything else as its text.

    ``digits`` rounds every float to that many significant digits (the report's JSON, so the
    same numbers always give the same bytes); None keeps floats as they are (``--json`` of the
    commands).

    >>> json_value({"a": np.float64("nan"), "b": (np.int64(2), np.bool_(True), 1 / 3)})
    {'a': None, 'b': [2, True, 0.3333333333333333]}
    >>> json_value([1 / 3, np.inf], digits=4)
    [0.3333, None]
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        if not math.isfinite(number):
            return None
        return number if digits is None else float(f"{number:.{digits}g}")
    if isinstance(value, Mapping):
        return {str(k): json_value(v, digits=digits) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_value(v, digits=digits) for v in value]
    if isinstance(value, pd.DataFrame):
        return [json_value(row, digits=digits) for row in value.to_dict(orient="records")]
    return str(value)
