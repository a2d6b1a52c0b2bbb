"""The report's robustness section: how the ``"robustness"`` analysis
(:func:`asl_eval.stress.stress_sweep`, :func:`asl_eval.stress.robustness_for_report`) becomes
template variables and a JSON block.

Registered with the section registry when this module is imported. ``build`` picks every number
the template prints and draws the class × change heatmap and the severity curves, so
``robustness.html.j2`` only loops and prints; ``to_json`` is
:func:`asl_eval.stress.records.robustness_record` (numbers only, no per-image rows).

Imports pandas, the stress package's torch-free modules (catalogue, plots, records, summary),
the registry and the report's figure encoding; never torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from asl_eval.analysis import AnalysisResult, number_or_nan
from asl_eval.report.figures import draw
from asl_eval.report.registry import SectionSpec, register_section
from asl_eval.stress.catalogue import CATALOGUE
from asl_eval.stress.plots import plot_robustness_heatmap, plot_severity_curves
from asl_eval.stress.records import robustness_record, robustness_table

__all__ = [
    "N_DESTINATIONS_SHOWN",
    "N_FRAGILE_SHOWN",
    "ROBUSTNESS_SECTION",
    "CorruptionView",
    "DestinationView",
    "ForecastView",
    "FragileView",
    "build",
    "to_json",
]

N_FRAGILE_SHOWN = 8
"""The most fragile classes the section lists."""
N_DESTINATIONS_SHOWN = 12
"""The largest (change, true class, predicted class) error pairs the section lists."""
N_FORECAST_SHOWN = 5
"""The best-correlated changes listed per out-of-domain set."""


@dataclass(frozen=True)
class CorruptionView:
    """One change's row."""

    name: str
    family: str
    description: str
    label_preserving: bool
    severities: str
    mean_accuracy: float
    corruption_error: float


@dataclass(frozen=True)
class FragileView:
    """One of the classes whose accuracy falls most."""

    name: str
    clean_accuracy: float
    corrupted_accuracy: float
    accuracy_drop: float
    worst_corruption: str
    worst_accuracy: float


@dataclass(frozen=True)
class DestinationView:
    """Where one change sends one class's errors."""

    corruption: str
    true_class: str
    predicted: str
    n_errors: int
    n_new: int
    n_images: int
    share: float


@dataclass(frozen=True)
class ForecastView:
    """One out-of-domain set: the sentence and the best-correlated changes."""

    set_name: str
    sentence: str
    rows: tuple[tuple[str, bool, float, float, int], ...]


def _records(table: pd.DataFrame) -> list[dict[object, object]]:
    return [dict(row) for row in table.to_dict(orient="records")]


def _forecasts(result: AnalysisResult) -> tuple[ForecastView, ...]:
    table = robustness_table(result, "forecast")
    sentences = result.info.get("forecast_sentences", {})
    views = []
    for set_name, rows in table.groupby("set", sort=False):
        shown = rows.head(N_FORECAST_SHOWN)
        views.append(
            ForecastView(
                set_name=str(set_name),
                sentence=str(sentences.get(set_name, "")) if isinstance(sentences, dict) else "",
                rows=tuple(
                    (
                        str(r["corruption"]),
                        bool(r["label_preserving"]),
                        number_or_nan(r, "rho"),
                        number_or_nan(r, "p_holm"),
                        int(number_or_nan(r, "n_classes")),
                    )
                    for r in _records(shown)
                ),
            )
        )
    return tuple(views)


