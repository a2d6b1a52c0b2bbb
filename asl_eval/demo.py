"""``asl-eval demo``: the whole job on generated data, offline, in a few minutes on a CPU.

It generates the stand-in ASL folders (:mod:`asl_eval.demo_data`), trains a small resnet18 from
scratch on the training frames, and writes a report comparing the in-domain validation split
with the 28-image test folder and the out-of-domain ``test/`` folder.

Layer: above :mod:`asl_eval.pipeline`, below :mod:`asl_eval.cli`. Imports
:mod:`asl_eval.demo_data`, :mod:`asl_eval.training` and :mod:`asl_eval.pipeline` inside
:func:`run_demo`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asl_eval.progress import Progress
    from asl_eval.report import ReportFiles

__all__ = ["run_demo"]

DEMO_IMAGE_SIZE = 64
DEMO_TRAIN_PER_CLASS = 40
DEMO_OOD_PER_CLASS = 10
DEMO_EPOCHS = 5
DEMO_LR = 3e-3


def run_demo(
    *,
    out: str | Path = "reports",
    work_dir: str | Path | None = None,
    echo: Callable[[str], object] = lambda message: None,
    engine: str = "fastai",
    progress: Progress = None,
) -> ReportFiles:
    """Generate data, train, report; returns the report's files (``<out>/demo.html`` ...).

    ``engine`` runs the model for the report; ``progress`` receives the training epochs and the
    report's steps (:mod:`asl_eval.progress`). The model is new each time, so the predictions
    cache is not used.
    """
    from asl_eval.demo_data import make_demo_dataset
    from asl_eval.pipeline import CamOptions, ReportRequest, run_report
    from asl_eval.training import TrainConfig, train_model

    with ExitStack() as stack:
        if work_dir is None:
            work_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="asl-eval-demo-"))
        work = Path(work_dir)
        echo(f"generating stand-in ASL data in {work} ...")
        data = make_demo_dataset(
            work / "data",
            n_train_per_class=DEMO_TRAIN_PER_CLASS,
            n_ood_per_class=DEMO_OOD_PER_CLASS,
            size=DEMO_IMAGE_SIZE,
        )
        echo("training resnet18 from scratch (pretrained=False) ...")
        config = TrainConfig(
            image_size=DEMO_IMAGE_SIZE,
            epochs=DEMO_EPOCHS,
            lr=DEMO_LR,
            pretrained=False,
            show_progress=False,
        )
        result = train_model(data.train, work / "model" / "demo.pkl", config, progress=progress)
        echo(f"validation accuracy {result.valid_accuracy:.3f}; evaluating the test folders ...")
        request = ReportRequest(
            model=result.model_path,
            test_sets=[
                ("asl_alphabet_test", data.kaggle_test),
                ("test", data.ood_test),
            ],
            out=Path(out),
            name="demo",
            command="asl-eval demo",
            title="asl-eval demo: generated ASL glyphs",
            # the automatic Grad-CAM layer steps back to a 4x4 map at 64 px (0.6)
            cam=CamOptions(),
            engine=engine,
            use_cache=False,
            progress=progress,
        )
        return run_report(request)
