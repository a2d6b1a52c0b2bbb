"""The report's JSON: every number, in a versioned schema (documented in docs/report.md).

The same context always gives the same bytes apart from ``generated_at``: keys are sorted,
floats are rounded to 10 significant digits, and NaN becomes ``null``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from asl_eval.report.context import Comparison, ReportContext, SetResult

SCHEMA = "asl-eval/report"
SCHEMA_VERSION = 1
N_TOP_LOSSES = 24
"""How many of the highest-loss images each set lists in the JSON."""

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]


def clean(value: object) -> JsonValue:
    """Convert numpy/pandas scalars and containers to JSON values (NaN and inf -> None).

    >>> clean({"a": np.float64("nan"), "b": (np.int64(2), 0.1 + 0.2)})
    {'a': None, 'b': [2, 0.3]}
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return float(f"{number:.10g}") if math.isfinite(number) else None
    if isinstance(value, Mapping):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [clean(v) for v in value]
    if isinstance(value, pd.DataFrame):
        return records(value)
    return str(value)


def records(frame: pd.DataFrame, *, index: str | None = None) -> list[JsonValue]:
    """A DataFrame as a list of row objects (the index as field ``index`` when named)."""
    if index is not None:
        frame = frame.rename_axis(index).reset_index()
    return [clean(row) for row in frame.to_dict(orient="records")]


def _set_json(result: SetResult) -> dict[str, JsonValue]:
    per_class = result.per_class.join(
        result.classification[["precision", "recall", "f1"]], how="left"
    )
    return {
        "name": result.name,
        "role": result.role,
        "source": result.source,
        "n_images": result.n_images,
        "accuracy": clean(result.accuracy),
        "accuracy_ci": clean(result.accuracy_ci),
        "error_rate": clean(result.error_rate),
        "macro_f1": clean(result.macro_f1),
        "macro_f1_ci": clean(result.macro_f1_ci),
        "top5_accuracy": clean(result.top5_accuracy),
        "expected_calibration_error": clean(result.ece),
        "brier_score": clean(result.brier_score),
        "log_loss": clean(result.log_loss),
        "per_class": records(per_class, index="class"),
        "averages": records(
            result.classification.loc[["macro avg", "weighted avg"]], index="average"
        ),
        "confusion_matrix": {
            "classes": list(result.confusion.columns.astype(str)),
            "counts": clean(result.confusion.to_numpy()),
        },
        "most_confused": records(result.most_confused),
        "reliability": records(result.reliability),
        "top_losses": records(result.losses.head(N_TOP_LOSSES)),
        "ledger": clean(result.ledger),
        "not_evaluated": records(result.ledger_rows),
    }


def _comparison_json(comparison: Comparison) -> dict[str, JsonValue]:
    return {
        "in_domain": comparison.in_domain,
        "out_of_domain": comparison.out_of_domain,
        "n_significant": comparison.n_significant,
        "n_compared": comparison.n_compared,
        "per_class": records(comparison.table, index="class"),
    }


def report_json(context: ReportContext) -> dict[str, JsonValue]:
    """The whole report as a JSON-ready dict."""
    extra = {name: section.summary() for name, section in context.sections.items()}
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "generated_at": context.generated_at,
        "title": context.title,
        "command": context.command,
        "model": {
            "path": context.model.path,
            "sha256": context.model.sha256,
            "arch": context.model.arch,
            "input_size": context.model.input_size,
            "classes": list(context.model.classes),
        },
        "versions": clean(context.model.versions),
        "headline": context.headline,
        "sets": [_set_json(result) for result in context.sets],
        "comparisons": [_comparison_json(c) for c in context.comparisons],
        "sections": clean(extra),
    }


def render_json(context: ReportContext) -> str:
    """The JSON text: sorted keys, two-space indent, no NaN."""
    return json.dumps(report_json(context), indent=2, sort_keys=True, allow_nan=False) + "\n"
