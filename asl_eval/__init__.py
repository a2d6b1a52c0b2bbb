"""asl-eval: evaluate fastai image classifiers and find out why they fail.

The notebook flow is one import away, and importing it stays light: every name below is
imported from its stage on first use (PEP 562 module ``__getattr__``), so ``import asl_eval``
loads neither pandas nor torch until a function needs them.

>>> import asl_eval as ae
>>> ae.wilson_interval(9, 10)  # doctest: +ELLIPSIS
(0.596..., 0.982...)

The flow, with each stage's function (see ``docs/api.md``)::

    learn = ae.load_learner_file("model.pkl")           # trust: scanned before loading
    test = ae.predict_folder(learn, "test/", name="test")  # inference: labels from names
    valid = ae.Predictions.load("model.valid.parquet")  # saved by asl-eval train
    ae.evaluate(test).per_class                         # metrics
    ae.plot_confusion_matrix(ae.confusion_matrix(test)) # plots
    ae.explain_images(learn, ["test/T/T1.jpg"])         # Grad-CAM
    ae.write_report(ae.build_context([...], ...), "reports")  # the shareable report
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asl_eval._lazy import lazy_names
from asl_eval._version import __version__

if TYPE_CHECKING:  # the same names, for type checkers and editors
    from asl_eval.analysis import AnalysisResult
    from asl_eval.audit import audit_leakage, frame_groups, grouped_split
    from asl_eval.cam import explain_images
    from asl_eval.compare import compare_report_files
    from asl_eval.errors import (
        AslEvalError,
        CamError,
        InputError,
        LabelError,
        MetricError,
        ModelLoadError,
        ReportError,
        TrainingError,
        UnsafeModelError,
    )
    from asl_eval.findings import find, findings_text
    from asl_eval.inference import (
        ENGINES,
        PredictionCache,
        make_engine,
        model_classes,
        predict_files,
        predict_folder,
    )
    from asl_eval.inputs import discover_images, load_rgb
    from asl_eval.labels import LabelOptions, label_files, preview_labels
    from asl_eval.metrics import (
        DEFAULT_N_RESAMPLES,
        Evaluation,
        accuracy_score,
        accuracy_with_interval,
        balanced_accuracy_score,
        bootstrap_interval,
        brier_score,
        classification_table,
        confusion_matrix,
        domain_comparison,
        evaluate,
        expected_calibration_error,
        holm_adjust,
        log_loss,
        macro_f1_score,
        mcnemar_test,
        most_confused,
        paired_class_differences,
        per_class_accuracy,
        reliability_table,
        top_k_accuracy,
        top_losses,
        wilson_interval,
    )
    from asl_eval.plots import (
        plot_confidence_histogram,
        plot_confusion_matrix,
        plot_domain_gap,
        plot_per_class_accuracy,
        plot_reliability_diagram,
    )
    from asl_eval.predictions import Ledger, Predictions
    from asl_eval.report import (
        EvaluationSet,
        ModelInfo,
        Sharing,
        build_context,
        read_report_json,
        write_report,
    )
    from asl_eval.training import TrainConfig, train_model
    from asl_eval.trust import export_safe, load_learner_file

#: Public name -> the stage (module) that defines it.
_API: dict[str, str] = {
    # model files (trust boundary)
    "load_learner_file": "asl_eval.trust",
    "export_safe": "asl_eval.trust",
    # inputs and labels
    "discover_images": "asl_eval.inputs",
    "load_rgb": "asl_eval.inputs",
    "LabelOptions": "asl_eval.labels",
    "label_files": "asl_eval.labels",
    "preview_labels": "asl_eval.labels",
    # training
    "TrainConfig": "asl_eval.training",
    "train_model": "asl_eval.training",
    # the model stage and its hand-off
    "predict_folder": "asl_eval.inference",
    "predict_files": "asl_eval.inference",
    "model_classes": "asl_eval.inference",
    "ENGINES": "asl_eval.inference",
    "make_engine": "asl_eval.inference",
    "PredictionCache": "asl_eval.inference",
    "Predictions": "asl_eval.predictions",
    "Ledger": "asl_eval.predictions",
    # metrics
    "DEFAULT_N_RESAMPLES": "asl_eval.metrics",
    "Evaluation": "asl_eval.metrics",
    "evaluate": "asl_eval.metrics",
    "accuracy_score": "asl_eval.metrics",
    "accuracy_with_interval": "asl_eval.metrics",
    "balanced_accuracy_score": "asl_eval.metrics",
    "bootstrap_interval": "asl_eval.metrics",
    "brier_score": "asl_eval.metrics",
    "classification_table": "asl_eval.metrics",
    "confusion_matrix": "asl_eval.metrics",
    "domain_comparison": "asl_eval.metrics",
    "expected_calibration_error": "asl_eval.metrics",
    "holm_adjust": "asl_eval.metrics",
    "log_loss": "asl_eval.metrics",
    "macro_f1_score": "asl_eval.metrics",
    "mcnemar_test": "asl_eval.metrics",
    "most_confused": "asl_eval.metrics",
    "paired_class_differences": "asl_eval.metrics",
    "per_class_accuracy": "asl_eval.metrics",
    "reliability_table": "asl_eval.metrics",
    "top_k_accuracy": "asl_eval.metrics",
    "top_losses": "asl_eval.metrics",
    "wilson_interval": "asl_eval.metrics",
    # plots
    "plot_confidence_histogram": "asl_eval.plots",
    "plot_confusion_matrix": "asl_eval.plots",
    "plot_domain_gap": "asl_eval.plots",
    "plot_per_class_accuracy": "asl_eval.plots",
    "plot_reliability_diagram": "asl_eval.plots",
    # Grad-CAM
    "explain_images": "asl_eval.cam",
    # the data audit
    "audit_leakage": "asl_eval.audit",
    "frame_groups": "asl_eval.audit",
    "grouped_split": "asl_eval.audit",
    # findings
    "find": "asl_eval.findings",
    "findings_text": "asl_eval.findings",
    # comparing two models
    "compare_report_files": "asl_eval.compare",
    # analyses and the report
    "AnalysisResult": "asl_eval.analysis",
    "EvaluationSet": "asl_eval.report",
    "ModelInfo": "asl_eval.report",
    "Sharing": "asl_eval.report",
    "build_context": "asl_eval.report",
    "write_report": "asl_eval.report",
    "read_report_json": "asl_eval.report",
    # errors
    "AslEvalError": "asl_eval.errors",
    "CamError": "asl_eval.errors",
    "InputError": "asl_eval.errors",
    "LabelError": "asl_eval.errors",
    "MetricError": "asl_eval.errors",
    "ModelLoadError": "asl_eval.errors",
    "ReportError": "asl_eval.errors",
    "TrainingError": "asl_eval.errors",
    "UnsafeModelError": "asl_eval.errors",
}

__all__ = [
    "DEFAULT_N_RESAMPLES",
    "ENGINES",
    "AnalysisResult",
    "AslEvalError",
    "CamError",
    "Evaluation",
    "EvaluationSet",
    "InputError",
    "LabelError",
    "LabelOptions",
    "Ledger",
    "MetricError",
    "ModelInfo",
    "ModelLoadError",
    "PredictionCache",
    "Predictions",
    "ReportError",
    "Sharing",
    "TrainConfig",
    "TrainingError",
    "UnsafeModelError",
    "__version__",
    "accuracy_score",
    "accuracy_with_interval",
    "audit_leakage",
    "balanced_accuracy_score",
    "bootstrap_interval",
    "brier_score",
    "build_context",
    "classification_table",
    "compare_report_files",
    "confusion_matrix",
    "discover_images",
    "domain_comparison",
    "evaluate",
    "expected_calibration_error",
    "explain_images",
    "export_safe",
    "find",
    "findings_text",
    "frame_groups",
    "grouped_split",
    "holm_adjust",
    "label_files",
    "load_learner_file",
    "load_rgb",
    "log_loss",
    "macro_f1_score",
    "make_engine",
    "mcnemar_test",
    "model_classes",
    "most_confused",
    "paired_class_differences",
    "per_class_accuracy",
    "plot_confidence_histogram",
    "plot_confusion_matrix",
    "plot_domain_gap",
    "plot_per_class_accuracy",
    "plot_reliability_diagram",
    "predict_files",
    "predict_folder",
    "preview_labels",
    "read_report_json",
    "reliability_table",
    "top_k_accuracy",
    "top_losses",
    "train_model",
    "wilson_interval",
    "write_report",
]


# Each public name is imported from its stage on first use, then kept here.
__getattr__, __dir__ = lazy_names(__name__, _API, globals())
