"""The check on the ``"domains"`` analysis (:mod:`asl_eval.audit.domains`, read as data): the
image properties that differ most between the domains, with the accuracy of the weakest
segment.

``domain-property``: for each out-of-domain set, among the properties that differ from the
in-domain set significantly after Holm (the analysis' ``p_adjusted`` below the findings'
``alpha``), those whose weakest bin in the set (lowest accuracy) has a 95% Wilson interval
entirely below that of the set's other images (the analysis' ``separated``; disjoint intervals
guard against picking the weakest of several bins and properties by chance). The one with the
largest score is the finding: the weak bin's images times the lower end of Newcombe's interval
of "accuracy on the other images − accuracy in the weak bin" (the images the weak segment's
extra errors account for, at the conservative end).

Imports numpy, pandas and the findings' own modules.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping

import numpy as np
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
    say,
    suggest,
)

__all__ = ["DOMAINS_ANCHOR", "domain_property"]

#: The HTML id of the report's domain-differences section.
DOMAINS_ANCHOR = "domains"

# The property's name in a sentence, and the augmentation that widens training along it.
_WORDS = {
    "brightness": ("brightness", "brightness and exposure changes"),
    "contrast": ("contrast", "contrast changes"),
    "sharpness": ("sharpness", "blur and resolution changes"),
    "colourfulness": ("colourfulness", "colour jitter and white-balance changes"),
    "background_share": ("background share", "zoom, crops and background replacement"),
    "width": ("width", "resizing as in this set"),
    "height": ("height", "resizing as in this set"),
    "aspect_ratio": ("aspect ratio", "cropping and padding as in this set"),
}


def _word(prop: str) -> str:
    return _WORDS.get(prop, (prop.replace("_", " "), ""))[0]


def _value(value: float) -> str:
    return f"{value:.3g}"


def _d(value: float) -> str:
    if math.isinf(value):
        return "d = " + ("∞" if value > 0 else "−∞")
    return f"d = {value:.2f}".replace("-", "−")


def _table(result: AnalysisResult, key: str, columns: tuple[str, ...]) -> pd.DataFrame:
    table = result.info.get(key)
    if not isinstance(table, pd.DataFrame) or not set(columns) <= set(table.columns):
        raise SkipCheck(f"the domains section has no {key} table with columns {list(columns)}.")
    return table


def _candidate(segment: Mapping[Hashable, object]) -> tuple[float, float, float, float]:
    """``(score, gap, low, high)`` of one weakest segment against the rest of its set."""
    n, c = int(number_or_nan(segment, "n")), int(number_or_nan(segment, "n_correct"))
    rest_n = int(number_or_nan(segment, "rest_n"))
    rest_c = int(number_or_nan(segment, "rest_correct"))
    gap, low, high = newcombe_difference(rest_c, rest_n, c, n)
    return conservative_images(n, low), gap, low, high


def _set_finding(
    data: FindingsData,
    result: AnalysisResult,
    name: str,
    differing: pd.DataFrame,
    segments: pd.DataFrame,
) -> list[Finding]:
    best: tuple[float, Mapping[Hashable, object], tuple[float, float, float]] | None = None
    for prop in differing["property"].astype(str):
        rows = segments[(segments["set"] == name) & (segments["property"] == prop)]
        if rows.empty or not bool(rows["separated"].iloc[0]):
            continue
        found: Mapping[Hashable, object] = rows.iloc[0].to_dict()
        score, gap, low, high = _candidate(found)
        if score > 0 and (best is None or score > best[0]):
            best = (score, found, (gap, low, high))
    if best is None:
        return []
    score, segment, (gap, low, high) = best
    prop = str(segment["property"])
    reference = str(result.summary_record().get("in_domain_set", ""))
    limit = data.options.n_worst_classes
    top = [
        f"{_word(str(r['property']))} ({_d(number_or_nan(r, 'smd'))})"
        for r in differing.to_dict("records")
    ]
    n, c = int(number_or_nan(segment, "n")), int(number_or_nan(segment, "n_correct"))
    rest_n = int(number_or_nan(segment, "rest_n"))
    rest_c = int(number_or_nan(segment, "rest_correct"))
    sentence = say(
        "domain-property",
        set=name,
        in_set=reference,
        top=names(top, limit),
        acc_weak=percent(c / n),
        c_weak=c,
        n_weak=n,
        ci_weak=interval(
            number_or_nan(segment, "accuracy_low"), number_or_nan(segment, "accuracy_high")
        ),
        level=str(segment["bin_label"]),
        property=_word(prop),
        range="–".join(_value(number_or_nan(segment, key)) for key in ("lower", "upper")),
        acc_rest=percent(rest_c / rest_n),
        c_rest=rest_c,
        n_rest=rest_n,
        ci_rest=interval(
            number_or_nan(segment, "rest_accuracy_low"),
            number_or_nan(segment, "rest_accuracy_high"),
        ),
        gap=points(gap),
        ci=points_interval(low, high),
    )
    items = result.items
    column = f"bin:{prop}"
    weak = items[(items["set"] == name) & ~items["correct"].astype(bool)]
    if column in items.columns:
        weak = weak[weak[column] == int(number_or_nan(segment, "bin"))]
    paths = tuple(weak["path"].astype(str)[: data.options.n_evidence_images])
    n_set = next((s.n_images for s in data.sets if s.name == name), n + rest_n)
    return [
        make_finding(
            f"domain-property:{name}",
            "domain-property",
            score=score,
            n_images=n_set,
            effect=(f"accuracy gap at {segment['bin_label']} {_word(prop)}", gap, low, high),
            sentence=sentence,
            evidence=Evidence(DOMAINS_ANCHOR, name, (), paths),
            suggestion=suggest(
                "domain-property",
                level=str(segment["bin_label"]),
                property=_word(prop),
                augmentation=_WORDS.get(prop, ("", "matching augmentation"))[1],
            ),
            numbers={
                "property": prop,
                "accuracy_weak": c / n,
                "accuracy_rest": rest_c / rest_n,
                "smd": number_or_nan(
                    differing[differing["property"] == prop].iloc[0].to_dict(), "smd"
                ),
            },
        )
    ]


def domain_property(data: FindingsData) -> list[Finding]:
    """The image properties that differ most between domains, with the accuracy of the
    weakest segment: one finding per out-of-domain set (see the module's docstring)."""
    result = data.sections["domains"]
    differences = _table(result, "differences", ("set", "property", "smd", "p_adjusted", "rank"))
    segments = _table(
        result,
        "segments",
        ("set", "property", "bin", "n", "n_correct", "rest_n", "rest_correct", "separated"),
    )
    findings: list[Finding] = []
    for name in dict.fromkeys(differences["set"].astype(str)):
        rows = differences[differences["set"].astype(str) == name]
        p_adjusted = rows["p_adjusted"].to_numpy(dtype=np.float64)
        differing = rows[np.isfinite(p_adjusted) & (p_adjusted < data.options.alpha)]
        differing = differing.sort_values("rank", kind="stable")
        if not differing.empty:
            findings += _set_finding(data, result, name, differing, segments)
    return findings


register_check(
    Check(
        "domain-property",
        "image properties behind the out-of-domain errors",
        domain_property,
        order=85,
        requires=("domains",),
        missing="no domain-differences section in this report (report --audit).",
    )
)
