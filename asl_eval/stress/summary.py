"""The sweep's numbers from its per-image outcomes: accuracy per class × change × severity with
Wilson intervals, the summary score, the most fragile classes, where the errors go, and the
forecast check against an out-of-domain set.

The outcomes table (the :class:`~asl_eval.analysis.AnalysisResult`'s ``items``) has one row per
image and condition, with columns ``index`` (the image's place in the sample), ``path``,
``class`` (true), ``corruption`` (``"clean"`` for the unchanged images), ``severity`` (0 for
clean), ``predicted``, ``correct``, ``p_true`` and ``p_predicted`` (probabilities).

**The summary score** (:data:`SCORE_FORMULA`). ImageNet-C's mCE divides each corruption's error
by AlexNet's; there is no baseline model here, so the score is the error *increase* over the
clean images, in accuracy points:

- ``E_clean`` = 1 − accuracy on the unchanged sampled images;
- ``E(c, s)`` = 1 − accuracy on the same images under change ``c`` at severity ``s``;
- the corruption error of ``c``: ``CE(c) = mean over s in S of (E(c, s) − E_clean)``, ``S`` the
  severities swept from 1 up (severity 0 is the identity and is left out);
- the mean corruption error: ``mCE = mean over the label-preserving changes c of CE(c)``.

Lower is better; 0 means no change costs any accuracy, 0.25 that the changes cost 25 points on
average. The horizontal flip is not label-preserving and never enters ``mCE``. Because every
class contributes the same number of images (``n_per_class``, when it has that many), the
pooled accuracies weigh the classes nearly equally.

Layer: part of :mod:`asl_eval.stress`; imports numpy, pandas, scipy and
:mod:`asl_eval.metrics` (torch-free: the report and the findings read these tables).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from asl_eval.metrics import holm_adjust, wilson_intervals
from asl_eval.stress.catalogue import CATALOGUE, CLEAN

__all__ = [
    "ITEM_COLUMNS",
    "SCORE_FORMULA",
    "condition_table",
    "corruption_table",
    "error_destinations",
    "forecast_sentence",
    "forecast_table",
    "fragile_classes",
    "mean_corruption_error",
    "per_class_table",
]

logger = logging.getLogger(__name__)

ITEM_COLUMNS = (
    "index",
    "path",
    "class",
    "corruption",
    "severity",
    "predicted",
    "correct",
    "p_true",
    "p_predicted",
)
"""The columns of the sweep's outcomes table, in order."""

SCORE_FORMULA = (
    "mCE = mean over the label-preserving changes c of CE(c); CE(c) = mean over the severities "
    "s ≥ 1 swept of (E(c, s) − E_clean), where E is 1 − accuracy on the sampled images. Lower "
    "is better; the horizontal flip never enters it."
)
"""The summary score's definition in one line (the report prints it)."""


def _preserving(name: str) -> bool:
    info = CATALOGUE.get(name)
    return bool(info.label_preserving) if info is not None else True


