"""Running the checks: :func:`find` gathers the data, runs every registered check, ranks the
findings and returns them as the ``"findings"`` :class:`~asl_eval.analysis.AnalysisResult`;
:func:`findings_text` prints the top ones for a terminal.

Imports pandas, :mod:`asl_eval.analysis`, :mod:`asl_eval.errors` and the findings' own modules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import pandas as pd

from asl_eval.analysis import AnalysisResult
from asl_eval.errors import MetricError, printable
from asl_eval.findings.data import FindingsData, FindingsOptions, FindingsSet, SkipCheck, gather
from asl_eval.findings.model import SCORE_DEFINITION, SEVERITIES, Finding, Skipped
from asl_eval.findings.registry import Check, registered_checks

__all__ = ["ITEM_COLUMNS", "find", "findings_of", "findings_text", "rank", "skipped_of"]

ITEM_COLUMNS: tuple[str, ...] = (
    "rank",
    "id",
    "check",
    "severity",
    "score",
    "set",
    "effect_name",
    "effect",
    "effect_low",
    "effect_high",
    "sentence",
    "suggestion",
    "anchor",
    "classes",
    "paths",
)
"""The columns of the result's ``items`` table (one row per finding, best first)."""


def _run(check: Check, data: FindingsData) -> tuple[list[Finding], Skipped | None]:
    missing = [key for key in check.requires if key not in data.sections]
    if missing:
        return [], Skipped(check.key, check.title, check.missing or f"no {missing[0]} section.")
    try:
        return list(check.run(data)), None
    except SkipCheck as skip:
        return [], Skipped(check.key, check.title, str(skip))


def rank(findings: Sequence[Finding], checks: Sequence[Check]) -> list[Finding]:
    """``findings`` best first: by score (descending), then the checks' registry order, then
    the id (:data:`~asl_eval.findings.model.SCORE_DEFINITION`)."""
    order = {check.key: position for position, check in enumerate(checks)}
    return sorted(findings, key=lambda f: (-f.score, order.get(f.check, len(order)), f.id))


def _items(ranked: Sequence[Finding]) -> pd.DataFrame:
    rows = [
        {
            "rank": position,
            "id": f.id,
            "check": f.check,
            "severity": f.severity,
            "score": f.score,
            "set": f.evidence.set_name,
            "effect_name": f.effect_name,
            "effect": f.effect,
            "effect_low": f.effect_low,
            "effect_high": f.effect_high,
            "sentence": f.sentence,
            "suggestion": f.suggestion,
            "anchor": f.evidence.anchor,
            "classes": list(f.evidence.classes),
            "paths": list(f.evidence.paths),
        }
        for position, f in enumerate(ranked, start=1)
    ]
    return pd.DataFrame(rows, columns=list(ITEM_COLUMNS))


def find(
    sets: Sequence[FindingsSet],
    *,
    sections: Mapping[str, AnalysisResult] | None = None,
    options: FindingsOptions | None = None,
) -> AnalysisResult:
    """Run every registered check on the evaluated sets and the optional sections.

    Parameters
    ----------
    sets
        The report's sets in its order, each with its role; the first in-domain set is the
        reference of every domain comparison, as in the report.
    sections
        The report's optional analyses keyed by name (``"cam"``, ``"leakage"``, ...); checks
        that need a missing one are skipped with a note.
    options
        The checks' thresholds (:class:`FindingsOptions`).

    Returns
    -------
    AnalysisResult
        Named ``"findings"``. ``items``: one row per finding, best first (columns
        :data:`ITEM_COLUMNS`). ``summary``: ``n_findings``, one count per severity
        (``n_high`` ...), ``n_checks``, ``n_skipped``, ``alpha``, ``score_definition``.
        ``info``: ``findings`` (the :class:`Finding` objects, ranked), ``skipped`` (DataFrame
        ``check``, ``title``, ``reason``) and ``options`` (the thresholds as a dict).
    """
    options = options or FindingsOptions()
    given = {k: v for k, v in (sections or {}).items() if k != "findings"}
    data = gather(sets, given, options)
    checks = registered_checks()
    found: list[Finding] = []
    skipped: list[Skipped] = []
    for check in checks:
        findings, skip = _run(check, data)
        found.extend(findings)
        skipped.extend([skip] if skip is not None else [])
    ids = [f.id for f in found]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise MetricError(f"two findings share the id {repeated[0]!r}; ids must be unique.")
    ranked = rank(found, checks)
    summary: dict[str, object] = {"n_findings": len(ranked)}
    summary.update({f"n_{s}": sum(f.severity == s for f in ranked) for s in SEVERITIES})
    summary.update(
        n_checks=len(checks),
        n_skipped=len(skipped),
        alpha=options.alpha,
        score_definition=SCORE_DEFINITION,
    )
    info: dict[str, object] = {
        "findings": tuple(ranked),
        "skipped": pd.DataFrame(
            [dataclasses.asdict(s) for s in skipped], columns=["check", "title", "reason"]
        ),
        "options": dataclasses.asdict(options),
    }
    return AnalysisResult("findings", _items(ranked), pd.DataFrame([summary]), info)


def _checked(result: AnalysisResult) -> AnalysisResult:
    if result.name != "findings":
        raise MetricError(f"expected the 'findings' analysis; got {result.name!r}.")
    return result


def findings_of(result: AnalysisResult) -> tuple[Finding, ...]:
    """The ranked :class:`Finding` objects of a :func:`find` result."""
    found = _checked(result).info.get("findings", ())
    if not isinstance(found, tuple) or not all(isinstance(f, Finding) for f in found):
        raise MetricError("the findings analysis lacks its findings (info['findings']).")
    return found


def skipped_of(result: AnalysisResult) -> tuple[Skipped, ...]:
    """The checks a :func:`find` result skipped, with their reasons."""
    table = _checked(result).info.get("skipped")
    if not isinstance(table, pd.DataFrame):
        return ()
    return tuple(
        Skipped(str(r["check"]), str(r["title"]), str(r["reason"]))
        for r in table.to_dict(orient="records")
    )


def findings_text(result: AnalysisResult, *, limit: int = 3) -> str:
    """The top ``limit`` findings as numbered lines for a terminal (control characters in
    class and file names shown as visible escapes), and how many more the report holds.

    Returns "" when there is no finding.
    """
    items = _checked(result).items
    lines = [
        f"{int(row['rank'])}. [{row['severity']}] {printable(row['sentence'])}"
        for row in items.head(limit).to_dict(orient="records")
    ]
    rest = len(items) - len(lines)
    if rest > 0:
        lines.append(f"... and {rest} more finding{'s' if rest != 1 else ''} in the report.")
    return "\n".join(lines)
