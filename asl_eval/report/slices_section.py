"""The report's "Accuracy by slice" section: how the ``"slices"`` analysis
(:func:`asl_eval.audit.slices.slice_analysis`) becomes template variables and a JSON block.

Registered with the section registry when this module is imported. ``build`` picks and orders
every number ``slices.html.j2`` prints (per metadata column, per set: each value's accuracy and
Wilson interval, the value-vs-rest p-value, the column's test and the weakest value) and draws
one figure per column (:func:`asl_eval.audit.slice_plots.plot_slice_accuracy`); the template
only loops and prints. Slice values and column names come from the user's CSV and are
text in the page (the environment's autoescape). ``to_json`` is :func:`slices_record`.

Imports pandas, the audit's JSON helpers and slice figure, the analysis shape, the registry and
the report's figure encoding; never torch.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import pandas as pd

from asl_eval.analysis import AnalysisResult, number_or_nan
from asl_eval.audit.records import plain
from asl_eval.audit.slice_plots import plot_slice_accuracy
from asl_eval.errors import ReportError
from asl_eval.report.figures import draw
from asl_eval.report.registry import SectionSpec, register_section

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "SLICES_SECTION",
    "SliceColumnView",
    "SliceRowView",
    "SliceSetView",
    "build",
    "slices_record",
    "to_json",
]

ROUGH_EXPECTED = 5.0
"""Below this smallest expected count the page says the chi-square approximation is rough."""

MAX_LISTED = 50
"""Unmatched images and unused metadata rows listed on the page (the JSON has all)."""


@dataclass(frozen=True)
class SliceRowView:
    """One slice value of one column in one set."""

    value: str
    n: int
    correct: int
    accuracy: float
    interval: tuple[float, float]
    accuracy_rest: float
    p_adjusted: float
    tested: bool
    significant: bool
    weakest: bool


@dataclass(frozen=True)
class SliceSetView:
    """One set's slices of one column, with the column's test (``has_test``: a p-value exists;
    ``rough``: a chi-square test with an expected count below :data:`ROUGH_EXPECTED`)."""

    set_name: str
    test: str
    has_test: bool
    rough: bool
    statistic: float
    p_value: float
    p_adjusted: float
    significant: bool
    min_expected: float
    n_no_metadata: int
    weakest: str
    weakest_accuracy: float
    weakest_significant: bool
    rows: tuple[SliceRowView, ...]


@dataclass(frozen=True)
class SliceColumnView:
    """One metadata column across the sets."""

    column: str
    sets: tuple[SliceSetView, ...]
    figure_uri: str


def _table(result: AnalysisResult, key: str) -> pd.DataFrame:
    table = result.info.get(key)
    if not isinstance(table, pd.DataFrame):
        raise ReportError(f"The slices analysis lacks its {key!r} table (info[{key!r}]).")
    return table


def _records(table: pd.DataFrame) -> list[dict[Hashable, object]]:
    return [dict(row) for row in table.to_dict(orient="records")]


def _test_name(row: Mapping[Hashable, object]) -> str:
    test = str(row["test"])
    if test == "fisher":
        return "Fisher's exact test"
    if test == "chi-square":
        return f"chi-square test ({number_or_nan(row, 'dof'):.0f} df)"
    return test.removeprefix("none: ")


def _set_view(test: Mapping[Hashable, object], slices: pd.DataFrame) -> SliceSetView:
    weakest = str(test["weakest_value"])
    rows = tuple(
        SliceRowView(
            value=str(r["value"]),
            n=int(number_or_nan(r, "n")),
            correct=int(number_or_nan(r, "correct")),
            accuracy=number_or_nan(r, "accuracy"),
            interval=(number_or_nan(r, "accuracy_low"), number_or_nan(r, "accuracy_high")),
            accuracy_rest=number_or_nan(r, "accuracy_rest"),
            p_adjusted=number_or_nan(r, "p_adjusted"),
            tested=bool(r["tested"]),
            significant=bool(r["significant"]),
            weakest=bool(r["tested"]) and str(r["value"]) == weakest,
        )
        for r in _records(slices)
    )
    return SliceSetView(
        set_name=str(test["set"]),
        test=_test_name(test),
        has_test=math.isfinite(number_or_nan(test, "p_value")),
        rough=str(test["test"]) == "chi-square"
        and number_or_nan(test, "min_expected") < ROUGH_EXPECTED,
        statistic=number_or_nan(test, "statistic"),
        p_value=number_or_nan(test, "p_value"),
        p_adjusted=number_or_nan(test, "p_adjusted"),
        significant=bool(test["significant"]),
        min_expected=number_or_nan(test, "min_expected"),
        n_no_metadata=int(number_or_nan(test, "n_no_metadata")),
        weakest=weakest,
        weakest_accuracy=number_or_nan(test, "weakest_accuracy"),
        weakest_significant=bool(test["weakest_significant"]),
        rows=rows,
    )


def _plot(slices: pd.DataFrame, column: str, ax: Axes) -> Axes:
    return plot_slice_accuracy(slices, column, ax=ax)


def build(result: AnalysisResult) -> dict[str, object]:
    """The template variables of the slices section (see ``slices.html.j2``)."""
    summary = result.summary_record()
    slices = _table(result, "slices")
    tests = _table(result, "tests")
    columns = []
    for column in dict.fromkeys(tests["column"].astype(str)):
        views = tuple(
            _set_view(
                test,
                slices[(slices["set"] == test["set"]) & (slices["column"] == column)],
            )
            for test in _records(tests[tests["column"].astype(str) == column])
        )
        figure = draw(
            partial(_plot, slices, column),
            size=(6.0, 0.6 + 0.3 * int(slices.loc[slices["column"] == column, "value"].nunique())),
        )
        columns.append(SliceColumnView(column=column, sets=views, figure_uri=figure))
    unmatched = _table(result, "unmatched_images")
    unused = _table(result, "unused_rows")
    return {
        "metadata_file": str(summary.get("metadata_file", "")).replace("\\", "/").rsplit("/")[-1],
        "path_column": str(summary["path_column"]),
        "alpha": number_or_nan(summary, "alpha"),
        "confidence": number_or_nan(summary, "confidence"),
        "n_images": int(number_or_nan(summary, "n_images")),
        "n_matched": int(number_or_nan(summary, "n_matched")),
        "n_unmatched": int(number_or_nan(summary, "n_unmatched")),
        "n_metadata_rows": int(number_or_nan(summary, "n_metadata_rows")),
        "n_unused_rows": int(number_or_nan(summary, "n_unused_rows")),
        "columns": tuple(columns),
        "matching": tuple(
            (
                str(r["set"]),
                int(number_or_nan(r, "n_images")),
                int(number_or_nan(r, "relpath")),
                int(number_or_nan(r, "path")),
                int(number_or_nan(r, "name")),
                int(number_or_nan(r, "none")),
            )
            for r in _records(_table(result, "matching"))
        ),
        "unmatched": tuple(
            (str(r["set"]), str(r["path"])) for r in _records(unmatched.head(MAX_LISTED))
        ),
        "unused": tuple(
            (int(number_or_nan(r, "line")), str(r["path"]))
            for r in _records(unused.head(MAX_LISTED))
        ),
        "skipped_columns": tuple(
            (str(r["column"]), str(r["reason"]))
            for r in _records(_table(result, "skipped_columns"))
        ),
    }


def slices_record(result: AnalysisResult) -> dict[str, object]:
    """Every number of the slices analysis as JSON data: ``summary``, ``tests`` (per set and
    column), ``slices`` (per set, column and value), ``matching`` (per set), and every
    ``unmatched_image``, ``unused_row`` and ``skipped_column``."""
    if result.name != "slices":
        raise ReportError(f"expected the 'slices' analysis; got {result.name!r}.")
    return {
        "summary": plain(result.summary_record()),
        "tests": plain(_table(result, "tests")),
        "slices": plain(_table(result, "slices")),
        "matching": plain(_table(result, "matching")),
        "unmatched_images": plain(_table(result, "unmatched_images")),
        "unused_rows": plain(_table(result, "unused_rows")),
        "skipped_columns": plain(_table(result, "skipped_columns")),
    }


def to_json(result: AnalysisResult) -> dict[str, object]:
    """The slices block of the report's JSON (:func:`slices_record`)."""
    return slices_record(result)


def _register() -> SectionSpec:
    """Register the section (importing this module again replaces its own spec)."""
    spec = SectionSpec(
        key="slices",
        title="Accuracy by slice",
        anchor="slices",
        template="slices.html.j2",
        build=build,
        to_json=to_json,
        order=30,
        placeholder=(
            "No slices in this report. Pass --metadata CSV (a path column plus columns such as "
            "signer, camera, background, lighting) to see accuracy per signer, camera or "
            "background, with intervals and a test of whether they differ."
        ),
    )
    return register_section(spec)


SLICES_SECTION = _register()
