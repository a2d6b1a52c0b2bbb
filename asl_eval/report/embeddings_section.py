"""The report's "Embedding drift" section: how the ``"embeddings"`` analysis
(:func:`asl_eval.inference.features.embedding_audit`) becomes template variables and a JSON block.

Registered with the section registry when this module is imported. ``build`` picks every
number the template prints and draws the accuracy-by-distance figure, so ``embeddings.html.j2``
only loops and prints; ``to_json`` is :func:`asl_eval.audit.embeddings.embeddings_record`.

Imports pandas, the torch-free embedding analysis, the registry and the report's figure
encoding (matplotlib through :func:`~asl_eval.report.figures.draw`); never torch.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from asl_eval.analysis import AnalysisResult, number_or_nan
from asl_eval.audit.embeddings import embeddings_record
from asl_eval.errors import ReportError
from asl_eval.report.figures import draw
from asl_eval.report.registry import SectionSpec, register_section

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "EMBEDDINGS_SECTION",
    "AucView",
    "BinView",
    "PairView",
    "SetView",
    "SuspiciousView",
    "build",
    "plot_accuracy_by_distance",
    "to_json",
]

_SHOWN_SUSPICIOUS = 30
"""Suspicious images listed on the page (the JSON has them all)."""


@dataclass(frozen=True)
class AucView:
    """One domain-classifier comparison."""

    reference: str
    set_name: str
    n_reference: int
    n_set: int
    auc: float
    auc_low: float
    auc_high: float


@dataclass(frozen=True)
class SetView:
    """One evaluated set: distance to training and whether it predicts failure."""

    name: str
    n_images: int
    n_excluded: int
    accuracy: float
    median_distance: float
    error_distance_auc: float
    error_distance_p: float
    n_suspicious: int


@dataclass(frozen=True)
class BinView:
    """Accuracy in one distance bin of one set."""

    set_name: str
    bin: int
    distance_low: float
    distance_high: float
    n_images: int
    n_correct: int
    accuracy: float
    interval: tuple[float, float]


@dataclass(frozen=True)
class PairView:
    """A candidate near-duplicate pair and its feature similarity."""

    set_name: str
    path: str
    nearest_train: str
    phash_distance: int
    similarity: float
    confirm_threshold: float
    confirmed: bool


@dataclass(frozen=True)
class SuspiciousView:
    """A confidently misclassified image whose training neighbours agree with the model."""

    set_name: str
    path: str
    file_name: str
    y_true: str
    y_pred: str
    confidence: float
    knn_distance: float
    neighbour_labels: str


def _table(result: AnalysisResult, key: str) -> list[dict[Hashable, object]]:
    table = result.info.get(key)
    if not isinstance(table, pd.DataFrame):
        raise ReportError(f"The embedding analysis lacks its {key!r} table (info[{key!r}]).")
    return [dict(row) for row in table.to_dict(orient="records")]


def plot_accuracy_by_distance(bins: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Accuracy (with its interval) against the median of each distance bin, one line per
    set. Takes :func:`asl_eval.audit.embeddings.distance_bins` rows with a ``set`` column."""
    if ax is None:
        from matplotlib.figure import Figure

        ax = Figure().add_subplot()
    for name, part in bins.groupby("set", sort=False):
        middle = (part["distance_low"] + part["distance_high"]) / 2
        accuracy = part["accuracy"].to_numpy(dtype=float)
        below = accuracy - part["accuracy_low"].to_numpy(dtype=float)
        above = part["accuracy_high"].to_numpy(dtype=float) - accuracy
        ax.errorbar(middle, accuracy, yerr=[below, above], marker="o", capsize=3, label=str(name))
    ax.set_xlabel("mean cosine distance to the nearest training images (bin middle)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    if len(bins):
        ax.legend(title="set", fontsize="small")
    return ax


def build(result: AnalysisResult) -> dict[str, object]:
    """The template variables of the embedding-drift section (see ``embeddings.html.j2``)."""
    summary = result.summary_record()
    bins = result.info.get("distance_bins")
    if not isinstance(bins, pd.DataFrame):
        raise ReportError("The embedding analysis lacks its 'distance_bins' table.")
    suspicious = _table(result, "suspicious")
    return {
        "n_train": int(number_or_nan(summary, "n_train")),
        "n_per_class": summary.get("n_per_class"),
        "k": int(number_or_nan(summary, "k")),
        "high_confidence": number_or_nan(summary, "high_confidence"),
        "confirm_similarity": number_or_nan(summary, "confirm_similarity"),
        "confirm_quantile": number_or_nan(summary, "confirm_quantile"),
        "distance_bound": number_or_nan(summary, "distance_bound"),
        "in_distribution_quantile": number_or_nan(summary, "in_distribution_quantile"),
        "auc": tuple(
            AucView(
                str(r["reference"]),
                str(r["set"]),
                int(number_or_nan(r, "n_reference")),
                int(number_or_nan(r, "n_set")),
                number_or_nan(r, "auc"),
                number_or_nan(r, "auc_low"),
                number_or_nan(r, "auc_high"),
            )
            for r in _table(result, "auc")
        ),
        "sets": tuple(
            SetView(
                str(r["set"]),
                int(number_or_nan(r, "n_images")),
                int(number_or_nan(r, "n_excluded")),
                number_or_nan(r, "accuracy"),
                number_or_nan(r, "median_distance"),
                number_or_nan(r, "error_distance_auc"),
                number_or_nan(r, "error_distance_p"),
                int(number_or_nan(r, "n_suspicious")),
            )
            for r in _table(result, "sets")
        ),
        "bins": tuple(
            BinView(
                str(r["set"]),
                int(number_or_nan(r, "bin")),
                number_or_nan(r, "distance_low"),
                number_or_nan(r, "distance_high"),
                int(number_or_nan(r, "n_images")),
                int(number_or_nan(r, "n_correct")),
                number_or_nan(r, "accuracy"),
                (number_or_nan(r, "accuracy_low"), number_or_nan(r, "accuracy_high")),
            )
            for r in _table(result, "distance_bins")
        ),
        "figure_uri": draw(lambda ax: plot_accuracy_by_distance(bins, ax=ax), size=(6.5, 3.4)),
        "pairs": tuple(
            PairView(
                str(r["set"]),
                str(r["path"]),
                str(r["nearest_train"]),
                int(number_or_nan(r, "phash_distance")),
                number_or_nan(r, "similarity"),
                number_or_nan(r, "confirm_threshold"),
                bool(r["confirmed"]),
            )
            for r in _table(result, "pairs")
        ),
        "suspicious": tuple(
            SuspiciousView(
                str(r["set"]),
                str(r["path"]),
                str(r["path"]).replace("\\", "/").rsplit("/", 1)[-1],
                str(r["y_true"]),
                str(r["y_pred"]),
                number_or_nan(r, "confidence"),
                number_or_nan(r, "knn_distance"),
                str(r["neighbour_labels"]),
            )
            for r in suspicious[:_SHOWN_SUSPICIOUS]
        ),
        "n_suspicious": len(suspicious),
        "excluded": tuple(
            (str(r["set"]), str(r["path"]), str(r["reason"])) for r in _table(result, "excluded")
        ),
    }


def to_json(result: AnalysisResult) -> dict[str, object]:
    """The embeddings block of the report's JSON
    (:func:`asl_eval.audit.embeddings.embeddings_record`)."""
    return embeddings_record(result)


def _register() -> SectionSpec:
    """Register the section (importing this module again replaces its own spec)."""
    spec = SectionSpec(
        key="embeddings",
        title="Embedding drift: distance from the training images",
        anchor="embeddings",
        template="embeddings.html.j2",
        build=build,
        to_json=to_json,
        order=30,
        placeholder=(
            "No embedding analysis in this report. It measures how far each image lies from "
            "the training images in the model's own feature space, whether that predicts "
            "failure, and which confident errors look like label errors; run asl-eval audit "
            "TRAIN_DIR --model MODEL."
        ),
    )
    return register_section(spec)


EMBEDDINGS_SECTION = _register()
