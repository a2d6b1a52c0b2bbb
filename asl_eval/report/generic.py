"""Ready-made ``build`` and ``to_json`` functions for a section that is just a table: an
analysis registered with them (template ``table.html.j2``) shows its summary row and its items
as tables, and writes both to the JSON. A stage with a richer section writes its own.

Imports pandas, the analysis shape and the report's JSON and number formatting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from asl_eval.analysis import AnalysisResult
from asl_eval.report.formatting import fmt_number
from asl_eval.report.serialize import JsonValue, clean, records

__all__ = ["table_json", "table_variables"]


def _text(value: object) -> str:
    """A cell as text: floats with three decimals, NaN and None as ``'–'``.

    >>> _text(0.12345), _text(float("nan")), _text(None), _text("a<b")
    ('0.123', '–', '–', 'a<b')
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return fmt_number(value)
    return str(value)


def _rows(frame: pd.DataFrame) -> list[list[str]]:
    return [[_text(value) for value in row] for row in frame.itertuples(index=False)]


def table_variables(result: AnalysisResult) -> Mapping[str, object]:
    """The template variables of ``table.html.j2``: the summary and the items as text tables,
    and ``info["note"]`` (if any) as the section's note."""
    return {
        "note": str(result.info.get("note", "")),
        "summary_columns": [str(c) for c in result.summary.columns],
        "summary_rows": _rows(result.summary),
        "columns": [str(c) for c in result.items.columns],
        "rows": _rows(result.items),
    }


def table_json(result: AnalysisResult) -> Mapping[str, JsonValue]:
    """The JSON block: ``{"summary": {...}, "items": [...]}``."""
    return {"summary": clean(result.summary_record()), "items": records(result.items)}
