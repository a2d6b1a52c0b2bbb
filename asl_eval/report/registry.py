"""The report's section registry: how an analysis stage's :class:`AnalysisResult` becomes a
section of the HTML page and a block of the JSON, without the main template knowing the stage.

A stage's section is one :class:`SectionSpec`, registered under the stage's key. The spec's
``build`` turns the result into the template's variables (figures encoded, numbers formatted
as needed: the template only loops and prints); ``to_json`` gives the JSON block. Built-in
sections register themselves when :mod:`asl_eval.report` is imported; other code may call
:func:`register_section`.

Imports the analysis shape and the errors only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from asl_eval.analysis import AnalysisResult
from asl_eval.errors import ReportError

__all__ = [
    "PAGE_ANCHORS",
    "SectionSpec",
    "register_section",
    "registered_sections",
    "section_spec",
    "unregister_section",
]


@dataclass(frozen=True)
class SectionSpec:
    """How one kind of analysis appears in the report.

    Attributes
    ----------
    key
        The :attr:`AnalysisResult.name` this spec renders.
    title
        The section's heading and its entry in the page's navigation.
    anchor
        The section's HTML id, without ``#`` (``"cam"``); findings link to ``#cam``. A
        leading ``#`` is dropped.
    template
        A template file in ``asl_eval/report/templates``; it sees ``section`` (what ``build``
        returned) and ``title``.
    build
        The result to the template's variables.
    to_json
        The result to its JSON block (plain data: numbers, strings, lists, dicts).
    order
        Position on the page among the optional sections (smaller first).
    placeholder
        Text shown under the section's title when a report lacks this analysis (say how to
        get it); empty: the section is left out of such a report.
    """

    key: str
    title: str
    anchor: str
    template: str
    build: Callable[[AnalysisResult], Mapping[str, object]]
    to_json: Callable[[AnalysisResult], Mapping[str, object]]
    order: int = 100
    placeholder: str = ""

    def __post_init__(self) -> None:
        anchor = self.anchor.removeprefix("#")
        if not anchor or not anchor.replace("-", "_").isidentifier():
            raise ReportError(
                f"Section {self.key!r} needs an HTML id such as 'cam' as its anchor; "
                f"got {self.anchor!r}."
            )
        object.__setattr__(self, "anchor", anchor)


_REGISTRY: dict[str, SectionSpec] = {}

PAGE_ANCHORS = frozenset(
    {"headline", "overview", "per-class", "confusion", "pairs", "calibration", "gallery"}
    | {"ledger", "about", "predicted-classes"}
)
"""The HTML ids of the page's fixed sections, which no optional section may take."""


def register_section(spec: SectionSpec, *, replace: bool = False) -> SectionSpec:
    """Register ``spec`` under its key; a second spec for one key is an error unless
    ``replace`` or it comes from the same module (a module imported again, as
    ``--import-mode=importlib`` and reloads do)."""
    known = _REGISTRY.get(spec.key)
    same_module = known is not None and known.build.__module__ == spec.build.__module__
    if known is not None and not (replace or same_module) and known is not spec:
        raise ReportError(f"A report section is already registered for {spec.key!r}.")
    taken = {other.anchor for other in _REGISTRY.values() if other.key != spec.key}
    if spec.anchor in taken | PAGE_ANCHORS:
        raise ReportError(
            f"Section {spec.key!r} wants the HTML id {spec.anchor!r}, which the page already "
            "uses; choose another anchor."
        )
    _REGISTRY[spec.key] = spec
    return spec


def unregister_section(key: str) -> SectionSpec | None:
    """Remove the spec registered for ``key`` (tests, plugins); return it, or None."""
    return _REGISTRY.pop(key, None)


def section_spec(key: str) -> SectionSpec:
    """The spec registered for ``key``."""
    try:
        return _REGISTRY[key]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise ReportError(
            f"No report section is registered for analysis {key!r} (registered: {known})."
        ) from None


def registered_sections() -> tuple[SectionSpec, ...]:
    """Every registered spec, in page order."""
    return tuple(sorted(_REGISTRY.values(), key=lambda spec: (spec.order, spec.key)))