def build(result: AnalysisResult) -> dict[str, object]:
    """The template variables of the robustness section (see ``robustness.html.j2``)."""
    summary = result.summary_record()
    per_class = robustness_table(result, "per_class")
    conditions = robustness_table(result, "conditions")
    classes = result.info.get("classes")
    order = [str(c) for c in classes] if isinstance(classes, list) else None
    n_rows = len(order) if order else per_class["class"].nunique()
    n_columns = conditions["corruption"].nunique()
    heatmap = draw(
        lambda ax: plot_robustness_heatmap(per_class, classes=order, ax=ax),
        size=(min(12.0, 0.55 * n_columns + 2.8), min(11.0, 0.26 * n_rows + 2.0)),
    )
    curves = draw(lambda ax: plot_severity_curves(conditions, ax=ax), size=(6.5, 3.8))
    corruptions = tuple(
        CorruptionView(
            name=str(r["corruption"]),
            family=str(r["family"]),
            description=CATALOGUE[str(r["corruption"])].description
            if str(r["corruption"]) in CATALOGUE
            else "",
            label_preserving=bool(r["label_preserving"]),
            severities=str(r["severities"]),
            mean_accuracy=number_or_nan(r, "mean_accuracy"),
            corruption_error=number_or_nan(r, "corruption_error"),
        )
        for r in _records(robustness_table(result, "corruptions"))
    )
    fragile = tuple(
        FragileView(
            name=str(r["class"]),
            clean_accuracy=number_or_nan(r, "clean_accuracy"),
            corrupted_accuracy=number_or_nan(r, "corrupted_accuracy"),
            accuracy_drop=number_or_nan(r, "accuracy_drop"),
            worst_corruption=str(r["worst_corruption"]),
            worst_accuracy=number_or_nan(r, "worst_accuracy"),
        )
        for r in _records(robustness_table(result, "fragile_classes").head(N_FRAGILE_SHOWN))
    )
    destinations = tuple(
        DestinationView(
            corruption=str(r["corruption"]),
            true_class=str(r["class"]),
            predicted=str(r["predicted"]),
            n_errors=int(number_or_nan(r, "n_errors")),
            n_new=int(number_or_nan(r, "n_new")),
            n_images=int(number_or_nan(r, "n_images")),
            share=number_or_nan(r, "share"),
        )
        for r in _records(robustness_table(result, "error_destinations").head(N_DESTINATIONS_SHOWN))
    )
    files = robustness_table(result, "files")
    excluded = files[~files["status"].isin(["evaluated", "not sampled"])]
    return {
        "set_name": str(summary.get("set") or "the in-domain images"),
        "n_images": int(number_or_nan(summary, "n_images")),
        "n_classes": int(number_or_nan(summary, "n_classes")),
        "n_per_class": summary.get("n_per_class"),
        "seed": summary.get("seed"),
        "severities": str(summary.get("severities", "")),
        "clean_accuracy": number_or_nan(summary, "clean_accuracy"),
        "clean_interval": (
            number_or_nan(summary, "clean_accuracy_low"),
            number_or_nan(summary, "clean_accuracy_high"),
        ),
        "mean_corrupted_accuracy": number_or_nan(summary, "mean_corrupted_accuracy"),
        "mean_corruption_error": number_or_nan(summary, "mean_corruption_error"),
        "worst_corruption": str(summary.get("worst_corruption", "")),
        "worst_corruption_error": number_or_nan(summary, "worst_corruption_error"),
        "formula": str(summary.get("score_formula", "")),
        "heatmap_uri": heatmap,
        "curves_uri": curves,
        "corruptions": corruptions,
        "fragile": fragile,
        "destinations": destinations,
        "forecasts": _forecasts(result),
        "n_not_sampled": int((files["status"] == "not sampled").sum()),
        "excluded": tuple(
            (str(r["path"]), str(r["status"]), str(r["reason"])) for r in _records(excluded)
        ),
    }


def to_json(result: AnalysisResult) -> dict[str, object]:
    """The robustness block of the report's JSON
    (:func:`asl_eval.stress.records.robustness_record`)."""
    return robustness_record(result)


def _register() -> SectionSpec:
    """Register the section (importing this module again replaces its own spec)."""
    spec = SectionSpec(
        key="robustness",
        title="Robustness: which image changes break which classes",
        anchor="robustness",
        template="robustness.html.j2",
        build=build,
        to_json=to_json,
        order=40,
        placeholder=(
            "No robustness sweep in this report. Run asl-eval report --stress (or asl-eval "
            "stress MODEL IMAGES) to see which classes break under blur, lighting, colour, "
            "rotation, scale and background changes before any out-of-domain photo exists."
        ),
    )
    return register_section(spec)


ROBUSTNESS_SECTION = _register()
