"""The robustness check: which simulated image change best matches the real drop on an
out-of-domain set, read from the ``"robustness"`` section (its forecast table) as data.

For each out-of-domain set the sweep was compared with, the label-preserving change whose
per-class accuracy correlates best with the set's per-class accuracy (Spearman's ρ,
:func:`asl_eval.stress.summary.forecast_table`) is a finding when ρ > 0 and its p-value is below
the findings' alpha. Its interval is Fisher's z interval for a Spearman correlation with
Fieller, Hartley & Pearson's variance ``1.06 / (n − 3)``; it is scored by the set's
misclassified images times the interval's lower end (the errors the change accounts for, at
the conservative end).

Imports numpy, pandas and the findings' own modules (torch-free), and reads the section only.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from asl_eval.findings.checks.common import make_finding
from asl_eval.findings.data import FindingsData, SkipCheck
from asl_eval.findings.model import Evidence, Finding
from asl_eval.findings.registry import Check, register_check
from asl_eval.findings.stats import conservative_images
from asl_eval.findings.wording import names, pvalue, say, suggest

__all__ = ["ROBUSTNESS_ANCHOR", "robustness", "spearman_interval"]

#: The HTML id of the report's robustness section.
ROBUSTNESS_ANCHOR = "robustness"

_Z = 1.959963984540054  # the normal 97.5% quantile


def spearman_interval(rho: float, n: int) -> tuple[float, float]:
    """Fisher's z interval (95%) for a Spearman correlation over ``n`` pairs, with the
    variance ``1.06 / (n − 3)`` (Fieller, Hartley & Pearson, 1957); NaN when ``n <= 3``.

    >>> [round(x, 3) for x in spearman_interval(0.6, 26)]
    [0.266, 0.805]
    """
    if n <= 3 or not math.isfinite(rho):
        return math.nan, math.nan
    z = math.atanh(min(max(rho, -0.999999), 0.999999))
    half = _Z * math.sqrt(1.06 / (n - 3))
    return math.tanh(z - half), math.tanh(z + half)


def _table(data: FindingsData, key: str) -> pd.DataFrame:
    table = data.sections["robustness"].info.get(key)
    if not isinstance(table, pd.DataFrame):
        raise SkipCheck(f"the robustness section has no {key!r} table.")
    return table


def _broken_classes(per_class: pd.DataFrame, corruption: str, limit: int = 3) -> list[str]:
    """The classes with the lowest accuracy under ``corruption`` (averaged over severities)."""
    rows = per_class[(per_class["corruption"] == corruption) & (per_class["severity"] >= 1)]
    means = rows.groupby("class", sort=False)["accuracy"].mean().dropna()
    return [str(c) for c in means.sort_values(kind="stable").index[:limit]]


def robustness(data: FindingsData) -> list[Finding]:
    """The change that best matches the real drop, per out-of-domain set (module docstring)."""
    forecast = _table(data, "forecast")
    if forecast.empty:
        raise SkipCheck("the robustness sweep was not compared with an out-of-domain set.")
    per_class = _table(data, "per_class")
    findings = []
    usable = forecast[forecast["label_preserving"].astype(bool) & forecast["rho"].notna()]
    for set_name, rows in usable.groupby("set", sort=False):
        best = rows.sort_values("rho", ascending=False, kind="stable").iloc[0]
        # Holm over the changes compared: the best of many correlations is the one shown
        rho, p_value, n = float(best["rho"]), float(best["p_holm"]), int(best["n_classes"])
        if not (rho > 0 and p_value < data.options.alpha):
            continue
        low, high = spearman_interval(rho, n)
        evaluated = next((s for s in data.sets if s.name == set_name), None)
        n_images = evaluated.n_images if evaluated is not None else 0
        n_errors = (
            int(np.sum(evaluated.predictions.y_pred != evaluated.predictions.y_true))
            if evaluated is not None
            else 0
        )
        corruption = str(best["corruption"])
        broken = _broken_classes(per_class, corruption)
        ci = (
            f"95% CI {low:.2f} to {high:.2f}"
            if math.isfinite(low) and math.isfinite(high)
            else "no interval"
        )
        findings.append(
            make_finding(
                f"robustness:{set_name}",
                "robustness",
                score=conservative_images(n_errors, low),
                n_images=n_images,
                effect=("Spearman ρ, sweep vs real per-class accuracy", rho, low, high),
                sentence=say(
                    "robustness",
                    set=set_name,
                    corruption=corruption,
                    rho=f"{rho:.2f}",
                    ci=ci,
                    p=pvalue(p_value),
                    n=n,
                    classes=names(broken),
                ),
                evidence=Evidence(ROBUSTNESS_ANCHOR, str(set_name), tuple(broken), ()),
                suggestion=suggest("robustness", corruption=corruption, classes=names(broken)),
                numbers={"corruption": corruption, "rho": rho, "p_value": p_value, "n_classes": n},
            )
        )
    return findings


register_check(
    Check(
        "robustness",
        "corruption matching the real drop",
        robustness,
        order=90,
        requires=("robustness",),
        missing="no robustness sweep in this report (asl-eval report --stress).",
    )
)
