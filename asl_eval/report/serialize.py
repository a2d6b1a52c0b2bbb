"""The report's JSON: every number, in a versioned schema (``schema/report.schema.json``,
documented in docs/report.md).

The same context always gives the same bytes apart from ``generated_at``: keys are sorted,
floats are rounded to 10 significant digits, and NaN becomes ``null``. Any change to the shape
of the JSON increases :data:`SCHEMA_VERSION` (see :mod:`asl_eval.report.reading`).

Imports pandas, the report's dataclasses and its section registry.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING

import pandas as pd

from asl_eval.analysis import JsonValue, json_value
from asl_eval.report.sections import section_blocks
from asl_eval.report.tables import confused_pairs_by_loss

if TYPE_CHECKING:
    from asl_eval.report.data import Comparison, ReportContext, SetResult

__all__ = [
    "N_TOP_LOSSES",
    "SCHEMA",
    "SCHEMA_VERSION",
    "JsonValue",
    "clean",
    "records",
    "render_json",
    "report_json",
]

SCHEMA = "asl-eval/report"
SCHEMA_VERSION = 4
"""Version 4: ``model.engine`` names the engine and its options; each set's ``content``
(``n_hashed``, ``digest``) identifies its images by their SHA-256 and relative paths (the
predictions CSV gains ``relpath`` and ``sha256`` columns).
Version 3: ``sharing`` says what the report left out (``redact_paths``, ``images``).
Version 2: the sets' headline numbers carry the names of
:meth:`asl_eval.metrics.Evaluation.summary`, and ``sections`` holds the block of each
registered analysis. :func:`asl_eval.report.read_report_json` reads versions 1 to 3 too."""
N_TOP_LOSSES = 24
"""How many of the highest-loss images each set lists in the JSON."""
_SIGNIFICANT_DIGITS = 10
"""The significant digits every float of the JSON is rounded to."""


def clean(value: object) -> JsonValue:
    """Convert numpy/pandas scalars and containers to JSON values (NaN and inf -> None), floats
    rounded to 10 significant digits (:func:`asl_eval.analysis.json_value`). The analyses'
    records (:func:`asl_eval.audit.records.plain`) keep full precision for the commands'
    ``--json``; the report passes them through this rounding too.

    >>> import numpy as np
    >>> clean({"a": np.float64("nan"), "b": (np.int64(2), 0.1 + 0.2)})
    {'a': None, 'b': [2, 0.3]}
    """
    return json_value(value, digits=_SIGNIFICANT_DIGITS)


def records(frame: pd.DataFrame, *, index: str | None = None) -> list[JsonValue]:
    """A DataFrame as a list of row objects (the index as field ``index`` when named)."""
    if index is not None:
        frame = frame.rename_axis(index).reset_index()
    return [clean(row) for row in frame.to_dict(orient="records")]


def _headline_numbers(result: SetResult) -> dict[str, JsonValue]:
    """The set's headline numbers, named as :meth:`metrics.Evaluation.summary` names them
    (the top-k accuracy as ``top_k`` and ``top_k_accuracy``, so the keys never vary)."""
    e = result.evaluation
    return {
        "n_images": e.overall.n,
        "accuracy": clean(e.overall.accuracy),
        "accuracy_ci_low": clean(e.overall.ci_low),
        "accuracy_ci_high": clean(e.overall.ci_high),
        "error_rate": clean(e.overall.error_rate),
        "balanced_accuracy": clean(e.balanced_accuracy),
        "macro_f1": clean(e.macro_f1),
        "macro_f1_ci_low": clean(e.macro_f1_ci[0]),
        "macro_f1_ci_high": clean(e.macro_f1_ci[1]),
        "n_resamples": e.n_resamples,
        "seed": e.seed,
        "top_k": e.top_k,
        "top_k_accuracy": clean(e.top_k_accuracy),
        "expected_calibration_error": clean(e.ece),
        "brier_score": clean(e.brier),
        "log_loss": clean(e.log_loss),
    }


def _set_json(result: SetResult) -> dict[str, JsonValue]:
    e = result.evaluation
    per_class = e.per_class.join(e.classification[["precision", "recall", "f1"]], how="left")
    return {
        "name": result.name,
        "role": result.role,
        "source": result.source,
        **_headline_numbers(result),
        "per_class": records(per_class, index="class"),
        "averages": records(e.classification.loc[["macro avg", "weighted avg"]], index="average"),
        "confusion_matrix": {
            "classes": list(e.confusion.columns.astype(str)),
            "counts": clean(e.confusion.to_numpy()),
        },
        "most_confused": records(
            confused_pairs_by_loss(e.confused_pairs, e.losses).drop(columns="loss")
        ),
        "reliability": records(e.reliability),
        "top_losses": records(e.losses.head(N_TOP_LOSSES)),
        "ledger": clean(result.ledger),
        "content": clean(result.content),
        "not_evaluated": [clean(asdict(row)) for row in result.not_evaluated],
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
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "generated_at": context.generated_at,
        "title": context.title,
        "command": context.command,
        "sharing": clean(context.sharing.to_json()),
        "model": {
            "path": context.model.path,
            "sha256": context.model.sha256,
            "arch": context.model.arch,
            "input_size": context.model.input_size,
            "classes": list(context.model.classes),
            "engine": clean(dict(context.model.engine)),
        },
        "versions": clean(context.model.versions),
        "headline": context.headline,
        "sets": [_set_json(result) for result in context.sets],
        "comparisons": [_comparison_json(c) for c in context.comparisons],
        "sections": clean(section_blocks(context.sections)),
    }


def render_json(context: ReportContext) -> str:
    """The JSON text: sorted keys, two-space indent, no NaN."""
    return json.dumps(report_json(context), indent=2, sort_keys=True, allow_nan=False) + "\n"
