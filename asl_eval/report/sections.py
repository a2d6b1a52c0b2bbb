"""The report's optional sections: each analysis given to the report (an
:class:`AnalysisResult`) goes through the :class:`SectionSpec` registered for its name, once
for the page (``build``) and once for the JSON (``to_json``).

Imports the analysis shape, the registry and the report's dataclasses only.
"""

from __future__ import annotations

from collections.abc import Mapping

from asl_eval.analysis import AnalysisResult
from asl_eval.errors import ReportError
from asl_eval.report.data import BuiltSection
from asl_eval.report.registry import registered_sections, section_spec

__all__ = ["build_sections", "check_sections", "section_blocks"]


def check_sections(sections: Mapping[str, AnalysisResult]) -> dict[str, AnalysisResult]:
    """The analyses keyed by name, each with a registered section; anything else is an error."""
    checked: dict[str, AnalysisResult] = {}
    for key, result in sections.items():
        if not isinstance(result, AnalysisResult):
            raise ReportError(
                f"Report section {key!r} must be an asl_eval.analysis.AnalysisResult; "
                f"got {type(result).__name__}."
            )
        if result.name != key:
            raise ReportError(
                f"Report section {key!r} holds the analysis named {result.name!r}; "
                "key each analysis by its name."
            )
        section_spec(key)  # raises, naming the registered ones, when nothing renders it
        checked[key] = result
    return checked


def build_sections(sections: Mapping[str, AnalysisResult]) -> tuple[BuiltSection, ...]:
    """Every registered section in page order, built from its analysis when the report has
    one; a registered section the report lacks keeps its placeholder (or nothing)."""
    built = []
    for spec in registered_sections():
        result = sections.get(spec.key)
        if result is None and not spec.placeholder:
            continue
        built.append(
            BuiltSection(
                key=spec.key,
                title=spec.title,
                anchor=spec.anchor,
                template=spec.template,
                placeholder=spec.placeholder,
                variables=None if result is None else dict(spec.build(result)),
            )
        )
    return tuple(built)


def section_blocks(sections: Mapping[str, AnalysisResult]) -> dict[str, Mapping[str, object]]:
    """The JSON block of every analysis the report has, keyed by name."""
    return {key: section_spec(key).to_json(result) for key, result in sections.items()}
