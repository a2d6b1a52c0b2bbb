"""The report's section "What is different about the out-of-domain images": how the
``"domains"`` analysis (:func:`asl_eval.audit.domains.domain_analysis`) becomes template
variables and a JSON block.

Registered with the section registry when this module is imported. ``build`` formats every
number the template prints and draws the figures (data URIs), so ``domains.html.j2`` only loops
and prints; ``to_json`` is :func:`asl_eval.audit.domains.domains_record` (tables, no per-image
rows).

Imports pandas, the audit's domain analysis and figures, the registry and the report's figure
encoding; never torch.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from asl_eval.analysis import AnalysisResult, number_or_nan
from asl_eval.audit.domain_plots import (
    plot_accuracy_by_bin,
    plot_property_differences,
    plot_property_distribution,
)
from asl_eval.audit.domains import domains_record
from asl_eval.audit.properties import PROPERTY_LABELS
from asl_eval.audit.records import info_table
from asl_eval.report.figures import draw
from asl_eval.report.registry import SectionSpec, register_section

__all__ = [
    "DOMAINS_SECTION",
    "BinView",
    "DifferenceView",
    "PanelView",
    "SegmentView",
    "build",
    "to_json",
]

_MAX_PANELS = 3
_PER_SET_PANELS = 2
_CLASS_PROPERTIES = ("brightness", "contrast", "sharpness", "colourfulness", "background_share")


@dataclass(frozen=True)
class DifferenceView:
    """One property of one compared set against the in-domain set."""

    set_name: str
    rank: int
    property: str
    mean_reference: str
    mean_set: str
    smd: str
    smd_value: float
    auc: float
    p_value: float
    p_adjusted: float
    significant: bool


@dataclass(frozen=True)
class BinView:
    """One bin of one property in one set, with its accuracy."""

    set_name: str
    label: str
    value_range: str
    n: int
    n_correct: int
    accuracy: float
    interval: tuple[float, float]


@dataclass(frozen=True)
class PanelView:
    """One property shown in full: its distribution per set and accuracy by bin."""

    property: str
    label: str
    distribution_uri: str
    accuracy_uri: str
    bins: tuple[BinView, ...]


@dataclass(frozen=True)
class SegmentView:
    """A set's weakest bin of one property against its other images."""

    set_name: str
    property: str
    label: str
    value_range: str
    n: int
    n_correct: int
    accuracy: float
    interval: tuple[float, float]
    rest_n: int
    rest_accuracy: float
    rest_interval: tuple[float, float]


def _value(value: float) -> str:
    """A property value with three significant digits ("–" when undefined)."""
    return f"{value:.3g}" if math.isfinite(value) else "–"


def _smd(value: float) -> str:
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:+.2f}".replace("-", "−")


def _label(prop: str) -> str:
    return PROPERTY_LABELS.get(prop, prop)


def _records(table: pd.DataFrame) -> list[dict[Hashable, object]]:
    return [dict(row) for row in table.to_dict(orient="records")]


def _range(row: Mapping[Any, object]) -> str:
    low, high = number_or_nan(row, "lower"), number_or_nan(row, "upper")
    return _value(low) if low == high else f"{_value(low)}–{_value(high)}"


def _difference(row: Mapping[Any, object]) -> DifferenceView:
    return DifferenceView(
        set_name=str(row["set"]),
        rank=int(number_or_nan(row, "rank")),
        property=_label(str(row["property"])),
        mean_reference=_value(number_or_nan(row, "mean_reference")),
        mean_set=_value(number_or_nan(row, "mean_set")),
        smd=_smd(number_or_nan(row, "smd")),
        smd_value=number_or_nan(row, "smd"),
        auc=number_or_nan(row, "auc"),
        p_value=number_or_nan(row, "p_value"),
        p_adjusted=number_or_nan(row, "p_adjusted"),
        significant=bool(row["significant"]),
    )


def _bin(row: Mapping[Any, object]) -> BinView:
    return BinView(
        set_name=str(row["set"]),
        label=str(row["bin_label"]),
        value_range=_range(row),
        n=int(number_or_nan(row, "n")),
        n_correct=int(number_or_nan(row, "n_correct")),
        accuracy=number_or_nan(row, "accuracy"),
        interval=(number_or_nan(row, "accuracy_low"), number_or_nan(row, "accuracy_high")),
    )


def _segment(row: Mapping[Any, object]) -> SegmentView:
    return SegmentView(
        set_name=str(row["set"]),
        property=_label(str(row["property"])),
        label=str(row["bin_label"]),
        value_range=_range(row),
        n=int(number_or_nan(row, "n")),
        n_correct=int(number_or_nan(row, "n_correct")),
        accuracy=number_or_nan(row, "accuracy"),
        interval=(number_or_nan(row, "accuracy_low"), number_or_nan(row, "accuracy_high")),
        rest_n=int(number_or_nan(row, "rest_n")),
        rest_accuracy=number_or_nan(row, "rest_accuracy"),
        rest_interval=(
            number_or_nan(row, "rest_accuracy_low"),
            number_or_nan(row, "rest_accuracy_high"),
        ),
    )


