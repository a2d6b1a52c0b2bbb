"""Class activation maps: what the model looks at, for the true and for the predicted class.

Heatmaps come from `pytorch-grad-cam <https://github.com/jacobgil/pytorch-grad-cam>`_ (PyPI
``grad-cam``) behind one adapter, so every method gives the heatmap the library gives on its
own, at about the cost of one forward pass. The stage's modules, each with one job:

* :mod:`~asl_eval.cam.layers`: the target layer (the last convolutional block whose feature
  map is at least 3x3 at the model's input size, or one named by its dotted path);
* :mod:`~asl_eval.cam.preprocess`: images through the learner's own transforms;
* :mod:`~asl_eval.cam.engine`: the one adapter to pytorch-grad-cam (hooks, capture, methods,
  faithfulness metrics); the only module importing it;
* :mod:`~asl_eval.cam.explain`: :func:`explain_images` and :func:`compute_cams`;
* :mod:`~asl_eval.cam.overlay`: heatmaps over images (RGB ``uint8`` contract) and PNG bytes;
* :mod:`~asl_eval.cam.faithfulness`: whether a heatmap singles out the pixels the model uses;
* :mod:`~asl_eval.cam.hand`: how much of a heatmap lies outside the hand (the audit's
  foreground estimate);
* :mod:`~asl_eval.cam.selection`: which images the report explains (pure numpy);
* :mod:`~asl_eval.cam.rows`: heatmaps and faithfulness for chosen rows of stored predictions;
* :mod:`~asl_eval.cam.section`: the report's analysis, an
  :class:`~asl_eval.analysis.AnalysisResult` named ``"cam"``.

The stage sits above :mod:`asl_eval.inference` and :mod:`asl_eval.plots` and below
:mod:`asl_eval.report`, which it never imports. Importing the package does not import torch,
fastai or pytorch-grad-cam; they are imported when a heatmap is computed.
"""

from __future__ import annotations

from asl_eval.cam.engine import CAM_METHODS, FINERCAM_N_COMPARISONS, CamMethod
from asl_eval.cam.explain import CamBatch, Target, compute_cams, explain_images
from asl_eval.cam.faithfulness import (
    FAITHFULNESS_METRICS,
    ROAD_PERCENTILES,
    Faithfulness,
    faithfulness_scores,
)
from asl_eval.cam.hand import outside_mass
from asl_eval.cam.layers import (
    MIN_MAP_SIZE,
    feature_map_sizes,
    find_target_layer,
    find_target_layer_or_none,
    resolve_layer,
)
from asl_eval.cam.overlay import colorize, overlay, png_bytes
from asl_eval.cam.preprocess import learner_input_size, preprocess
from asl_eval.cam.section import build_cam_section
from asl_eval.cam.selection import CamSelection, parse_cam_classes, select_cam_images
from asl_eval.errors import CamError

__all__ = [
    "CAM_METHODS",
    "FAITHFULNESS_METRICS",
    "FINERCAM_N_COMPARISONS",
    "MIN_MAP_SIZE",
    "ROAD_PERCENTILES",
    "CamBatch",
    "CamError",
    "CamMethod",
    "CamSelection",
    "Faithfulness",
    "Target",
    "build_cam_section",
    "colorize",
    "compute_cams",
    "explain_images",
    "faithfulness_scores",
    "feature_map_sizes",
    "find_target_layer",
    "find_target_layer_or_none",
    "learner_input_size",
    "outside_mass",
    "overlay",
    "parse_cam_classes",
    "png_bytes",
    "preprocess",
    "resolve_layer",
    "select_cam_images",
]
