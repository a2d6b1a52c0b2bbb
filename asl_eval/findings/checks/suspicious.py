"""Checks on the embedding analysis (``"embeddings"``, :mod:`asl_eval.audit.embeddings`), read
as data:

- ``suspicious-labels``: images the model calls another class with high confidence while most
  of their nearest training images agree with the model (possible label or file errors); the
  analysis flags them, the check counts them per set;
- ``embedding-distance``: accuracy falls with the distance from the training images: the
  nearest distance bin's accuracy minus the farthest bin's, with Newcombe's interval above 0,
  and misclassified images further away than correct ones (one-sided Mann–Whitney p below
  ``alpha``).

Both are skipped with a note when the report has no embedding analysis.

Imports pandas and the findings' own modules.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping

import pandas as pd

from asl_eval.analysis import AnalysisResult, number_or_nan
from asl_eval.findings.checks.common import make_finding
from asl_eval.findings.data import FindingsData, SkipCheck
from asl_eval.findings.model import Evidence, Finding
from asl_eval.findings.registry import Check, register_check
from asl_eval.findings.stats import conservative_images, newcombe_difference
from asl_eval.findings.wording import (
    interval,
    names,
    percent,
    points,
    points_interval,
    pvalue,
    say,
    suggest,
)
from asl_eval.metrics import wilson_interval

__all__ = ["EMBEDDINGS_ANCHOR", "embedding_distance", "suspicious_labels"]

#: The HTML id of the report's embedding-drift section.
EMBEDDINGS_ANCHOR = "embeddings"

_MISSING = "no embeddings in this report (report --embeddings / audit --model)."


def _table(result: AnalysisResult, key: str, columns: tuple[str, ...]) -> pd.DataFrame:
    table = result.info.get(key)
    if not isinstance(table, pd.DataFrame) or not set(columns) <= set(table.columns):
        raise SkipCheck(
            f"the embeddings section has no {key!r} table with {', '.join(columns)} "
            f"(info[{key!r}])."
        )
    return table


def suspicious_labels(data: FindingsData) -> list[Finding]:
    """Per set, the images the embedding analysis flags as suspicious labels (its
    ``suspicious`` column: confidence at or above its threshold, most training neighbours of
    the predicted class, within the training images' own distances). Scored by the set's
    images times the lower Wilson bound of the flagged share."""
    result = data.sections["embeddings"]
    items = result.items
    needed = ("set", "path", "y_true", "y_pred", "confidence", "suspicious")
    if not set(needed) <= set(items.columns):
        raise SkipCheck(f"the embeddings section's items lack {', '.join(needed)}.")
    summary = result.summary_record()
    findings = []
    for name, part in items.groupby("set", sort=False):
        flagged = part[part["suspicious"].astype(bool)].sort_values(
            "confidence", ascending=False, kind="stable"
        )
        m, n = len(flagged), len(part)
        if m == 0:
            continue
        low, high = wilson_interval(m, n)
        pairs = [f"{row.y_true} called {row.y_pred}" for row in flagged.itertuples()]
        sentence = say(
            "suspicious-labels",
            set=name,
            m=m,
            n=n,
            share=percent(m / n),
            ci=interval(low, high),
            threshold=percent(number_or_nan(summary, "high_confidence")),
            k=int(number_or_nan(summary, "k")),
            examples=names(pairs, 3),
        )
        findings.append(
            make_finding(
                f"suspicious-labels:{name}",
                "suspicious-labels",
                score=conservative_images(n, low),
                n_images=n,
                effect=("share of suspicious labels", m / n, low, high),
                sentence=sentence,
                evidence=Evidence(
                    EMBEDDINGS_ANCHOR,
                    str(name),
                    tuple(dict.fromkeys(flagged["y_true"].astype(str))),
                    tuple(flagged["path"].astype(str)[: data.options.n_evidence_images]),
                ),
                suggestion=suggest("suspicious-labels"),
                numbers={"suspicious": m, "images": n},
            )
        )
    return findings


def _distance_finding(
    data: FindingsData, name: str, bins: pd.DataFrame, row: Mapping[Hashable, object]
) -> list[Finding]:
    p = number_or_nan(row, "error_distance_p")
    if len(bins) < 2 or not (math.isfinite(p) and p < data.options.alpha):
        return []
    near, far = bins.iloc[0], bins.iloc[-1]
    c_near, n_near = int(near["n_correct"]), int(near["n_images"])
    c_far, n_far = int(far["n_correct"]), int(far["n_images"])
    diff, low, high = newcombe_difference(c_near, n_near, c_far, n_far)
    if not (math.isfinite(low) and low > 0):
        return []
    sentence = say(
        "embedding-distance",
        set=name,
        acc_near=percent(c_near / n_near),
        c_near=c_near,
        n_near=n_near,
        acc_far=percent(c_far / n_far),
        c_far=c_far,
        n_far=n_far,
        diff=points(diff),
        ci=points_interval(low, high),
        auc=percent(number_or_nan(row, "error_distance_auc")),
        p=pvalue(p),
    )
    return [
        make_finding(
            f"embedding-distance:{name}",
            "embedding-distance",
            score=conservative_images(n_far, low),
            n_images=int(number_or_nan(row, "n_images")),
            effect=("accuracy nearest minus farthest", diff, low, high),
            sentence=sentence,
            evidence=Evidence(EMBEDDINGS_ANCHOR, name),
            suggestion=suggest("embedding-distance"),
            numbers={"accuracy_near": c_near / n_near, "accuracy_far": c_far / n_far, "p": p},
        )
    ]


def embedding_distance(data: FindingsData) -> list[Finding]:
    """Accuracy falls with the distance from training, per set: the Mann–Whitney test of the
    analysis (misclassified images further away) below ``alpha`` and the nearest bin's
    accuracy above the farthest bin's (Newcombe's interval above 0). Scored by the farthest
    bin's images times that lower bound."""
    result = data.sections["embeddings"]
    sets = _table(result, "sets", ("set", "n_images", "error_distance_auc", "error_distance_p"))
    bins = _table(result, "distance_bins", ("set", "bin", "n_images", "n_correct"))
    findings = []
    for row in sets.to_dict(orient="records"):
        name = str(row["set"])
        part = bins[bins["set"] == name].sort_values("bin", kind="stable")
        findings += _distance_finding(data, name, part, row)
    return findings


register_check(
    Check(
        "suspicious-labels",
        "suspicious labels (confident errors the training neighbours agree with)",
        suspicious_labels,
        order=85,
        requires=("embeddings",),
        missing=_MISSING,
    )
)
register_check(
    Check(
        "embedding-distance",
        "accuracy falling with distance from the training images",
        embedding_distance,
        order=86,
        requires=("embeddings",),
        missing=_MISSING,
    )
)
