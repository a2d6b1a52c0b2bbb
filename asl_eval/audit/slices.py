"""Accuracy by slice: user metadata (signer, camera, background, lighting, ...) joined to the
evaluated images, with Wilson intervals per slice value and tests of whether the slices differ.

The metadata CSV is read and its rows matched to the images by :mod:`asl_eval.audit.metadata`
(:func:`read_metadata`, :func:`match_metadata`: by relative path, else resolved path, else
unique file name; that module's docstring has the rules); its names are importable from here
too.

An image that no rule matches is never dropped: its value in every column is
:data:`NO_METADATA`, it is counted (``n_unmatched``) and listed (``info["unmatched_images"]``).
A matched row with an empty cell gets the same value in that column. Rows that match no image
of any set are listed in ``info["unused_rows"]``.

:func:`slice_analysis` then computes, per set, column and value, the number of images, the
number correct and the accuracy with its Wilson interval (:func:`asl_eval.metrics.wilson_interval`),
and per set and column one test of whether accuracy differs between the values (images
without a value are shown but not tested): Fisher's exact test when there are two values, else
Pearson's chi-square test of independence on the values × (right, wrong) table
(:func:`scipy.stats.chi2_contingency`; the table's smallest expected count is reported, since
the chi-square approximation is rough below 5). Each value is also compared with the other
values of its column together (Fisher's exact test) to name the weakest slice. Both families of
p-values are Holm-adjusted over the whole analysis (every set and column;
:func:`asl_eval.metrics.holm_adjust`).

Imports numpy, pandas, scipy, the audit's :mod:`~asl_eval.audit.metadata` and the layers below;
never torch or fastai.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from asl_eval.analysis import AnalysisResult
from asl_eval.audit.metadata import (
    _SHA256,
    _SOURCE,
    MATCH_RULES,
    NO_METADATA,
    MetadataMatch,
    check_metadata,
    match_metadata,
    read_metadata,
    slice_column,
)
from asl_eval.errors import InputError, MetricError, first_few
from asl_eval.metrics import holm_adjust, wilson_interval
from asl_eval.predictions import Predictions

__all__ = [
    "MATCH_RULES",
    "NO_METADATA",
    "SLICE_PREFIX",
    "MetadataMatch",
    "match_metadata",
    "read_metadata",
    "slice_analysis",
    "slice_column",
]

SLICE_PREFIX = "slice:"
"""The items table names each image's value in column ``signer`` ``slice:signer`` (so a
metadata column can be called ``label`` or ``set`` without clashing)."""

DEFAULT_MAX_VALUES = 50
"""A column with more distinct values than this (an id, a free-text note) is not sliced."""

SLICE_COLUMNS = (
    "set", "column", "value", "tested", "n", "correct", "accuracy", "accuracy_low",
    "accuracy_high", "n_rest", "correct_rest", "accuracy_rest", "p_value",
)  # fmt: skip
TEST_COLUMNS = (
    "set", "column", "n_values", "n_images", "n_tested", "n_no_metadata", "test", "statistic",
    "dof", "p_value", "min_expected",
)  # fmt: skip


def _slice_columns(
    metadata: pd.DataFrame, path_column: str, columns: Sequence[str] | None
) -> list[str]:
    available = [c for c in metadata.columns if c != path_column]
    if columns is None:
        chosen = available
    else:
        chosen = [str(c) for c in columns]
        unknown = [c for c in chosen if c not in available]
        if unknown:
            raise InputError(
                f"--slice-by names columns the metadata does not have: {first_few(unknown)}; "
                f"its columns besides {path_column!r} are {first_few(available, limit=10)}."
            )
    if not chosen:
        raise InputError(
            f"The metadata has no column to slice by besides {path_column!r}: add columns "
            "such as signer, camera, background or lighting."
        )
    return list(dict.fromkeys(chosen))


def _column_test(table: np.ndarray) -> tuple[str, float, float, float, float]:
    """``(test, statistic, dof, p_value, min_expected)`` for a values × (right, wrong) table.

    Two values: Fisher's exact test (statistic: the odds ratio, dof NaN). More: Pearson's
    chi-square test of independence (no continuity correction applies above one degree of
    freedom). No test (NaN) with fewer than two values or when every image is right, or every
    one wrong (the outcome does not vary, so the values cannot differ).
    """
    from scipy.stats import chi2_contingency, fisher_exact

    nan = math.nan
    if table.shape[0] < 2:
        return "none: fewer than two values", nan, nan, nan, nan
    if (table.sum(axis=0) == 0).any():
        return "none: the outcome does not vary", nan, nan, nan, nan
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    if table.shape[0] == 2:
        result = fisher_exact(table)
        return "fisher", float(result.statistic), nan, float(result.pvalue), float(expected.min())
    chi = chi2_contingency(table, correction=False)
    return (
        "chi-square",
        float(chi.statistic),
        float(chi.dof),
        float(chi.pvalue),
        float(expected.min()),
    )


def _value_vs_rest(correct: int, n: int, correct_rest: int, n_rest: int) -> float:
    """Fisher's exact two-sided p-value of one value against the other values together."""
    from scipy.stats import fisher_exact

    if n == 0 or n_rest == 0:
        return math.nan
    table = [[correct, n - correct], [correct_rest, n_rest - correct_rest]]
    return float(fisher_exact(table).pvalue)


