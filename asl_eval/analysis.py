"""The shape every analysis stage returns (Grad-CAM today; the data audit, the robustness sweep
and the findings as they land), so the report composes its optional sections from a registry
instead of knowing each one.

The shape is cleanlab's issue-manager shape: a per-item table, a one-row summary and an info
dict. Imports pandas only; every stage may import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from asl_eval.errors import ReportError

__all__ = ["AnalysisResult"]


@dataclass(frozen=True)
class AnalysisResult:
    """One analysis of one report: what a stage computed, ready for the report and the JSON.

    Attributes
    ----------
    name
        The stage's stable key (``"cam"``); the report's section registry is keyed by it.
    items
        One row per analysed item (an image, a pair of images, a class), with the columns the
        stage documents.
    summary
        Exactly one row: the headline numbers of the analysis.
    info
        Everything else the section shows: parameters, smaller tables, encoded figures (bytes).
    """

    name: str
    items: pd.DataFrame
    summary: pd.DataFrame
    info: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "_").isidentifier():
            raise ReportError(
                f"an analysis needs a short identifier as its name; got {self.name!r}."
            )
        if len(self.summary) != 1:
            raise ReportError(
                f"the summary of analysis {self.name!r} must have exactly one row; "
                f"it has {len(self.summary)}."
            )

    def summary_record(self) -> dict[str, object]:
        """The summary row as a plain dict (for the JSON)."""
        return {str(key): value for key, value in self.summary.iloc[0].items()}
