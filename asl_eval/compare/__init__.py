"""Comparing two models on the same images, and gating CI on real regressions (``asl-eval
compare``).

Two reports (their JSON and the per-image predictions CSV beside each) are read
(:mod:`~asl_eval.compare.reading`), their images paired by content hash and relative path
(:mod:`~asl_eval.compare.matching`), and compared set by set with McNemar's exact test, a
paired interval, the test's power and per-class tests (:mod:`~asl_eval.compare.comparison`,
:mod:`~asl_eval.compare.statistics`). The result prints as markdown or JSON
(:mod:`~asl_eval.compare.render`) and as a side-by-side HTML page
(:mod:`~asl_eval.compare.html`); :mod:`~asl_eval.compare.command` is the Typer command and
:mod:`~asl_eval.compare.evaluate` reports two model files first.

Layer: a sibling of :mod:`asl_eval.demo`, above :mod:`asl_eval.pipeline`; below
:mod:`asl_eval.cli`. Comparing two report files imports neither torch nor fastai: only
:mod:`~asl_eval.compare.evaluate` reaches the pipeline, inside its function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asl_eval._lazy import lazy_names

if TYPE_CHECKING:
    from asl_eval.compare.comparison import (
        EXIT_NOT_ENOUGH_EVIDENCE,
        EXIT_OK,
        EXIT_REGRESSION,
        CompareOptions,
        ComparisonResult,
        SetComparison,
        SkippedSet,
        compare_report_files,
        compare_sides,
    )
    from asl_eval.compare.reading import ReportSide, read_side
    from asl_eval.compare.statistics import mcnemar_power, paired_difference_interval

# The names load on first use (PEP 562), so `asl-eval --help`, which registers the compare
# command, does not import numpy, pandas and scipy.
_API = {
    "CompareOptions": "asl_eval.compare.comparison",
    "ComparisonResult": "asl_eval.compare.comparison",
    "EXIT_NOT_ENOUGH_EVIDENCE": "asl_eval.compare.comparison",
    "EXIT_OK": "asl_eval.compare.comparison",
    "EXIT_REGRESSION": "asl_eval.compare.comparison",
    "ReportSide": "asl_eval.compare.reading",
    "SetComparison": "asl_eval.compare.comparison",
    "SkippedSet": "asl_eval.compare.comparison",
    "compare_report_files": "asl_eval.compare.comparison",
    "compare_sides": "asl_eval.compare.comparison",
    "mcnemar_power": "asl_eval.compare.statistics",
    "paired_difference_interval": "asl_eval.compare.statistics",
    "read_side": "asl_eval.compare.reading",
}

__all__ = [
    "EXIT_NOT_ENOUGH_EVIDENCE",
    "EXIT_OK",
    "EXIT_REGRESSION",
    "CompareOptions",
    "ComparisonResult",
    "ReportSide",
    "SetComparison",
    "SkippedSet",
    "compare_report_files",
    "compare_sides",
    "mcnemar_power",
    "paired_difference_interval",
    "read_side",
]


__getattr__, __dir__ = lazy_names(__name__, _API, globals())
