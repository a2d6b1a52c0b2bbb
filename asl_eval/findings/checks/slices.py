"""The ``slice`` check: a metadata slice (a signer, a camera, a background) whose accuracy is
significantly below the rest of its column in its set, read from the ``"slices"`` section
(:func:`asl_eval.audit.slices.slice_analysis`) as data.

A slice value is a finding when the section marks it ``significant``: its accuracy is below
that of the column's other values together, and Fisher's exact test of the two, Holm-adjusted
over every value the section tested, is below the section's alpha. The effect is the drop
(the rest's accuracy minus the slice's) with Newcombe's interval
(:func:`asl_eval.findings.stats.newcombe_difference`); the score is the slice's images times
the lower end of that interval (:func:`asl_eval.findings.stats.conservative_images`), the
findings' common scale. Images without metadata are never a slice here.

Imports pandas and the findings' own modules.
"""

from __future__ import annotations

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
    percent,
    points,
    points_interval,
    pvalue,
    say,
    suggest,
)

__all__ = ["SLICES_ANCHOR", "slice_drop"]

#: The HTML id of the report's "Accuracy by slice" section.
SLICES_ANCHOR = "slices"

_NEEDED = ("set", "column", "value", "n", "correct", "n_rest", "correct_rest", "significant")


def _evidence_paths(
    data: FindingsData, result: AnalysisResult, set_name: str, column: str, value: str
) -> tuple[str, ...]:
    """The slice's misclassified images, highest loss first when the set is at hand."""
    items = result.items
    key = f"slice:{column}"
    if key not in items.columns:
        return ()
    rows = items[(items["set"] == set_name) & (items[key].astype(str) == value) & ~items["correct"]]
    paths = rows["path"].astype(str).tolist()
    predictions = next((s.predictions for s in data.sets if s.name == set_name), None)
    if predictions is not None:
        loss = dict(zip(predictions.paths, predictions.loss.tolist(), strict=True))
        paths.sort(key=lambda p: -loss.get(p, 0.0))
    return tuple(paths[: data.options.n_evidence_images])


def _finding(data: FindingsData, result: AnalysisResult, row: Mapping[Hashable, object]) -> Finding:
    set_name, column, value = str(row["set"]), str(row["column"]), str(row["value"])
    n, correct = int(number_or_nan(row, "n")), int(number_or_nan(row, "correct"))
    n_rest = int(number_or_nan(row, "n_rest"))
    correct_rest = int(number_or_nan(row, "correct_rest"))
    drop, low, high = newcombe_difference(correct_rest, n_rest, correct, n)
    # the section's own interval (at its confidence), so the finding quotes what the page shows
    accuracy_low = number_or_nan(row, "accuracy_low")
    accuracy_high = number_or_nan(row, "accuracy_high")
    sentence = say(
        "slice",
        set=set_name,
        column=column,
        value=value,
        acc=percent(correct / n),
        ci=interval(accuracy_low, accuracy_high),
        n=n,
        acc_rest=percent(correct_rest / n_rest),
        n_rest=n_rest,
        drop=points(drop),
        ci_drop=points_interval(low, high),
        p=pvalue(number_or_nan(row, "p_adjusted")),
    )
    size = next((s.n_images for s in data.sets if s.name == set_name), n + n_rest)
    return make_finding(
        f"slice:{set_name}:{column}={value}",
        "slice",
        score=conservative_images(n, low),
        n_images=size,
        effect=(f"accuracy drop of {column} {value}", drop, low, high),
        sentence=sentence,
        evidence=Evidence(
            SLICES_ANCHOR, set_name, (), _evidence_paths(data, result, set_name, column, value)
        ),
        suggestion=suggest("slice", column=column, value=value),
        numbers={
            "column": column,
            "value": value,
            "accuracy": correct / n,
            "accuracy_rest": correct_rest / n_rest,
            "n": n,
            "n_rest": n_rest,
            "p_adjusted": number_or_nan(row, "p_adjusted"),
        },
    )


def slice_drop(data: FindingsData) -> list[Finding]:
    """Slice values significantly below the rest of their column (the section's Holm-adjusted
    Fisher test), one finding each, scored by the slice's images times the lower end of the
    drop's Newcombe interval."""
    result = data.sections["slices"]
    slices = result.info.get("slices")
    if not isinstance(slices, pd.DataFrame) or not set(_NEEDED) <= set(slices.columns):
        raise SkipCheck(
            "the slices section has no per-value table with the value-vs-rest test "
            f"(info['slices'] with {', '.join(_NEEDED)})."
        )
    flagged = slices[slices["significant"].astype(bool) & (slices["n"] > 0)]
    flagged = flagged[flagged["n_rest"] > 0]
    return [_finding(data, result, row) for row in flagged.to_dict(orient="records")]


register_check(
    Check(
        "slice",
        "a metadata slice below the rest",
        slice_drop,
        order=85,
        requires=("slices",),
        missing="no slices in this report (--metadata CSV).",
    )
)
