"""asl-eval: evaluate fastai image classifiers and find out why they fail.

The package keeps heavy imports out of ``__init__``: ``import asl_eval`` is cheap, and
``asl_eval.metrics`` / ``asl_eval.labels`` / ``asl_eval.predictions`` import with numpy,
pandas and scipy only. fastai is imported by ``asl_eval.inference`` and ``asl_eval.train``.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