def _set_tables(
    name: str,
    correct: np.ndarray,
    values_by_column: Mapping[str, np.ndarray],
    confidence: float,
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The per-value rows and the per-column test rows of one set (p-values not adjusted)."""
    slice_rows: list[dict[str, object]] = []
    test_rows: list[dict[str, object]] = []
    for column, values in values_by_column.items():
        names = sorted(set(values.tolist()) - {NO_METADATA}, key=str)
        tested = values != NO_METADATA
        n_tested, correct_tested = int(tested.sum()), int(correct[tested].sum())
        counts = []
        for value in [*names, NO_METADATA]:
            member = values == value
            n = int(member.sum())
            if value == NO_METADATA and n == 0:
                continue
            right = int(correct[member].sum())
            low, high = wilson_interval(right, n, confidence=confidence)
            is_tested = value != NO_METADATA
            n_rest = n_tested - n if is_tested else 0
            right_rest = correct_tested - right if is_tested else 0
            slice_rows.append(
                {
                    "set": name,
                    "column": column,
                    "value": value,
                    "tested": is_tested,
                    "n": n,
                    "correct": right,
                    "accuracy": right / n if n else math.nan,
                    "accuracy_low": low,
                    "accuracy_high": high,
                    "n_rest": n_rest,
                    "correct_rest": right_rest,
                    "accuracy_rest": right_rest / n_rest if n_rest else math.nan,
                    "p_value": (
                        _value_vs_rest(right, n, right_rest, n_rest)
                        if is_tested and len(names) >= 2
                        else math.nan
                    ),
                }
            )
            if is_tested:
                counts.append((right, n - right))
        table = np.array(counts, dtype=np.int64).reshape(-1, 2)
        test, statistic, dof, p_value, min_expected = _column_test(table)
        test_rows.append(
            {
                "set": name,
                "column": column,
                "n_values": len(names),
                "n_images": len(values),
                "n_tested": n_tested,
                "n_no_metadata": int((~tested).sum()),
                "test": test,
                "statistic": statistic,
                "dof": dof,
                "p_value": p_value,
                "min_expected": min_expected,
            }
        )
    return slice_rows, test_rows


def _weakest(slices: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
    """Each test row with its weakest value: the tested value of lowest accuracy (ties: the
    smaller Holm p, then the name), and whether it is significantly below the rest."""
    weakest_value, weakest_accuracy, weakest_p, weakest_significant = [], [], [], []
    for row in tests.itertuples(index=False):
        part = slices[
            (slices["set"] == row.set) & (slices["column"] == row.column) & slices["tested"]
        ]
        part = part[part["n"] > 0].sort_values(
            ["accuracy", "p_adjusted", "value"], kind="stable", na_position="last"
        )
        if part.empty:
            weakest_value.append("")
            weakest_accuracy.append(math.nan)
            weakest_p.append(math.nan)
            weakest_significant.append(False)
            continue
        first = part.iloc[0]
        weakest_value.append(str(first["value"]))
        weakest_accuracy.append(float(first["accuracy"]))
        weakest_p.append(float(first["p_adjusted"]))
        weakest_significant.append(bool(first["significant"]))
    return tests.assign(
        weakest_value=weakest_value,
        weakest_accuracy=weakest_accuracy,
        weakest_p_adjusted=weakest_p,
        weakest_significant=weakest_significant,
    )


def _too_many_values(
    metadata: pd.DataFrame, columns: Sequence[str], max_values: int, explicit: bool
) -> tuple[list[str], list[dict[str, object]]]:
    kept: list[str] = []
    skipped: list[dict[str, object]] = []
    for column in columns:
        n_values = len({str(v).strip() for v in metadata[column]} - {""})
        if n_values > max_values and not explicit:
            skipped.append(
                {
                    "column": column,
                    "reason": f"{n_values} distinct values (more than {max_values}): an id or "
                    "free text, not a slice; name it with --slice-by to slice by it anyway",
                }
            )
        else:
            kept.append(column)
    return kept, skipped


def slice_analysis(
    sets: Sequence[Predictions],
    metadata: pd.DataFrame,
    *,
    path_column: str = "path",
    columns: Sequence[str] | None = None,
    alpha: float = 0.05,
    max_values: int = DEFAULT_MAX_VALUES,
) -> AnalysisResult:
    """Accuracy by metadata slice for each evaluated set, with tests of whether slices differ.

    Parameters
    ----------
    sets
        The evaluated sets (their names must differ).
    metadata
        :func:`read_metadata`'s table (or any DataFrame with ``path_column``).
    path_column
        The column naming each row's image.
    columns
        The columns to slice by; None: every other column with at most ``max_values``
        distinct values (the others are listed in ``info["skipped_columns"]``).
    alpha
        Family-wise error rate of the Holm-adjusted tests; intervals cover ``1 - alpha``.
    max_values
        See ``columns``.

    Returns
    -------
    AnalysisResult
        Named ``"slices"``. ``items``: one row per evaluated image (``set``, ``path``,
        ``relpath``, ``label``, ``predicted``, ``correct``, ``match`` (the rule, or ``"none"``),
        ``metadata_row`` (-1: none) and one column per slice column, ``slice:<column>``).
        ``summary``: counts, the number of significant tests and the parameters. ``info``:
        ``slices`` (per set, column and value: ``n``, ``correct``, ``accuracy``, its interval,
        the rest of the column, the value-vs-rest ``p_value``, ``p_adjusted`` and
        ``significant`` (below the rest after Holm)), ``tests`` (per set and column: the test,
        its statistic, ``p_value``, ``p_adjusted``, ``significant`` and the weakest value),
        ``matching`` (per set: images matched by each rule), ``unmatched_images``,
        ``unused_rows``, ``skipped_columns``, ``parameters``.

    Examples
    --------
    >>> import numpy as np
    >>> p = Predictions.from_labels(list("AABB"), np.eye(2)[[0, 1, 1, 1]], ["A", "B"],
    ...                             paths=["a1.jpg", "a2.jpg", "b1.jpg", "b2.jpg"])
    >>> meta = pd.DataFrame({"path": ["a1.jpg", "a2.jpg", "b1.jpg", "b2.jpg"],
    ...                      "signer": ["1", "2", "2", "1"]})
    >>> result = slice_analysis([p], meta)
    >>> result.info["slices"][["value", "n", "correct"]].values.tolist()
    [['1', 2, 2], ['2', 2, 1]]
    """
    if not 0 < alpha < 1:
        raise MetricError(f"alpha must lie strictly between 0 and 1; got {alpha}.")
    if not sets:
        raise MetricError("slice_analysis needs at least one evaluated set.")
    names = [s.name for s in sets]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise MetricError(f"evaluation set names must be unique; repeated: {repeated}.")
    metadata = check_metadata(metadata, path_column=path_column).pipe(
        lambda frame: _keep_attrs(frame, metadata)
    )
    chosen = _slice_columns(metadata, path_column, columns)
    chosen, skipped = _too_many_values(metadata, chosen, max_values, columns is not None)
    if not chosen:
        raise InputError(
            "Every metadata column has too many distinct values to slice by: "
            f"{first_few([str(s['column']) for s in skipped])}. Name one with --slice-by."
        )
    confidence = 1.0 - alpha
    item_parts: list[pd.DataFrame] = []
    slice_rows: list[dict[str, object]] = []
    test_rows: list[dict[str, object]] = []
    matching_rows: list[dict[str, object]] = []
    used = np.zeros(len(metadata), dtype=bool)
    for predictions in sets:
        found = match_metadata(
            predictions.paths, metadata, relpaths=predictions.relpaths, path_column=path_column
        )
        used[found.rows[found.rows >= 0]] = True
        correct = predictions.y_true == predictions.y_pred
        values = {column: slice_column(metadata, found, column) for column in chosen}
        item_parts.append(_items(predictions, found, correct, values))
        set_slices, set_tests = _set_tables(predictions.name, correct, values, confidence)
        slice_rows += set_slices
        test_rows += set_tests
        matching_rows.append(
            {"set": predictions.name, "n_images": predictions.n_images, **found.counts()}
        )
    slices, tests = _adjusted(
        pd.DataFrame(slice_rows, columns=list(SLICE_COLUMNS)),
        pd.DataFrame(test_rows, columns=list(TEST_COLUMNS)),
        alpha,
    )
    items = pd.concat(item_parts, ignore_index=True)
    unmatched = items.loc[items["match"] == "none", ["set", "path", "relpath"]].reset_index(
        drop=True
    )
    unused = pd.DataFrame(
        {
            "line": np.flatnonzero(~used) + 2,
            "path": metadata[path_column].to_numpy(dtype=object)[~used],
        }
    )
    # A set the CSV does not cover at all (often the in-domain split) is no surprise and is
    # recorded in info["matching"]; a set it covers only in part may be a typo: warn.
    partly = unmatched[unmatched["set"].isin(set(items.loc[items["match"] != "none", "set"]))]
    if len(partly):
        warnings.warn(
            f"{len(partly)} of {len(items)} evaluated images have no metadata row in sets the "
            f"metadata otherwise covers ({first_few([Path(p).name for p in partly['path']])}); "
            f"they form the slice {NO_METADATA!r}.",
            UserWarning,
            stacklevel=2,
        )
    parameters: dict[str, object] = {
        "path_column": path_column,
        "columns": list(chosen),
        "alpha": alpha,
        "confidence": confidence,
        "max_values": max_values,
        "match_order": "relpath, then resolved path, then unique file name",
        "column_test": "Fisher's exact test for two values, else Pearson's chi-square test",
        "slice_test": "Fisher's exact test of each value against the rest of its column",
        "adjustment": "Holm over every set and column",
        "metadata_file": str(metadata.attrs.get(_SOURCE, "")),
        "metadata_sha256": str(metadata.attrs.get(_SHA256, "")),
    }
    summary = pd.DataFrame(
        [
            {
                "n_sets": len(sets),
                "n_images": len(items),
                "n_matched": int((items["match"] != "none").sum()),
                "n_unmatched": len(unmatched),
                "n_metadata_rows": len(metadata),
                "n_unused_rows": len(unused),
                "n_columns": len(chosen),
                "n_tests": int(tests["p_value"].notna().sum()),
                "n_significant_columns": int(tests["significant"].sum()),
                "n_significant_slices": int(slices["significant"].sum()),
                **{k: v for k, v in parameters.items() if not isinstance(v, list)},
            }
        ]
    )
    info: dict[str, object] = {
        "slices": slices,
        "tests": tests,
        "matching": pd.DataFrame(matching_rows),
        "unmatched_images": unmatched,
        "unused_rows": unused,
        "skipped_columns": pd.DataFrame(skipped, columns=["column", "reason"]),
        "parameters": parameters,
    }
    info = {k: _text_as_object(v) if isinstance(v, pd.DataFrame) else v for k, v in info.items()}
    return AnalysisResult(
        name="slices", items=_text_as_object(items), summary=_text_as_object(summary), info=info
    )


def _text_as_object(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as ``object`` (pandas 3 infers its ``str`` dtype), the dtype the report's
    path redaction (:mod:`asl_eval.report.sharing`) rewrites."""
    text = [c for c in frame.columns if pd.api.types.is_string_dtype(frame[c].dtype)]
    return frame.astype(dict.fromkeys(text, object)) if text else frame


def _keep_attrs(frame: pd.DataFrame, original: pd.DataFrame) -> pd.DataFrame:
    frame.attrs.update(original.attrs)
    return frame


def _items(
    predictions: Predictions,
    found: MetadataMatch,
    correct: np.ndarray,
    values: Mapping[str, np.ndarray],
) -> pd.DataFrame:
    n = predictions.n_images
    fixed = pd.DataFrame(
        {
            "set": [predictions.name] * n,
            "path": list(predictions.paths),
            "relpath": list(predictions.relpaths) or [""] * n,
            "label": predictions.labels_true.astype(str),
            "predicted": predictions.labels_pred.astype(str),
            "correct": correct.astype(bool),
            "match": list(found.rules),
            "metadata_row": found.rows,
        }
    )
    return fixed.assign(**{f"{SLICE_PREFIX}{column}": array for column, array in values.items()})


def _adjusted(
    slices: pd.DataFrame, tests: pd.DataFrame, alpha: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Holm over every value-vs-rest test and, separately, over every column test.

    A column with two tested values has one value-vs-rest table seen from both sides (the
    same Fisher test): it enters the family once, and both values get its adjusted p-value.
    """
    p_values = slices["p_value"].to_numpy(dtype=np.float64).copy()
    tested = slices["tested"].astype(bool) & slices["p_value"].notna()
    keys = list(zip(slices["set"], slices["column"], strict=True))
    pairs: dict[tuple[object, object], list[int]] = {}
    for position, (key, is_tested) in enumerate(zip(keys, tested, strict=True)):
        if is_tested:
            pairs.setdefault(key, []).append(position)
    mirrors = {rows[1]: rows[0] for rows in pairs.values() if len(rows) == 2}
    p_values[list(mirrors)] = np.nan
    adjusted = holm_adjust(p_values)
    for mirror, first in mirrors.items():
        adjusted[mirror] = adjusted[first]
    slices = slices.assign(p_adjusted=adjusted)
    below = slices["accuracy"] < slices["accuracy_rest"]
    slices["significant"] = (slices["p_adjusted"] < alpha) & below
    tests = tests.assign(p_adjusted=holm_adjust(tests["p_value"].to_numpy(dtype=np.float64)))
    tests["significant"] = tests["p_adjusted"] < alpha
    return slices, _weakest(slices, tests)
