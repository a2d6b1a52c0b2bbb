"""The report's findings section ("What we found"): how the ``"findings"`` analysis
(:func:`asl_eval.findings.find`) becomes template variables and a JSON block.

Registered with the section registry when this module is imported (``asl_eval.report``
imports it) with the smallest ``order``, so it is the first optional section; the main
template places it above the overview. ``build`` picks the top :data:`N_TOP` findings and
every number the template prints, so ``findings.html.j2`` only loops and prints; ``to_json``
gives every finding with its numbers.

Imports pandas, the analysis shape, the findings (their dataclasses), the registry and the
report's serialisation; never torch.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

from asl_eval.analysis import AnalysisResult
from asl_eval.findings import findings_of, skipped_of
from asl_eval.report.registry import SectionSpec, register_section
from asl_eval.report.serialize import clean

__all__ = ["FINDINGS_SECTION", "N_TOP", "FindingView", "build", "to_json"]

#: How many findings the page lists before the rest (which fold away).
N_TOP = 7


@dataclass(frozen=True)
class FindingView:
    """One finding as the template prints it."""

    rank: int
    severity: str
    sentence: str
    suggestion: str
    anchor: str
    set_name: str
    score: float
    file_names: tuple[str, ...]


def _file_name(path: object) -> str:
    return str(path).replace("\\", "/").rsplit("/", 1)[-1]


def _view(row: Mapping[Hashable, object]) -> FindingView:
    paths = row["paths"]
    return FindingView(
        rank=int(row["rank"]),  # type: ignore[call-overload]
        severity=str(row["severity"]),
        sentence=str(row["sentence"]),
        suggestion=str(row["suggestion"]),
        anchor=str(row["anchor"]),
        set_name=str(row["set"]),
        score=float(row["score"]),  # type: ignore[arg-type]
        file_names=tuple(_file_name(p) for p in paths) if isinstance(paths, list) else (),
    )


def build(result: AnalysisResult) -> dict[str, object]:
    """The template variables of the findings section (see ``findings.html.j2``)."""
    views = [_view(row) for row in result.items.to_dict(orient="records")]
    summary = result.summary_record()
    return {
        "top": tuple(views[:N_TOP]),
        "more": tuple(views[N_TOP:]),
        "n_findings": len(views),
        "score_definition": str(summary["score_definition"]),
        "skipped": tuple((s.title, s.reason) for s in skipped_of(result)),
    }


def to_json(result: AnalysisResult) -> dict[str, object]:
    """The findings block of the report's JSON: every finding, ranked, with its numbers and
    evidence, the skipped checks and the thresholds."""
    findings = [
        {
            "rank": rank,
            "id": f.id,
            "check": f.check,
            "severity": f.severity,
            "score": clean(f.score),
            "effect": {
                "name": f.effect_name,
                "value": clean(f.effect),
                "low": clean(f.effect_low),
                "high": clean(f.effect_high),
            },
            "sentence": f.sentence,
            "suggestion": f.suggestion,
            "evidence": clean(
                {
                    "anchor": f.evidence.anchor,
                    "set": f.evidence.set_name,
                    "classes": list(f.evidence.classes),
                    "paths": list(f.evidence.paths),
                }
            ),
            "numbers": clean(dict(f.numbers)),
        }
        for rank, f in enumerate(findings_of(result), start=1)
    ]
    summary = result.summary_record()
    return {
        "score_definition": str(summary["score_definition"]),
        "findings": findings,
        "skipped": [
            {"check": s.check, "title": s.title, "reason": s.reason} for s in skipped_of(result)
        ],
        "options": clean(result.info.get("options", {})),
    }


def _register() -> SectionSpec:
    """Register the section (importing this module again replaces its own spec)."""
    spec = SectionSpec(
        key="findings",
        title="What we found",
        anchor="findings",
        template="findings.html.j2",
        build=build,
        to_json=to_json,
        order=0,
    )
    return register_section(spec)


FINDINGS_SECTION = _register()