def _panel_properties(differences: pd.DataFrame, segments: pd.DataFrame) -> list[str]:
    """The properties shown in full: each compared set's top significant ones (at most two;
    its top one when none is significant), then those of weak segments; at most
    :data:`_MAX_PANELS`."""
    chosen: list[str] = []
    for _, rows in differences.groupby("set", sort=False):
        ranked = rows.sort_values("rank", kind="stable")
        significant = ranked[ranked["significant"].astype(bool)]
        shown = significant if not significant.empty else ranked.head(1)
        for prop in shown["property"].astype(str).head(_PER_SET_PANELS):
            if prop not in chosen:
                chosen.append(prop)
    for prop in segments["property"].astype(str):
        if prop not in chosen:
            chosen.append(prop)
    return chosen[:_MAX_PANELS] or ["brightness"]


def _panel(result: AnalysisResult, bins: pd.DataFrame, prop: str) -> PanelView:
    rows = bins[bins["property"] == prop]
    return PanelView(
        property=prop,
        label=_label(prop),
        distribution_uri=draw(
            lambda ax: plot_property_distribution(result.items, prop, ax=ax), size=(4.2, 3.0)
        ),
        accuracy_uri=draw(lambda ax: plot_accuracy_by_bin(bins, prop, ax=ax), size=(4.2, 3.0)),
        bins=tuple(_bin(r) for r in _records(rows)),
    )


def _per_class(table: pd.DataFrame) -> tuple[tuple[str, str, int, float, tuple[str, ...]], ...]:
    """Rows ``(set, class, n, accuracy, mean of each of _CLASS_PROPERTIES)``."""
    rows = []
    for (set_name, name), group in table.groupby(["set", "class"], sort=False):
        means = dict(zip(group["property"].astype(str), group["mean"].astype(float), strict=True))
        first = group.iloc[0].to_dict()
        rows.append(
            (
                str(set_name),
                str(name),
                int(number_or_nan(first, "n")),
                number_or_nan(first, "accuracy"),
                tuple(_value(means.get(p, math.nan)) for p in _CLASS_PROPERTIES),
            )
        )
    return tuple(rows)


def build(result: AnalysisResult) -> dict[str, object]:
    """The template variables of the domains section (see ``domains.html.j2``)."""
    summary = result.summary_record()
    differences = info_table(result, "differences")
    bins = info_table(result, "bins")
    segments = info_table(result, "segments")
    separated = segments[segments["separated"].astype(bool)].sort_values("accuracy", kind="stable")
    has_differences = not differences.empty
    return {
        "in_domain": str(summary["in_domain_set"]),
        "sets": tuple(dict.fromkeys(str(s) for s in result.items["set"])),
        "test": str(summary["test"]),
        "effect": str(summary["effect"]),
        "alpha": number_or_nan(summary, "alpha"),
        "bins": int(number_or_nan(summary, "bins")),
        "max_side": summary.get("max_side"),
        "n_images": int(number_or_nan(summary, "n_images")),
        "n_measured": int(number_or_nan(summary, "n_measured")),
        "n_significant": int(number_or_nan(summary, "n_significant")),
        "has_differences": has_differences,
        "differences_uri": (
            draw(lambda ax: plot_property_differences(differences, ax=ax), size=(6.5, 3.6))
            if has_differences
            else None
        ),
        "differences": tuple(_difference(r) for r in _records(differences)),
        "panels": tuple(_panel(result, bins, p) for p in _panel_properties(differences, separated)),
        "segments": tuple(_segment(r) for r in _records(separated)),
        "class_properties": tuple(_label(p) for p in _CLASS_PROPERTIES),
        "per_class": _per_class(info_table(result, "per_class")),
        "excluded": tuple(
            (str(r["set"]), str(r["path"]), str(r["reason"]))
            for r in _records(info_table(result, "excluded"))
        ),
    }


def to_json(result: AnalysisResult) -> dict[str, object]:
    """The domains block of the report's JSON (:func:`asl_eval.audit.domains.domains_record`)."""
    return domains_record(result)


def _register() -> SectionSpec:
    """Register the section (importing this module again replaces its own spec)."""
    spec = SectionSpec(
        key="domains",
        title="What is different about the out-of-domain images",
        anchor="domains",
        template="domains.html.j2",
        build=build,
        to_json=to_json,
        order=30,
        placeholder=(
            "No comparison of image properties in this report. Brightness, contrast, sharpness, "
            "colourfulness, background share and size can explain an out-of-domain drop; run "
            "report --audit with an in-domain set and another set to measure them."
        ),
    )
    return register_section(spec)


DOMAINS_SECTION = _register()
