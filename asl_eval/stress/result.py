"""The ``"robustness"`` analysis assembled from a sweep's outcomes table: every table of
:mod:`asl_eval.stress.summary`, the one-row summary (:func:`build_result`), and the forecast
check against out-of-domain sets' per-class accuracy (:func:`add_forecasts`).

Layer: part of :mod:`asl_eval.stress`; numpy, pandas and the package's torch-free modules only,
so a saved outcomes table can be re-analysed without the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from asl_eval.analysis import AnalysisResult
from asl_eval.errors import InputError
from asl_eval.metrics import wilson_interval
from asl_eval.predictions import Predictions
from asl_eval.stress.catalogue import CLEAN
from asl_eval.stress.summary import (
    SCORE_FORMULA,
    condition_table,
    corruption_table,
    error_destinations,
    forecast_sentence,
    forecast_table,
    fragile_classes,
    mean_corruption_error,
    per_class_table,
)

__all__ = ["ANALYSIS_NAME", "FILE_COLUMNS", "add_forecasts", "build_result", "ood_class_accuracy"]

ANALYSIS_NAME = "robustness"
"""The sweep's :attr:`AnalysisResult.name` (the report section's and the findings' key)."""

FILE_COLUMNS = ("path", "label", "status", "reason")
"""The columns of ``info["files"]``: every file given to the sweep and what became of it."""


def build_result(
    items: pd.DataFrame,
    *,
    classes: Sequence[str],
    parameters: Mapping[str, object],
    files: pd.DataFrame | None = None,
    foreground: pd.DataFrame | None = None,
    set_name: str = "",
) -> AnalysisResult:
    """The ``"robustness"`` analysis from an outcomes table (:data:`ITEM_COLUMNS`): every table
    of :mod:`asl_eval.stress.summary` and the one-row summary. No forecast yet
    (:func:`add_forecasts`)."""
    conditions = condition_table(items)
    per_class = per_class_table(items, classes)
    by_corruption = corruption_table(conditions)
    fragile = fragile_classes(per_class)
    clean = conditions[conditions["corruption"] == CLEAN]
    n_clean = int(clean["n_images"].iloc[0]) if len(clean) else 0
    k_clean = int(clean["n_correct"].iloc[0]) if len(clean) else 0
    low, high = wilson_interval(k_clean, n_clean)
    preserving = by_corruption[by_corruption["label_preserving"].astype(bool)]
    worst = (
        preserving.sort_values("corruption_error", ascending=False, kind="stable").iloc[0]
        if len(preserving)
        else None
    )
    fragile_first = fragile.dropna(subset=["accuracy_drop"])
    summary = pd.DataFrame(
        [
            {
                "set": set_name,
                "n_images": n_clean,
                "n_classes": int(
                    (per_class[per_class["corruption"] == CLEAN]["n_images"] > 0).sum()
                ),
                "n_corruptions": len(by_corruption),
                "severities": ",".join(str(s) for s in parameters.get("severities", [])),  # type: ignore[attr-defined]
                "n_per_class": parameters.get("n_per_class"),
                "seed": parameters.get("seed"),
                "clean_accuracy": k_clean / n_clean if n_clean else float("nan"),
                "clean_accuracy_low": low,
                "clean_accuracy_high": high,
                "mean_corrupted_accuracy": float(preserving["mean_accuracy"].mean())
                if len(preserving)
                else float("nan"),
                "mean_corruption_error": mean_corruption_error(by_corruption),
                "worst_corruption": str(worst["corruption"]) if worst is not None else "",
                "worst_corruption_error": float(worst["corruption_error"])
                if worst is not None
                else float("nan"),
                "most_fragile_class": str(fragile_first["class"].iloc[0])
                if len(fragile_first)
                else "",
                "score_formula": SCORE_FORMULA,
                "best_forecast": "",
            }
        ]
    )
    info: dict[str, object] = {
        "conditions": conditions,
        "per_class": per_class,
        "corruptions": by_corruption,
        "fragile_classes": fragile,
        "error_destinations": error_destinations(items),
        "forecast": forecast_table(per_class, {}, set_name="").iloc[0:0],
        "forecast_sentences": {},
        "files": files if files is not None else pd.DataFrame(columns=list(FILE_COLUMNS)),
        "foreground": foreground
        if foreground is not None
        else pd.DataFrame(columns=["path", "foreground_share"]),
        "classes": list(classes),
        "parameters": dict(parameters),
    }
    return AnalysisResult(ANALYSIS_NAME, items, summary, info)


def ood_class_accuracy(predictions: Predictions) -> pd.Series:
    """A set's accuracy per class (classes with images only), indexed by class name."""
    y_true = np.asarray(predictions.y_true)
    correct = np.asarray(predictions.y_pred) == y_true
    values = {}
    for i, name in enumerate(predictions.classes):
        chosen = y_true == i
        if chosen.any():
            values[str(name)] = float(correct[chosen].mean())
    return pd.Series(values, dtype=np.float64)


def add_forecasts(
    result: AnalysisResult, tests: Mapping[str, pd.Series | Mapping[str, float]]
) -> AnalysisResult:
    """``result`` with the forecast check against each out-of-domain set's per-class accuracy
    (``{set name: accuracy by class}``): ``info["forecast"]`` (every set × change, ranked by
    Spearman's ρ), ``info["forecast_sentences"]`` and the summary's ``best_forecast``."""
    per_class = result.info["per_class"]
    if not isinstance(per_class, pd.DataFrame):
        raise InputError("the robustness result has no per-class table")
    tables = [
        forecast_table(per_class, accuracy, set_name=name) for name, accuracy in tests.items()
    ]
    forecast = (
        pd.concat(tables, ignore_index=True)
        if tables
        else forecast_table(per_class, {}, set_name="").iloc[0:0]
    )
    sentences = {table["set"].iloc[0]: forecast_sentence(table) for table in tables if len(table)}
    summary = result.summary.copy()
    usable = forecast[forecast["label_preserving"].astype(bool) & forecast["rho"].notna()]
    if len(usable):
        best = usable.sort_values("rho", ascending=False, kind="stable").iloc[0]
        summary.loc[summary.index[0], "best_forecast"] = str(best["corruption"])
    info = {**result.info, "forecast": forecast, "forecast_sentences": sentences}
    return AnalysisResult(result.name, result.items, summary, info)
