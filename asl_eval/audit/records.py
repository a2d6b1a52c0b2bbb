"""The leakage analysis as plain JSON data, shared by ``asl-eval audit --json`` and the report's
JSON block (``sections.leakage``), so both print the same fields.

Imports pandas only.
"""

from __future__ import annotations

import pandas as pd

from asl_eval.analysis import AnalysisResult, JsonValue, json_value
from asl_eval.errors import ReportError

__all__ = ["NEAR_DUPLICATE_FIELDS", "info_table", "leakage_record", "plain"]

NEAR_DUPLICATE_FIELDS = (
    "set",
    "path",
    "relpath",
    "label",
    "nearest_train",
    "nearest_label",
    "phash_distance",
    "dhash_distance",
    "phash_threshold",
    "dhash_threshold",
    "exact_duplicate",
    "group",
    "correct",
)
"""The fields of each flagged image in :func:`leakage_record`."""

_SKIPPED_COLUMNS = ("image_png", "train_png")


def plain(value: object) -> JsonValue:
    """``value`` as JSON data with its floats unrounded: numpy scalars as Python numbers, NaN
    and infinities as None (:func:`asl_eval.analysis.json_value`).

    Every analysis's record (``asl-eval audit --json``, ``asl-eval stress --json``) keeps full
    precision; the report's JSON rounds the same record afterwards
    (:func:`asl_eval.report.serialize.clean`).

    >>> import numpy as np
    >>> plain({"a": np.float64("nan"), "b": [np.int64(2), np.bool_(True)]})
    {'a': None, 'b': [2, True]}
    """
    return json_value(value)


def info_table(result: AnalysisResult, key: str) -> pd.DataFrame:
    """The table ``result.info[key]``; a :class:`~asl_eval.errors.ReportError` when missing."""
    table = result.info.get(key)
    if not isinstance(table, pd.DataFrame):
        raise ReportError(f"The leakage analysis lacks its {key!r} table (info[{key!r}]).")
    return table


def leakage_record(result: AnalysisResult) -> dict[str, object]:
    """Every number of the leakage analysis, and every flagged image, as JSON data (no images).

    Keys: ``summary`` (the validation set's headline numbers and the parameters), ``sets``,
    ``classes``, ``thresholds``, ``near_duplicates`` (every query image with a near-duplicate,
    closest first), ``closest_pairs`` (the gallery's pairs, without thumbnails), ``excluded``.
    """
    if result.name != "leakage":
        raise ReportError(f"expected the 'leakage' analysis; got {result.name!r}.")
    items = result.items
    flagged = items[items["near_duplicate"].astype(bool)].sort_values(
        ["set", "phash_distance", "dhash_distance"], kind="stable"
    )
    pairs = info_table(result, "pairs")
    return {
        "summary": plain(result.summary_record()),
        "sets": plain(info_table(result, "sets")),
        "classes": plain(info_table(result, "classes")),
        "thresholds": plain(info_table(result, "thresholds")),
        "near_duplicates": plain(flagged[list(NEAR_DUPLICATE_FIELDS)]),
        "closest_pairs": plain(pairs.drop(columns=list(_SKIPPED_COLUMNS), errors="ignore")),
        "excluded": plain(info_table(result, "excluded")),
    }
