"""The report's leakage section: how the ``"leakage"`` analysis
(:func:`asl_eval.audit.audit_leakage`) becomes template variables and a JSON block.

Registered with the section registry when this module is imported. ``build`` picks every
number the template prints, draws the distance figure and turns the gallery's PNG bytes into
data URIs, so ``audit.html.j2`` only loops and prints; ``to_json`` is
:func:`asl_eval.audit.records.leakage_record` (numbers and flagged images, no pictures).

Imports pandas, the audit's records and figure, the registry and the report's figure encoding;
never torch.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

import pandas as pd

from asl_eval.analysis import AnalysisResult, number_or_nan
from asl_eval.audit.plots import plot_distance_distribution
from asl_eval.audit.records import info_table, leakage_record
from asl_eval.errors import ReportError
from asl_eval.report.figures import data_uri, draw
from asl_eval.report.registry import SectionSpec, register_section

__all__ = ["AUDIT_SECTION", "LeakagePairView", "LeakageSetView", "build", "to_json"]


@dataclass(frozen=True)
class LeakageSetView:
    """One query set's row: near-duplicate counts and the three accuracies."""

    name: str
    n_images: int
    near_duplicates: int
    near_duplicate_share: float
    exact_duplicates: int
    n_groups: int
    has_accuracy: bool
    accuracy: float
    accuracy_interval: tuple[float, float]
    near_duplicate_accuracy: float
    near_duplicate_interval: tuple[float, float]
    leak_adjusted_accuracy: float
    leak_adjusted_interval: tuple[float, float]


@dataclass(frozen=True)
class LeakagePairView:
    """One query image beside its nearest training image."""

    set_name: str
    path: str
    file_name: str
    nearest_train: str
    label: str
    nearest_label: str
    phash_distance: int
    dhash_distance: int
    exact_duplicate: bool
    near_duplicate: bool
    image_uri: str | None
    train_uri: str | None


def _set_view(row: Mapping[Hashable, object]) -> LeakageSetView:
    def interval(prefix: str) -> tuple[float, float]:
        return (
            number_or_nan(row, f"{prefix}accuracy_low", required=True),
            number_or_nan(row, f"{prefix}accuracy_high", required=True),
        )

    return LeakageSetView(
        name=str(row["set"]),
        n_images=int(number_or_nan(row, "n_images", required=True)),
        near_duplicates=int(number_or_nan(row, "near_duplicates", required=True)),
        near_duplicate_share=number_or_nan(row, "near_duplicate_share", required=True),
        exact_duplicates=int(number_or_nan(row, "exact_duplicates", required=True)),
        n_groups=int(number_or_nan(row, "n_groups", required=True)),
        has_accuracy=int(number_or_nan(row, "n_evaluated", required=True)) > 0,
        accuracy=number_or_nan(row, "accuracy", required=True),
        accuracy_interval=interval(""),
        near_duplicate_accuracy=number_or_nan(row, "near_duplicate_accuracy", required=True),
        near_duplicate_interval=interval("near_duplicate_"),
        leak_adjusted_accuracy=number_or_nan(row, "leak_adjusted_accuracy", required=True),
        leak_adjusted_interval=interval("leak_adjusted_"),
    )


def _png(payload: object) -> str | None:
    if payload is None:
        return None
    if not isinstance(payload, bytes) or not payload.startswith(b"\x89PNG"):
        raise ReportError("The leakage analysis must hold PNG bytes for its thumbnails.")
    return data_uri(payload, "image/png")


def _pair_view(row: Mapping[Hashable, object]) -> LeakagePairView:
    path = str(row["path"])
    return LeakagePairView(
        set_name=str(row["set"]),
        path=path,
        file_name=path.replace("\\", "/").rsplit("/", 1)[-1],
        nearest_train=str(row["nearest_train"]),
        label=str(row["label"]),
        nearest_label=str(row["nearest_label"]),
        phash_distance=int(number_or_nan(row, "phash_distance", required=True)),
        dhash_distance=int(number_or_nan(row, "dhash_distance", required=True)),
        exact_duplicate=bool(row["exact_duplicate"]),
        near_duplicate=bool(row["near_duplicate"]),
        image_uri=_png(row.get("image_png")),
        train_uri=_png(row.get("train_png")),
    )


def _records(table: pd.DataFrame) -> list[dict[Hashable, object]]:
    return [dict(row) for row in table.to_dict(orient="records")]


def build(result: AnalysisResult) -> dict[str, object]:
    """The template variables of the leakage section (see ``audit.html.j2``)."""
    summary = result.summary_record()
    thresholds = info_table(result, "thresholds")
    counts = info_table(result, "calibration_counts")
    classes = info_table(result, "classes")
    figure = draw(
        lambda ax: plot_distance_distribution(result.items, counts, thresholds, ax=ax),
        size=(6.5, 3.4),
    )
    return {
        "valid_set": str(summary["valid_set"]),
        "n_train": int(number_or_nan(summary, "n_train", required=True)),
        "threshold_rule": str(summary["threshold_rule"]),
        "interval_method": str(summary["interval_method"]),
        "max_frame_gap": summary["max_frame_gap"],
        "max_distance": summary["max_distance"],
        "sets": tuple(_set_view(r) for r in _records(info_table(result, "sets"))),
        "classes": tuple((str(r["class"]), _set_view(r)) for r in _records(classes)),
        "thresholds": tuple(
            (
                str(r["class"]),
                int(number_or_nan(r, "n_images", required=True)),
                r["phash_threshold"],
                r["dhash_threshold"],
            )
            for r in _records(thresholds)
        ),
        "figure_uri": figure,
        "pairs": tuple(_pair_view(r) for r in _records(info_table(result, "pairs"))),
        "excluded": tuple(
            (str(r["set"]), str(r["path"]), str(r["reason"]))
            for r in _records(info_table(result, "excluded"))
        ),
    }


def to_json(result: AnalysisResult) -> dict[str, object]:
    """The leakage block of the report's JSON (:func:`asl_eval.audit.records.leakage_record`)."""
    return leakage_record(result)


def _register() -> SectionSpec:
    """Register the section (importing this module again replaces its own spec)."""
    spec = SectionSpec(
        key="leakage",
        title="Leakage: near-duplicates of training images",
        anchor="leakage",
        template="audit.html.j2",
        build=build,
        to_json=to_json,
        order=20,
        placeholder=(
            "No leakage audit in this report. Near-duplicate frames shared by the training "
            "and validation split inflate in-domain accuracy; run asl-eval audit TRAIN_DIR "
            "to measure how many there are."
        ),
    )
    return register_section(spec)


AUDIT_SECTION = _register()
