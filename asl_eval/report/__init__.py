"""The shareable report: one self-contained HTML file, a JSON file with every number, and a
CSV of the per-image predictions.

Build a :class:`ReportContext` with :func:`build_context` (every number, figure, thumbnail and
optional section is made there), then :func:`write_report` renders and writes it. Optional
analyses (:class:`asl_eval.analysis.AnalysisResult`) appear through the section registry
(:mod:`asl_eval.report.registry`). :func:`read_report_json` reads a report's JSON back.

Modules: ``data`` (the dataclasses), ``context`` (building them), ``figures``, ``tables``,
``sections`` and ``registry`` (what building needs), ``render`` (Jinja2), ``serialize`` (the
JSON), ``reading`` (the JSON read back), ``write`` (the files). The report imports Jinja2,
matplotlib (through :mod:`asl_eval.plots`) and the stages below it, never torch or fastai.
"""

from __future__ import annotations

from asl_eval.report import audit_section as _audit_section  # noqa: F401  (registers leakage)
from asl_eval.report import cam_section as _cam_section  # noqa: F401  (registers Grad-CAM)
from asl_eval.report import domains_section as _domains_section  # noqa: F401  (registers domains)
from asl_eval.report import embeddings_section as _embeddings_section  # noqa: F401  (registers embeddings)
from asl_eval.report import findings_section as _findings_section  # noqa: F401  (registers findings)
from asl_eval.report import robustness_section as _robustness_section  # noqa: F401  (registers robustness)
from asl_eval.report import slices_section as _slices_section  # noqa: F401  (registers slices)
from asl_eval.report.context import build_context, runtime_versions
from asl_eval.report.data import EvaluationSet, ModelInfo, ReportContext
from asl_eval.report.reading import read_report_json
from asl_eval.report.registry import SectionSpec, register_section
from asl_eval.report.sharing import Sharing
from asl_eval.report.write import ReportFiles, write_report

__all__ = [
    "EvaluationSet",
    "ModelInfo",
    "ReportContext",
    "ReportFiles",
    "SectionSpec",
    "Sharing",
    "build_context",
    "read_report_json",
    "register_section",
    "runtime_versions",
    "write_report",
]
