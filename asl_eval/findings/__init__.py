"""Findings: the report says in plain words why the model fails, ranked, each linked to its
evidence (issue 16).

:func:`find` reads the evaluated sets (their :class:`asl_eval.metrics.Evaluation` and the
domain comparisons the report makes) and the optional sections (Grad-CAM, the leakage audit,
the robustness sweep, as :class:`~asl_eval.analysis.AnalysisResult` data), runs every
registered check and returns the ranked :class:`Finding` objects as the ``"findings"``
analysis, which the report shows at the top (``asl_eval/report/findings_section.py``) and
:func:`findings_text` prints on a terminal.

Modules, bottom to top: :mod:`~asl_eval.findings.model` (:class:`Finding`, the score),
:mod:`~asl_eval.findings.wording` (every sentence), :mod:`~asl_eval.findings.stats`,
:mod:`~asl_eval.findings.data` (what the checks read), :mod:`~asl_eval.findings.registry`,
:mod:`~asl_eval.findings.checks` (the built-in checks), :mod:`~asl_eval.findings.run`.

Layer: beside :mod:`asl_eval.cam` and :mod:`asl_eval.training`, below the report. Imports
numpy, pandas, scipy, :mod:`asl_eval.metrics`, :mod:`asl_eval.analysis`,
:mod:`asl_eval.predictions` and :mod:`asl_eval.errors`; never torch, fastai, the cam or
training stages, or the report.
"""

from __future__ import annotations

from asl_eval.findings import checks as _checks  # noqa: F401  (registers the built-in checks)
from asl_eval.findings.data import (
    DomainComparison,
    EvaluatedSet,
    FindingsData,
    FindingsOptions,
    FindingsSet,
    SkipCheck,
)
from asl_eval.findings.model import SCORE_DEFINITION, Evidence, Finding, Severity, Skipped
from asl_eval.findings.registry import Check, register_check, registered_checks, unregister_check
from asl_eval.findings.run import ITEM_COLUMNS, find, findings_of, findings_text, skipped_of

__all__ = [
    "ITEM_COLUMNS",
    "SCORE_DEFINITION",
    "Check",
    "DomainComparison",
    "EvaluatedSet",
    "Evidence",
    "Finding",
    "FindingsData",
    "FindingsOptions",
    "FindingsSet",
    "Severity",
    "SkipCheck",
    "Skipped",
    "find",
    "findings_of",
    "findings_text",
    "register_check",
    "registered_checks",
    "skipped_of",
    "unregister_check",
]
