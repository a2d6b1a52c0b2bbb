"""The shareable report: one self-contained HTML file, a JSON file with every number, and a
CSV of the per-image predictions.

Build a :class:`ReportContext` with :func:`build_context`, then :func:`write_report`.
"""

from __future__ import annotations

from asl_eval.report.context import (
    EvaluationSet,
    ModelInfo,
    ReportContext,
    build_context,
    runtime_versions,
)
from asl_eval.report.write import ReportFiles, write_report

__all__ = [
    "EvaluationSet",
    "ModelInfo",
    "ReportContext",
    "ReportFiles",
    "build_context",
    "runtime_versions",
    "write_report",
]
