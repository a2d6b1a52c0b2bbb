"""The robustness analysis as plain JSON data, shared by ``asl-eval stress --json`` and the
report's JSON block (``sections.robustness``), so both print the same fields.

Layer: part of :mod:`asl_eval.stress`; imports pandas, numpy and the audit's JSON helper
(torch-free).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from asl_eval.analysis import AnalysisResult
from asl_eval.audit.records import plain
from asl_eval.errors import ReportError

__all__ = ["N_DESTINATIONS", "robustness_record", "robustness_table"]

N_DESTINATIONS = 50
"""How many (change, class, predicted class) error pairs the JSON keeps, most errors first."""


def robustness_table(result: AnalysisResult, key: str) -> pd.DataFrame:
    """The table ``result.info[key]``; a :class:`~asl_eval.errors.ReportError` when missing."""
    if result.name != "robustness":
        raise ReportError(f"expected the 'robustness' analysis; got {result.name!r}.")
    table = result.info.get(key)
    if not isinstance(table, pd.DataFrame):
        raise ReportError(f"The robustness analysis lacks its {key!r} table (info[{key!r}]).")
    return table


def robustness_record(result: AnalysisResult) -> dict[str, object]:
    """Every number of the sweep as JSON data (no per-image rows, no pictures).

    Keys: ``summary`` (headline numbers, the score's formula), ``parameters``, ``conditions``
    (accuracy per change × severity), ``corruptions`` (per change, with its corruption error),
    ``per_class`` (class × change × severity), ``fragile_classes``, ``error_destinations``
    (the :data:`N_DESTINATIONS` largest), ``forecast`` and ``forecast_sentences``, ``files``
    (counts by outcome) and ``excluded`` (each excluded file with its reason).
    """
    files = robustness_table(result, "files")
    sentences = result.info.get("forecast_sentences", {})
    parameters = result.info.get("parameters", {})
    excluded = files[files["status"] != "evaluated"]
    excluded = excluded[excluded["status"] != "not sampled"]
    return {
        "summary": plain(result.summary_record()),
        "parameters": plain(parameters if isinstance(parameters, Mapping) else {}),
        "conditions": plain(robustness_table(result, "conditions")),
        "corruptions": plain(robustness_table(result, "corruptions")),
        "per_class": plain(robustness_table(result, "per_class")),
        "fragile_classes": plain(robustness_table(result, "fragile_classes")),
        "error_destinations": plain(
            robustness_table(result, "error_destinations").head(N_DESTINATIONS)
        ),
        "forecast": plain(robustness_table(result, "forecast")),
        "forecast_sentences": plain(sentences if isinstance(sentences, Mapping) else {}),
        "files": {str(k): int(v) for k, v in files["status"].value_counts().sort_index().items()},
        "excluded": plain(excluded[["path", "label", "status", "reason"]]),
    }
