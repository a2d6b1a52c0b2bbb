"""The report's Grad-CAM section ("Why it fails"): how the ``"cam"`` analysis
(:func:`asl_eval.cam.build_cam_section`) becomes template variables and a JSON block.

Registered with the section registry when this module is imported (``asl_eval.report``
imports it). ``build`` turns PNG bytes into data URIs and picks every number the template
prints, so ``cam.html.j2`` only loops and prints; ``to_json`` gives the numbers (no images).

Imports pandas, the analysis shape, the registry and the report's figure encoding only; never
torch or the cam stage itself (the result it reads is plain data).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass

import pandas as pd

from asl_eval.analysis import AnalysisResult, number_or_nan
from asl_eval.errors import ReportError
from asl_eval.report.figures import data_uri
from asl_eval.report.registry import SectionSpec, register_section
from asl_eval.report.serialize import clean

__all__ = ["CAM_SECTION", "CamGalleryView", "CamImageView", "CamMeanView", "build", "to_json"]

#: The feature map below which (either side) a heatmap has little spatial detail.
COARSE_MAP_SIZE = 3


@dataclass(frozen=True)
class CamImageView:
    """One explained image as the template prints it (the images None when the report
    leaves them out)."""

    path: str
    file_name: str
    image_uri: str | None
    pred_uri: str | None
    true_uri: str | None
    pred_class: str
    true_class: str
    correct: bool
    proba_pred: float
    proba_true: float
    faithfulness_pred: float
    faithfulness_true: float
    outside_mass_pred: float
    outside_mass_true: float


@dataclass(frozen=True)
class CamMeanView:
    """One mean heatmap (a class over one set)."""

    class_name: str
    set_name: str
    n_images: int
    uri: str | None


@dataclass(frozen=True)
class CamGalleryView:
    """One explained class: its accuracy, mean heatmaps and images."""

    class_name: str
    ood_accuracy: float
    n_ood_images: int
    n_ood_misclassified: int
    mean_faithfulness: float
    n_faithfulness: int
    mean_outside_mass: float
    means: tuple[CamMeanView, ...]
    images: tuple[CamImageView, ...]


def _png_uri(payload: object) -> str | None:
    """The image as a data URI; None when the report leaves images out (``--no-images``)."""
    if payload is None:
        return None
    if not isinstance(payload, bytes) or not payload.startswith(b"\x89PNG"):
        raise ReportError("The cam analysis must hold PNG bytes for its images.")
    return data_uri(payload, "image/png")


def _frame(result: AnalysisResult, key: str) -> pd.DataFrame:
    frame = result.info.get(key)
    if not isinstance(frame, pd.DataFrame):
        raise ReportError(f"The cam analysis lacks its {key!r} table (info[{key!r}]).")
    return frame


def _image_view(row: Mapping[Hashable, object]) -> CamImageView:
    path = str(row["path"])
    return CamImageView(
        path=path,
        file_name=path.replace("\\", "/").rsplit("/", 1)[-1],
        image_uri=_png_uri(row["image_png"]),
        pred_uri=_png_uri(row["pred_png"]),
        true_uri=_png_uri(row["true_png"]),
        pred_class=str(row["pred_class"]),
        true_class=str(row["true_class"]),
        correct=bool(row["correct"]),
        proba_pred=float(row["proba_pred"]),  # type: ignore[arg-type]
        proba_true=float(row["proba_true"]),  # type: ignore[arg-type]
        faithfulness_pred=float(row["faithfulness_pred"]),  # type: ignore[arg-type]
        faithfulness_true=float(row["faithfulness_true"]),  # type: ignore[arg-type]
        # NaN when absent (an analysis saved before the column existed) or not a number
        outside_mass_pred=number_or_nan(row, "outside_mass_pred"),
        outside_mass_true=number_or_nan(row, "outside_mass_true"),
    )


def _galleries(result: AnalysisResult) -> tuple[CamGalleryView, ...]:
    items, means = result.items, _frame(result, "means")
    galleries = []
    for record in _frame(result, "classes").to_dict(orient="records"):
        name = record["class"]
        rows = items[(items["group"] == "class") & (items["class"] == name)]
        class_means = means[means["class"] == name]
        galleries.append(
            CamGalleryView(
                class_name=str(name),
                ood_accuracy=float(record["ood_accuracy"]),
                n_ood_images=int(record["n_ood_images"]),
                n_ood_misclassified=int(record["n_ood_misclassified"]),
                mean_faithfulness=float(record["mean_faithfulness"]),
                n_faithfulness=int(rows["faithfulness_pred"].notna().sum()),
                mean_outside_mass=number_or_nan(record, "mean_outside_mass"),
                means=tuple(
                    CamMeanView(
                        str(m["class"]),
                        str(m["set"]),
                        int(m["n_images"]),
                        _png_uri(m["overlay_png"]),
                    )
                    for m in class_means.to_dict(orient="records")
                ),
                images=tuple(_image_view(r) for r in rows.to_dict(orient="records")),
            )
        )
    return tuple(galleries)


def build(result: AnalysisResult) -> dict[str, object]:
    """The template variables of the Grad-CAM section (see ``cam.html.j2``)."""
    summary = result.summary_record()
    height, width = int(summary["map_height"]), int(summary["map_width"])  # type: ignore[call-overload]
    top = result.items[result.items["group"] == "top_losses"]
    skipped = _frame(result, "skipped")
    return {
        "method": str(summary["method"]),
        "layer": str(summary["layer"]),
        "map_size": f"{height}×{width}" if height and width else "–",
        "map_is_coarse": 0 < min(height, width) < COARSE_MAP_SIZE,
        "ood_set": str(summary["ood_set"]),
        "by_hand": summary["selected_by"] == "by_hand",
        "faithfulness_metric": str(summary["faithfulness_metric"]),
        "faithfulness_direction": "higher" if summary["faithfulness_higher_is_better"] else "lower",
        "n_prediction_mismatches": int(summary["n_prediction_mismatches"]),  # type: ignore[call-overload]
        "galleries": _galleries(result),
        "has_outside_mass": "outside_mass_pred" in result.items.columns,
        "top_losses": tuple(_image_view(r) for r in top.to_dict(orient="records")),
        "skipped": tuple(
            (str(p), str(r)) for p, r in zip(skipped["path"], skipped["reason"], strict=True)
        ),
    }


_IMAGE_FIELDS = (
    "path",
    "set",
    "true_class",
    "pred_class",
    "proba_true",
    "proba_pred",
    "loss",
    "faithfulness_pred",
    "faithfulness_true",
    "outside_mass_pred",
    "outside_mass_true",
)
_CLASS_FIELDS = (
    "ood_accuracy",
    "n_ood_images",
    "n_ood_misclassified",
    "mean_faithfulness",
    "n_faithfulness",
    "mean_outside_mass",
)


def _image_records(items: pd.DataFrame) -> list[dict[str, object]]:
    return [
        {f: clean(row.get(f, math.nan)) for f in _IMAGE_FIELDS}
        for row in items.to_dict(orient="records")
    ]


def to_json(result: AnalysisResult) -> dict[str, object]:
    """The Grad-CAM block of the report's JSON: every number of the section, no images."""
    summary = {key: clean(value) for key, value in result.summary_record().items()}
    items = result.items
    classes = [
        {
            "class": record["class"],
            **{f: clean(record.get(f, math.nan)) for f in _CLASS_FIELDS},
            "images": _image_records(
                items[(items["group"] == "class") & (items["class"] == record["class"])]
            ),
        }
        for record in _frame(result, "classes").to_dict(orient="records")
    ]
    skipped = _frame(result, "skipped")
    return {
        **{k: summary[k] for k in ("method", "layer", "ood_set", "in_domain_set", "selected_by")},
        "map_size": [summary["map_height"], summary["map_width"]],
        "faithfulness_metric": summary["faithfulness_metric"],
        "faithfulness_higher_is_better": summary["faithfulness_higher_is_better"],
        "classes": classes,
        "top_losses": _image_records(items[items["group"] == "top_losses"]),
        "skipped": [
            {"path": p, "reason": r}
            for p, r in zip(skipped["path"], skipped["reason"], strict=True)
        ],
        "n_prediction_mismatches": summary["n_prediction_mismatches"],
    }


def _register() -> SectionSpec:
    """Register the section; a second import of this module (pytest's doctest collection
    imports it again) replaces its own earlier spec, never another module's."""
    spec = SectionSpec(
        key="cam",
        title="Why it fails: what the model looks at",
        anchor="cam",
        template="cam.html.j2",
        build=build,
        to_json=to_json,
        order=10,
        placeholder=(
            "No Grad-CAM section in this report (run asl-eval report with the model to compute it)."
        ),
    )
    return register_section(spec)


CAM_SECTION = _register()
