"""The robustness sweep (issue 15): which image changes break which classes, measured on
in-domain images before any out-of-domain photo exists.

Modules, bottom to top:

- :mod:`~asl_eval.stress.catalogue`: every change in words (family, label-preserving, what each
  severity does), the default subset (standard library only);
- :mod:`~asl_eval.stress.background`: background replacement with generated backgrounds around
  the audit's foreground estimate (numpy, scipy);
- :mod:`~asl_eval.stress.corruptions`: the changes, made by albumentations, seeded per image;
- :mod:`~asl_eval.stress.summary`: the tables, the summary score (mCE-style), the fragile classes,
  where errors go, the forecast check (numpy, pandas, scipy);
- :mod:`~asl_eval.stress.plots`: the heatmap and the severity curves (matplotlib, ``ax=None``);
- :mod:`~asl_eval.stress.result`: the analysis assembled from an outcomes table, and the
  forecast check added to it;
- :mod:`~asl_eval.stress.records`: the JSON form of the analysis;
- :mod:`~asl_eval.stress.sweep`: :func:`stress_sweep` and :func:`robustness_for_report`, through
  the inference stage's engines;
- :mod:`~asl_eval.stress.command`: the ``asl-eval stress`` command (typer).

Layer: beside :mod:`asl_eval.cam`, :mod:`asl_eval.training` and :mod:`asl_eval.findings`, above
:mod:`asl_eval.inference`. The catalogue, background, summary, result, plots and records modules
never import torch, so the report and the findings can read the analysis; names here load on
first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asl_eval._lazy import lazy_names

if TYPE_CHECKING:
    from asl_eval.stress.background import generate_background, replace_background
    from asl_eval.stress.catalogue import (
        CATALOGUE,
        DEFAULT_CORRUPTIONS,
        DEFAULT_SEVERITIES,
        CorruptionInfo,
    )
    from asl_eval.stress.corruptions import corrupt, image_seed
    from asl_eval.stress.plots import plot_robustness_heatmap, plot_severity_curves
    from asl_eval.stress.records import robustness_record
    from asl_eval.stress.result import add_forecasts
    from asl_eval.stress.summary import SCORE_FORMULA, forecast_table, mean_corruption_error
    from asl_eval.stress.sweep import robustness_for_report, sample_per_class, stress_sweep

# The names load on first use (PEP 562), so `asl-eval --help`, which registers the stress
# command, imports neither numpy nor albumentations, and the report can import the torch-free
# modules without the sweep.
_API = {
    "CATALOGUE": "asl_eval.stress.catalogue",
    "DEFAULT_CORRUPTIONS": "asl_eval.stress.catalogue",
    "DEFAULT_SEVERITIES": "asl_eval.stress.catalogue",
    "CorruptionInfo": "asl_eval.stress.catalogue",
    "SCORE_FORMULA": "asl_eval.stress.summary",
    "add_forecasts": "asl_eval.stress.result",
    "corrupt": "asl_eval.stress.corruptions",
    "forecast_table": "asl_eval.stress.summary",
    "generate_background": "asl_eval.stress.background",
    "image_seed": "asl_eval.stress.corruptions",
    "mean_corruption_error": "asl_eval.stress.summary",
    "plot_robustness_heatmap": "asl_eval.stress.plots",
    "plot_severity_curves": "asl_eval.stress.plots",
    "replace_background": "asl_eval.stress.background",
    "robustness_for_report": "asl_eval.stress.sweep",
    "robustness_record": "asl_eval.stress.records",
    "sample_per_class": "asl_eval.stress.sweep",
    "stress_sweep": "asl_eval.stress.sweep",
}

__all__ = [
    "CATALOGUE",
    "DEFAULT_CORRUPTIONS",
    "DEFAULT_SEVERITIES",
    "SCORE_FORMULA",
    "CorruptionInfo",
    "add_forecasts",
    "corrupt",
    "forecast_table",
    "generate_background",
    "image_seed",
    "mean_corruption_error",
    "plot_robustness_heatmap",
    "plot_severity_curves",
    "replace_background",
    "robustness_for_report",
    "robustness_record",
    "sample_per_class",
    "stress_sweep",
]

__getattr__, __dir__ = lazy_names(__name__, _API, globals())