def _with_intervals(table: pd.DataFrame) -> pd.DataFrame:
    n = table["n_images"].to_numpy(dtype=np.int64)
    k = table["n_correct"].to_numpy(dtype=np.int64)
    low, high = wilson_intervals(k, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        table["accuracy"] = np.where(n > 0, k / np.maximum(n, 1), np.nan)
    table["accuracy_low"] = low
    table["accuracy_high"] = high
    return table


def condition_table(items: pd.DataFrame) -> pd.DataFrame:
    """Accuracy of every condition over all sampled images: one row per ``(corruption,
    severity)``, clean first, with ``n_images``, ``n_correct``, ``accuracy`` and its Wilson 95%
    interval, ``error`` (1 − accuracy) and ``error_increase`` (error − clean error)."""
    grouped = items.groupby(["corruption", "severity"], sort=False)["correct"]
    table = grouped.agg(n_images="size", n_correct="sum").reset_index()
    table["n_correct"] = table["n_correct"].astype(np.int64)
    table = _with_intervals(table)
    table["error"] = 1.0 - table["accuracy"]
    clean = table.loc[table["corruption"] == CLEAN, "error"]
    clean_error = float(clean.iloc[0]) if len(clean) else math.nan
    table["error_increase"] = table["error"] - clean_error
    table["label_preserving"] = [_preserving(str(c)) for c in table["corruption"]]
    return table


def per_class_table(items: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Accuracy per class × condition, every class of ``classes`` in every condition (NaN
    accuracy where a class has no image), with ``clean_accuracy`` and ``accuracy_drop``
    (clean minus this condition's accuracy).

    The counts add up: each condition's ``n_images`` sum to that condition's images, and each
    class has the same ``n_images`` in every condition.
    """
    conditions = items[["corruption", "severity"]].drop_duplicates()
    grid = conditions.merge(pd.DataFrame({"class": list(classes)}), how="cross")
    counts = (
        items.groupby(["corruption", "severity", "class"], sort=False)["correct"]
        .agg(n_images="size", n_correct="sum")
        .reset_index()
    )
    table = grid.merge(counts, on=["corruption", "severity", "class"], how="left")
    table["n_images"] = table["n_images"].fillna(0).astype(np.int64)
    table["n_correct"] = table["n_correct"].fillna(0).astype(np.int64)
    table = _with_intervals(table)
    clean = table[table["corruption"] == CLEAN].set_index("class")["accuracy"]
    table["clean_accuracy"] = table["class"].map(clean).astype(np.float64)
    table["accuracy_drop"] = table["clean_accuracy"] - table["accuracy"]
    empty = [c for c in classes if not np.isfinite(clean.get(c, np.nan))]
    if empty:
        logger.warning(
            "%d of %d classes have no image in the sweep (NaN accuracy): %s",
            len(empty),
            len(classes),
            ", ".join(map(str, empty[:5])),
        )
    return table[
        [
            "class",
            "corruption",
            "severity",
            "n_images",
            "n_correct",
            "accuracy",
            "accuracy_low",
            "accuracy_high",
            "clean_accuracy",
            "accuracy_drop",
        ]
    ]


def corruption_table(conditions: pd.DataFrame) -> pd.DataFrame:
    """One row per change: its family, whether it is label-preserving (and so in the score),
    the severities swept, its mean accuracy over them and its corruption error ``CE(c)`` (see
    the module docstring); from :func:`condition_table`'s rows."""
    rows = []
    swept = conditions[(conditions["corruption"] != CLEAN) & (conditions["severity"] >= 1)]
    for name, group in swept.groupby("corruption", sort=False):
        info = CATALOGUE.get(str(name))
        rows.append(
            {
                "corruption": str(name),
                "family": info.family if info is not None else "",
                "label_preserving": _preserving(str(name)),
                "severities": ",".join(str(int(s)) for s in group["severity"]),
                "mean_accuracy": float(group["accuracy"].mean()),
                "corruption_error": float(group["error_increase"].mean()),
            }
        )
    columns = [
        "corruption",
        "family",
        "label_preserving",
        "severities",
        "mean_accuracy",
        "corruption_error",
    ]
    return pd.DataFrame(rows, columns=columns)


def mean_corruption_error(corruptions: pd.DataFrame) -> float:
    """``mCE``: the mean of ``corruption_error`` over the label-preserving changes (NaN when
    there is none).

    >>> table = pd.DataFrame({"corruption_error": [0.1, 0.3, 0.9],
    ...                       "label_preserving": [True, True, False]})
    >>> round(mean_corruption_error(table), 6)
    0.2
    """
    kept = corruptions.loc[corruptions["label_preserving"].astype(bool), "corruption_error"]
    return float(kept.mean()) if len(kept) else math.nan


def _class_profiles(per_class: pd.DataFrame) -> pd.DataFrame:
    """Per class × change, accuracy averaged over the severities swept (≥ 1)."""
    swept = per_class[(per_class["corruption"] != CLEAN) & (per_class["severity"] >= 1)]
    return swept.pivot_table(
        index="class", columns="corruption", values="accuracy", aggfunc="mean", sort=False
    )


def fragile_classes(per_class: pd.DataFrame, *, limit: int | None = None) -> pd.DataFrame:
    """The classes whose accuracy falls most: per class, the clean accuracy, the mean accuracy
    over the label-preserving changes and severities swept, the drop between them, and the
    change that hurts it most (largest drop, averaged over severities) with that accuracy.
    Sorted by the drop, largest first (ties by class order); NaN drops last."""
    order = {c: i for i, c in enumerate(per_class["class"].drop_duplicates())}
    profiles = _class_profiles(per_class)
    kept = [c for c in profiles.columns if _preserving(str(c))]
    clean = per_class[per_class["corruption"] == CLEAN].set_index("class")["accuracy"]
    rows = []
    for name in order:
        profile = profiles.loc[name, kept] if name in profiles.index else pd.Series(dtype=float)
        finite = profile.dropna()
        clean_accuracy = float(clean.get(name, math.nan))
        worst = str(finite.idxmin()) if len(finite) else ""
        rows.append(
            {
                "class": name,
                "clean_accuracy": clean_accuracy,
                "corrupted_accuracy": float(finite.mean()) if len(finite) else math.nan,
                "accuracy_drop": clean_accuracy - float(finite.mean()) if len(finite) else math.nan,
                "worst_corruption": worst,
                "worst_accuracy": float(finite.min()) if len(finite) else math.nan,
            }
        )
    table = pd.DataFrame(
        rows,
        columns=[
            "class",
            "clean_accuracy",
            "corrupted_accuracy",
            "accuracy_drop",
            "worst_corruption",
            "worst_accuracy",
        ],
    )
    table["_order"] = table["class"].map(order)
    table = table.sort_values(
        ["accuracy_drop", "_order"], ascending=[False, True], na_position="last", kind="stable"
    ).drop(columns="_order")
    table = table.reset_index(drop=True)
    return table if limit is None else table.head(limit)


def error_destinations(items: pd.DataFrame) -> pd.DataFrame:
    """Where each change sends the errors: per change (over its severities ≥ 1), true class and
    wrongly predicted class, ``n_errors`` (images × severities predicted so), ``n_images`` (the
    class's images × severities under the change), ``share`` (= n_errors / n_images) and
    ``n_new`` (of those errors, the ones on images predicted correctly when clean: the errors
    the change caused). Only pairs with an error; most new errors first, then most errors."""
    clean = items[items["corruption"] == CLEAN].set_index("index")["correct"]
    changed = items[(items["corruption"] != CLEAN) & (items["severity"] >= 1)].copy()
    columns = ["corruption", "class", "predicted", "n_errors", "n_new", "n_images", "share"]
    if changed.empty:
        return pd.DataFrame(columns=columns)
    changed["clean_correct"] = changed["index"].map(clean).fillna(False).astype(bool)
    sizes = changed.groupby(["corruption", "class"], sort=False).size().rename("n_images")
    wrong = changed[~changed["correct"].astype(bool)]
    if wrong.empty:
        return pd.DataFrame(columns=columns)
    table = (
        wrong.groupby(["corruption", "class", "predicted"], sort=False)
        .agg(n_errors=("correct", "size"), n_new=("clean_correct", "sum"))
        .reset_index()
    )
    table["n_new"] = table["n_new"].astype(np.int64)
    table = table.merge(sizes.reset_index(), on=["corruption", "class"], how="left")
    table["share"] = table["n_errors"] / table["n_images"]
    table = table.sort_values(
        ["n_new", "n_errors", "corruption", "class", "predicted"],
        ascending=[False, False, True, True, True],
        kind="stable",
    )
    return table[columns].reset_index(drop=True)


def forecast_table(
    per_class: pd.DataFrame,
    ood_accuracy: Mapping[str, float] | pd.Series,
    *,
    set_name: str,
) -> pd.DataFrame:
    """How well each change's per-class accuracy profile forecasts an out-of-domain set's
    per-class accuracy: Spearman's rank correlation (:func:`scipy.stats.spearmanr`) over the
    classes with a finite value on both sides, with its two-sided p-value.

    ``rho`` and ``p_value`` are NaN when fewer than 3 classes are shared or either side is
    constant (no ranking to compare). ``p_holm`` is ``p_value`` Holm-adjusted over the
    label-preserving changes compared (the best of many correlations is picked, so it is judged
    against all of them); NaN for the others. Rows sorted by ``rho``, highest first (NaN last).
    """
    ood = pd.Series(ood_accuracy, dtype=np.float64)
    profiles = _class_profiles(per_class)
    rows = []
    for name in profiles.columns:
        both = pd.concat([profiles[name].rename("sweep"), ood.rename("ood")], axis=1).dropna()
        n = len(both)
        rho = p_value = math.nan
        constant = n == 0 or both["sweep"].nunique() < 2 or both["ood"].nunique() < 2
        if n >= 3 and not constant:
            result = stats.spearmanr(both["sweep"], both["ood"])
            rho, p_value = float(result.statistic), float(result.pvalue)
        rows.append(
            {
                "set": set_name,
                "corruption": str(name),
                "label_preserving": _preserving(str(name)),
                "rho": rho,
                "p_value": p_value,
                "n_classes": n,
            }
        )
    table = pd.DataFrame(
        rows, columns=["set", "corruption", "label_preserving", "rho", "p_value", "n_classes"]
    )
    family = table["label_preserving"].to_numpy(dtype=bool)
    table["p_holm"] = np.nan
    table.loc[family, "p_holm"] = holm_adjust(table.loc[family, "p_value"].to_numpy(np.float64))
    table = table.sort_values("rho", ascending=False, na_position="last", kind="stable")
    table["rank"] = np.arange(1, len(table) + 1)
    return table.reset_index(drop=True)


FORECAST_ALPHA = 0.05
"""A forecast counts as a match when its Holm-adjusted Spearman p-value is below this and ρ > 0."""


def forecast_sentence(forecast: pd.DataFrame, *, alpha: float = FORECAST_ALPHA) -> str:
    """One sentence: which label-preserving change's per-class profile resembles the
    out-of-domain set's per-class accuracy most (from :func:`forecast_table`'s rows of one set).

    >>> table = pd.DataFrame({"set": ["massey"] * 2, "corruption": ["background", "rotate"],
    ...     "label_preserving": [True, True], "rho": [0.61, 0.1], "p_value": [0.0004, 0.6],
    ...     "p_holm": [0.0008, 0.6], "n_classes": [26, 26]})
    >>> forecast_sentence(table)[:80]
    'On massey, per-class accuracy follows background most closely (Spearman ρ = 0.61'
    """
    if forecast.empty:
        return "No out-of-domain set to compare the sweep with."
    set_name = str(forecast["set"].iloc[0])
    usable = forecast[forecast["label_preserving"].astype(bool) & forecast["rho"].notna()]
    if usable.empty:
        return (
            f"On {set_name}, no change could be compared: too few shared classes, or "
            "accuracies that do not vary between classes."
        )
    best = usable.sort_values("rho", ascending=False, kind="stable").iloc[0]
    numbers = (
        f"Spearman ρ = {best['rho']:.2f}, Holm p {_p(float(best['p_holm']))}, "
        f"{int(best['n_classes'])} classes"
    )
    if best["rho"] > 0 and best["p_holm"] < alpha:
        return (
            f"On {set_name}, per-class accuracy follows {best['corruption']} most closely "
            f"({numbers}): the classes it breaks in the sweep are the ones that fail there."
        )
    return (
        f"On {set_name}, no simulated change matches the per-class drop (closest: "
        f"{best['corruption']}, {numbers})."
    )


def _p(value: float) -> str:
    if not math.isfinite(value):
        return "= –"
    return "< 0.001" if value < 1e-3 else f"= {value:.3f}"
