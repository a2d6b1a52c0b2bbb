"""What differs between the in-domain and the out-of-domain images, and where the model fails:
the ``"domains"`` analysis (issue 14).

:func:`domain_analysis` measures every evaluated image of every set
(:mod:`asl_eval.audit.properties`: brightness, contrast, sharpness, colourfulness, background
share, original width, height and aspect ratio), then :func:`analyse_properties` compares the
sets (no image is opened there, so it can be rerun on a saved table):

- **Distributions**: per set, and per set and class, each property's count, mean, SD and
  quartiles.
- **Differences**: each other set against the in-domain set, per property: the standardized
  mean difference (Cohen's d, ``(mean_set − mean_in) / s_pooled`` with
  ``s_pooled² = ((n_set − 1) s_set² + (n_in − 1) s_in²) / (n_set + n_in − 2)``; ±inf when both
  sets are constant at different values, 0 when constant at the same value), and the two-sided
  Mann–Whitney U test (:func:`scipy.stats.mannwhitneyu`, exact for small samples without ties,
  else the normal approximation with tie correction). Mann–Whitney rather than Welch's t because
  the properties are skewed and bounded (sharpness spans orders of magnitude; shares are in
  [0, 1]) and rank tests ignore outliers; rather than Kolmogorov–Smirnov because a shift in
  location (darker, blurrier) is the difference that matters and Mann–Whitney has more power
  for it. ``auc = U / (n_set n_in)`` is the probability that an image of the set has the larger
  value (ties count half). The p-values of all (set, property) pairs are one family,
  Holm-adjusted (:func:`asl_eval.metrics.holm_adjust`); ``significant`` is
  ``p_adjusted < alpha``. ``rank`` orders each set's properties: significant ones first, each
  group by largest ``|d|``.
- **Accuracy by bin** and **segments**: per set and property, accuracy in quantile bins and
  the weakest bin against the rest (:mod:`asl_eval.audit.property_bins`).

Items: one row per evaluated image: ``set``, ``role``, ``path``, ``label`` (true class),
``predicted``, ``correct``, ``status`` (``"measured"`` or ``"excluded"``), ``reason``, one
column per property and ``bin:<property>`` (the image's bin index, -1 when excluded). An image
that cannot be decoded any more is kept with status ``"excluded"`` and its reason.

Imports numpy, pandas, scipy and the audit's own modules; never torch. ``accuracy_by_bin``,
``bin_labels`` and ``bin_thresholds`` are re-exported from :mod:`asl_eval.audit.property_bins`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.stats import mannwhitneyu

from asl_eval.analysis import AnalysisResult
from asl_eval.audit.properties import DEFAULT_MAX_SIDE, PROPERTIES, property_table
from asl_eval.audit.property_bins import (
    accuracy_by_bin,
    bin_labels,
    bin_thresholds,
    bins_and_segments,
)
from asl_eval.audit.records import plain
from asl_eval.errors import MetricError, ReportError
from asl_eval.metrics import holm_adjust
from asl_eval.predictions import Predictions
from asl_eval.progress import Progress

__all__ = [
    "DIFFERENCE_METHOD",
    "EFFECT_METHOD",
    "IN_DOMAIN",
    "OUT_OF_DOMAIN",
    "accuracy_by_bin",
    "analyse_properties",
    "bin_labels",
    "bin_thresholds",
    "domain_analysis",
    "domains_record",
    "property_items",
    "standardized_difference",
]

IN_DOMAIN = "in-domain"
OUT_OF_DOMAIN = "out-of-domain"

DIFFERENCE_METHOD = "Mann–Whitney U, two-sided, Holm across all (set, property) pairs"
"""The two-sample test, as the report names it."""

EFFECT_METHOD = "Cohen's d (pooled SD)"
"""The standardized difference, as the report names it."""

_SUMMARY_STATS = ("n", "mean", "sd", "min", "q25", "median", "q75", "max")


# -- building blocks -----------------------------------------------------------------------
def standardized_difference(values: ArrayLike, reference: ArrayLike) -> float:
    """Cohen's d of ``values`` against ``reference`` with the pooled SD.

    NaN when a side is empty or there are fewer than three values in all; when the pooled SD
    is 0 (to within rounding), 0 for equal means and ±inf otherwise.

    >>> round(standardized_difference([2.0, 4.0], [0.0, 2.0]), 6)
    1.414214
    >>> standardized_difference([3.0, 3.0], [1.0, 1.0])
    inf
    """
    first = np.asarray(values, dtype=np.float64)
    second = np.asarray(reference, dtype=np.float64)
    n_1, n_2 = first.size, second.size
    if n_1 == 0 or n_2 == 0 or n_1 + n_2 < 3:
        return math.nan
    difference = float(first.mean() - second.mean())
    var_1 = float(first.var(ddof=1)) if n_1 > 1 else 0.0
    var_2 = float(second.var(ddof=1)) if n_2 > 1 else 0.0
    pooled = math.sqrt(((n_1 - 1) * var_1 + (n_2 - 1) * var_2) / (n_1 + n_2 - 2))
    # Rounding noise (the mean of equal values is not always that value) is no difference.
    noise = 1e-12 * max(float(np.abs(first).max()), float(np.abs(second).max()))
    if pooled <= noise:
        return 0.0 if abs(difference) <= noise else math.copysign(math.inf, difference)
    return difference / pooled


def _check_options(bins: int, alpha: float) -> None:
    if bins < 1:
        raise MetricError(f"bins must be at least 1; got {bins}.")
    if not 0 < alpha < 1:
        raise MetricError(f"alpha must be between 0 and 1; got {alpha}.")


# -- measuring -------------------------------------------------------------------------------
def property_items(
    in_domain: Predictions,
    others: Sequence[Predictions],
    *,
    max_side: int = DEFAULT_MAX_SIDE,
    workers: int | None = None,
    progress: Progress = None,
) -> pd.DataFrame:
    """Measure every evaluated image of every set: the items table without the bins.

    Columns ``set``, ``role``, ``path``, ``label``, ``predicted``, ``correct``, ``status``,
    ``reason`` and one per property (:data:`asl_eval.audit.properties.PROPERTIES`).
    """
    sets = [in_domain, *others]
    names = [p.name for p in sets]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise MetricError(f"set names must be unique to compare domains; repeated: {repeated}.")
    frames = []
    for index, predictions in enumerate(sets):
        table = property_table(
            predictions.paths,
            name=predictions.name,
            max_side=max_side,
            workers=workers,
            progress=progress,
        )
        table.insert(0, "set", predictions.name)
        table.insert(1, "role", IN_DOMAIN if index == 0 else OUT_OF_DOMAIN)
        table.insert(3, "label", [str(v) for v in predictions.labels_true])
        table.insert(4, "predicted", [str(v) for v in predictions.labels_pred])
        table.insert(5, "correct", predictions.y_true == predictions.y_pred)
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


# -- comparing -------------------------------------------------------------------------------
def _describe(values: NDArray[np.float64]) -> dict[str, float]:
    if values.size == 0:
        return {"n": 0, **{k: math.nan for k in _SUMMARY_STATS[1:]}}
    q25, median, q75 = np.quantile(values, [0.25, 0.5, 0.75])
    return {
        "n": int(values.size),
        "mean": float(values.mean()),
        "sd": float(values.std(ddof=1)) if values.size > 1 else math.nan,
        "min": float(values.min()),
        "q25": float(q25),
        "median": float(median),
        "q75": float(q75),
        "max": float(values.max()),
    }


def _measured(items: pd.DataFrame) -> pd.DataFrame:
    return items[items["status"] == "measured"]


def _values(frame: pd.DataFrame, prop: str) -> NDArray[np.float64]:
    values = frame[prop].to_numpy(dtype=np.float64)
    return values[np.isfinite(values)]


def _distributions(items: pd.DataFrame, sets: Sequence[str]) -> pd.DataFrame:
    measured = _measured(items)
    rows = [
        {
            "set": name,
            "property": prop,
            **_describe(_values(measured[measured["set"] == name], prop)),
        }
        for name in sets
        for prop in PROPERTIES
    ]
    return pd.DataFrame(rows, columns=["set", "property", *_SUMMARY_STATS])


def _per_class(items: pd.DataFrame, sets: Sequence[str]) -> pd.DataFrame:
    measured = _measured(items)
    rows = []
    for name in sets:
        in_set = measured[measured["set"] == name]
        for label, group in in_set.groupby("label", sort=True):
            for prop in PROPERTIES:
                stats = _describe(_values(group, prop))
                rows.append(
                    {
                        "set": name,
                        "class": str(label),
                        "property": prop,
                        "n": stats["n"],
                        "mean": stats["mean"],
                        "sd": stats["sd"],
                        "median": stats["median"],
                        "accuracy": float(group["correct"].astype(bool).mean()),
                    }
                )
    columns = ["set", "class", "property", "n", "mean", "sd", "median", "accuracy"]
    return pd.DataFrame(rows, columns=columns)


def _difference_row(
    name: str, reference: str, prop: str, values: NDArray[np.float64], ref: NDArray[np.float64]
) -> dict[str, object]:
    if values.size and ref.size:
        if np.ptp(np.concatenate([values, ref])) == 0:
            u_statistic, p_value = values.size * ref.size / 2, 1.0  # all equal: no difference
        else:
            test = mannwhitneyu(values, ref, alternative="two-sided")
            u_statistic, p_value = float(test.statistic), float(test.pvalue)
        auc = u_statistic / (values.size * ref.size)
    else:
        u_statistic = p_value = auc = math.nan
    return {
        "set": name,
        "reference": reference,
        "property": prop,
        "n_reference": int(ref.size),
        "n_set": int(values.size),
        "mean_reference": float(ref.mean()) if ref.size else math.nan,
        "mean_set": float(values.mean()) if values.size else math.nan,
        "median_reference": float(np.median(ref)) if ref.size else math.nan,
        "median_set": float(np.median(values)) if values.size else math.nan,
        "smd": standardized_difference(values, ref),
        "u_statistic": u_statistic,
        "auc": auc,
        "p_value": p_value,
    }


def _differences(
    items: pd.DataFrame, reference: str, others: Sequence[str], alpha: float
) -> pd.DataFrame:
    measured = _measured(items)
    base = measured[measured["set"] == reference]
    rows = [
        _difference_row(
            name,
            reference,
            prop,
            _values(measured[measured["set"] == name], prop),
            _values(base, prop),
        )
        for name in others
        for prop in PROPERTIES
    ]
    columns = [
        "set", "reference", "property", "n_reference", "n_set", "mean_reference", "mean_set",
        "median_reference", "median_set", "smd", "u_statistic", "auc", "p_value",
    ]  # fmt: skip
    table = pd.DataFrame(rows, columns=columns)
    table["p_adjusted"] = holm_adjust(table["p_value"].to_numpy(dtype=np.float64))
    table["significant"] = (table["p_adjusted"] < alpha).to_numpy(dtype=bool)
    # Within each set: the significant differences first, each group by largest |d| (a
    # near-constant property can have a large d from a tiny, untestable difference), then
    # smaller p, then the property order.
    table["_set"] = table["set"].map({n: i for i, n in enumerate(others)})
    table["_abs"] = table["smd"].abs().fillna(-1.0)
    table["_order"] = np.arange(len(table))
    table = table.sort_values(
        ["_set", "significant", "_abs", "p_value", "_order"],
        ascending=[True, False, False, True, True],
        kind="stable",
    )
    table["rank"] = table.groupby("set", sort=False).cumcount() + 1
    return table.drop(columns=["_set", "_abs", "_order"]).reset_index(drop=True)


def _summary(
    items: pd.DataFrame,
    reference: str,
    differences: pd.DataFrame,
    segments: pd.DataFrame,
    *,
    bins: int,
    alpha: float,
    max_side: int | None,
) -> pd.DataFrame:
    # the largest difference over every set: significant first, then by |d|
    top = None
    if len(differences):
        order = differences.assign(_abs=differences["smd"].abs().fillna(-1.0))
        order = order.sort_values(["significant", "_abs"], ascending=False, kind="stable")
        top = order.iloc[0]
    others = segments[segments["set"] != reference]
    accuracies = others["accuracy"].to_numpy(dtype=np.float64)
    weakest = others.iloc[int(np.argmin(accuracies))] if accuracies.size else None
    record = {
        "in_domain_set": reference,
        "n_sets": int(items["set"].nunique()),
        "n_images": len(items),
        "n_measured": int((items["status"] == "measured").sum()),
        "n_excluded": int((items["status"] == "excluded").sum()),
        "bins": bins,
        "alpha": alpha,
        "max_side": max_side,
        "test": DIFFERENCE_METHOD,
        "effect": EFFECT_METHOD,
        "n_significant": int(differences["significant"].sum()) if len(differences) else 0,
        "top_set": str(top["set"]) if top is not None else "",
        "top_property": str(top["property"]) if top is not None else "",
        "top_smd": float(top["smd"]) if top is not None else math.nan,
        "top_p_adjusted": float(top["p_adjusted"]) if top is not None else math.nan,
        "weakest_set": str(weakest["set"]) if weakest is not None else "",
        "weakest_property": str(weakest["property"]) if weakest is not None else "",
        "weakest_bin": str(weakest["bin_label"]) if weakest is not None else "",
        "weakest_accuracy": float(weakest["accuracy"]) if weakest is not None else math.nan,
    }
    return pd.DataFrame([record])


def analyse_properties(
    items: pd.DataFrame,
    *,
    in_domain: str,
    bins: int = 3,
    alpha: float = 0.05,
    max_side: int | None = None,
) -> AnalysisResult:
    """The ``"domains"`` analysis of a measured items table (see the module's docstring).

    Parameters
    ----------
    items
        One row per image with columns ``set``, ``path``, ``label``, ``correct``, ``status``
        (``"measured"`` or ``"excluded"``), ``reason`` and the properties; ``role`` is derived
        from ``in_domain`` when missing. :func:`property_items` makes it.
    in_domain
        The reference set's name.
    bins
        Quantile bins per property for accuracy by bin.
    alpha
        Family-wise error rate of the Holm-adjusted tests.
    max_side
        The side the images were measured at (recorded in the summary).

    Returns
    -------
    AnalysisResult
        Named ``"domains"``; info tables ``distributions``, ``per_class``, ``differences``,
        ``bins``, ``segments`` and ``excluded``, and ``properties`` (their order).
    """
    _check_options(bins, alpha)
    required = {"set", "path", "label", "correct", "status", "reason", *PROPERTIES}
    missing = sorted(required - set(items.columns))
    if missing:
        raise MetricError(f"the items table lacks the columns {missing}.")
    sets = list(dict.fromkeys(str(s) for s in items["set"]))
    if in_domain not in sets:
        raise MetricError(f"the in-domain set {in_domain!r} is not among the sets {sets}.")
    sets = [in_domain, *(s for s in sets if s != in_domain)]
    others = sets[1:]
    table = items.reset_index(drop=True).copy()
    if "role" not in table.columns:
        table.insert(1, "role", np.where(table["set"] == in_domain, IN_DOMAIN, OUT_OF_DOMAIN))
    table["correct"] = table["correct"].astype(bool)
    differences = _differences(table, in_domain, others, alpha)
    by_bin, segments, assigned = bins_and_segments(table, sets, bins)
    for prop in PROPERTIES:
        table[f"bin:{prop}"] = assigned[prop]
    excluded = table.loc[table["status"] == "excluded", ["set", "path", "reason"]]
    info: dict[str, object] = {
        "properties": list(PROPERTIES),
        "distributions": _distributions(table, sets),
        "per_class": _per_class(table, sets),
        "differences": differences,
        "bins": by_bin,
        "segments": segments,
        "excluded": excluded.reset_index(drop=True),
    }
    summary = _summary(
        table, in_domain, differences, segments, bins=bins, alpha=alpha, max_side=max_side
    )
    return AnalysisResult("domains", table, summary, info)


def domain_analysis(
    in_domain: Predictions,
    others: Sequence[Predictions],
    *,
    bins: int = 3,
    alpha: float = 0.05,
    max_side: int = DEFAULT_MAX_SIDE,
    workers: int | None = None,
    progress: Progress = None,
) -> AnalysisResult:
    """Measure every evaluated image of ``in_domain`` and ``others`` and compare the sets: the
    ``"domains"`` analysis of the report (see the module's docstring).

    Parameters
    ----------
    in_domain
        The reference set (the report's set with role ``"in-domain"``).
    others
        The sets compared with it (the report's other sets).
    bins
        Quantile bins per property for accuracy by bin (default 3: low, middle, high).
    alpha
        Family-wise error rate of the Holm-adjusted tests.
    max_side
        Longest side of the copy each image's pixel properties are measured on.
    workers
        Decoding threads (default: the number of CPUs, at most 8).
    progress
        Called with ``"measure"`` events named after each set.

    Returns
    -------
    AnalysisResult
        Named ``"domains"``; see :func:`analyse_properties`.
    """
    _check_options(bins, alpha)
    items = property_items(in_domain, others, max_side=max_side, workers=workers, progress=progress)
    return analyse_properties(
        items, in_domain=in_domain.name, bins=bins, alpha=alpha, max_side=max_side
    )


def domains_record(result: AnalysisResult) -> dict[str, object]:
    """Every table of the ``"domains"`` analysis as JSON data (no per-image rows, no images).

    Keys: ``summary``, ``properties``, ``differences``, ``segments``, ``bins``,
    ``distributions``, ``per_class`` and ``excluded``. Undefined and infinite numbers are
    ``null`` (an infinite ``smd``: a property constant in both sets at different values; the
    means show which).
    """
    if result.name != "domains":
        raise ReportError(f"expected the 'domains' analysis; got {result.name!r}.")
    record: dict[str, object] = {
        "summary": plain(result.summary_record()),
        "properties": list(PROPERTIES),
    }
    for key in ("differences", "segments", "bins", "distributions", "per_class", "excluded"):
        table = result.info.get(key)
        if not isinstance(table, pd.DataFrame):
            raise ReportError(f"The domains analysis lacks its {key!r} table (info[{key!r}]).")
        record[key] = plain(table)
    return record
