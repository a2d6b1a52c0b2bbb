"""``compare`` on two model files: report both on the same test folders first.

Each model is evaluated with :func:`asl_eval.pipeline.run_report` (no Grad-CAM section) into
a folder the caller owns, as ``base.json`` and ``new.json`` with their predictions CSVs, which
are then compared like any two reports.

May import: :mod:`asl_eval.pipeline` (inside :func:`report_models`, so that comparing two
report files never imports torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["report_models"]


def report_models(
    base_model: Path,
    new_model: Path,
    test_dirs: Sequence[Path],
    work_dir: Path,
    *,
    trust_model: bool = False,
    command: str = "asl-eval compare",
) -> tuple[Path, Path]:
    """Report both models on ``test_dirs`` (each set named after its folder) into ``work_dir``.

    Returns
    -------
    (base_json, new_json)
        The two reports' JSON files; each model's in-domain split is its saved validation
        predictions, when training left them beside it.
    """
    from asl_eval.pipeline import ReportRequest, name_sets, run_report

    named = name_sets(list(test_dirs))
    written = []
    for label, model in (("base", base_model), ("new", new_model)):
        request = ReportRequest(
            model=model,
            test_sets=named,
            out=work_dir,
            name=label,
            trust_model=trust_model,
            command=f"{command} ({label.upper()} {model.name})",
            cam=None,
        )
        written.append(run_report(request).json)
    return written[0], written[1]
