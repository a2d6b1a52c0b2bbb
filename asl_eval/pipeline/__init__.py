"""The report job end to end: model file and folders in, report files out.

This is what ``asl-eval report`` and ``asl-eval demo`` call; the CLI only parses arguments.

Modules: :mod:`~asl_eval.pipeline.request` (what a report asks for),
:mod:`~asl_eval.pipeline.sections` (the optional analyses, one function each) and
:mod:`~asl_eval.pipeline.run` (:func:`run_report`).

Layer: above :mod:`asl_eval.report`, below :mod:`asl_eval.demo` and :mod:`asl_eval.cli`.
Imports the stages it runs (:mod:`asl_eval.trust`, :mod:`asl_eval.inference`,
:mod:`asl_eval.training` for the record next to a model, :mod:`asl_eval.cam`,
:mod:`asl_eval.audit`, :mod:`asl_eval.report`) inside its functions, so importing it stays light.
"""

from __future__ import annotations

from asl_eval.pipeline.request import CamOptions, ReportRequest, StressOptions, name_sets
from asl_eval.pipeline.run import run_report

__all__ = ["CamOptions", "ReportRequest", "StressOptions", "name_sets", "run_report"]
