"""The report's data: the plain dataclasses a report is built into before anything is rendered.

:func:`asl_eval.report.build_context` fills them (numbers from :mod:`asl_eval.metrics`, figures
and thumbnails already encoded as ``data:`` URIs); the HTML template only loops over them and
prints, and the JSON is written from the same objects.

Imports the metrics' result types, :class:`Predictions`, the analysis shape and the hashing
helper only (no Jinja2, no matplotlib).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from asl_eval.analysis import AnalysisResult
from asl_eval.hashing import file_sha256
from asl_eval.metrics import Evaluation
from asl_eval.predictions import Predictions
from asl_eval.report.sharing import Sharing

__all__ = [
    "BuiltSection",
    "ClassCell",
    "ClassRow",
    "Comparison",
    "ComparisonRow",
    "ConfusedPair",
    "EvaluationSet",
    "GapCell",
    "LedgerRow",
    "ModelInfo",
    "PredictedClass",
    "PredictedClasses",
    "ReportContext",
    "Role",
    "SetFigures",
    "SetResult",
    "Thumb",
]

Role = Literal["in-domain", "test"]


@dataclass(frozen=True)
class ModelInfo:
    """What the header says about the model."""

    path: str
    sha256: str
    arch: str
    classes: tuple[str, ...]
    input_size: str
    versions: Mapping[str, str]
    engine: Mapping[str, object] = field(default_factory=lambda: {"engine": "fastai"})
    """What predicted the images: ``engine`` (its name) and the options that change the numbers
    (:meth:`asl_eval.inference.Engine.describe`); for the ONNX engines, ``agreement`` with the
    fastai engine on a checked sample (``n_checked``, ``max_abs_diff``, ``top1_agreement``)."""

    @classmethod
    def describe(
        cls,
        path: str | Path,
        *,
        arch: str,
        classes: Sequence[str],
        input_size: str,
        versions: Mapping[str, str],
        engine: Mapping[str, object] | None = None,
        sha256: str | None = None,
    ) -> ModelInfo:
        """Fill in the file's sha256 (streamed, so large models are fine), unless the caller
        has it already (``sha256``: the predictions cache hashed the same file)."""
        return cls(
            path=str(path),
            sha256=sha256 or file_sha256(path),
            arch=arch,
            classes=tuple(classes),
            input_size=input_size,
            versions=dict(versions),
            engine=dict(engine) if engine is not None else {"engine": "fastai"},
        )

    @property
    def engine_name(self) -> str:
        return str(self.engine.get("engine", "fastai"))

    @property
    def engine_agreement(self) -> str:
        """The ONNX engines' check against the fastai engine, in words ("" when none)."""
        agreement = self.engine.get("agreement")
        if not isinstance(agreement, Mapping):
            return ""
        top1 = float(agreement.get("top1_agreement") or 0.0)
        text = (
            f"checked against the fastai engine on {agreement.get('n_checked')} images: top-1 "
            f"agreement {100 * top1:.1f}%, largest probability difference "
            f"{float(agreement.get('max_abs_diff') or 0.0):.2g}"
        )
        if top1 < 0.99:
            text += " (below 99%: these predictions differ from the model's own)"
        return text

    @property
    def engine_options(self) -> list[tuple[str, str]]:
        """The engine's simple options (not its name, agreement or nested descriptions such as
        the preprocessing, which the JSON keeps), as text pairs."""
        skip = {"engine", "agreement"}
        return [
            (str(k), str(v))
            for k, v in sorted(self.engine.items())
            if k not in skip and not isinstance(v, Mapping | list | tuple)
        ]

    @property
    def short_sha256(self) -> str:
        """The first 16 hex digits, for the header."""
        return self.sha256[:16]


@dataclass(frozen=True)
class EvaluationSet:
    """One named set of predictions and its role in the comparison."""

    predictions: Predictions
    role: Role = "test"

    @property
    def name(self) -> str:
        return self.predictions.name


@dataclass(frozen=True)
class Thumb:
    """One image of a gallery: its thumbnail (None when the file cannot be read any more)
    and its caption."""

    uri: str | None
    name: str
    path: str
    actual: str
    predicted: str
    confidence: float
    p_true: float


@dataclass(frozen=True)
class ConfusedPair:
    """One row of the most-confused-pairs table, with thumbnails of its highest-loss images.

    ``loss`` is the summed loss of the pair's images: pairs with as many images are ordered
    by it (highest first)."""

    actual: str
    predicted: str
    count: int
    examples: tuple[Thumb, ...]
    loss: float = float("nan")


@dataclass(frozen=True)
class SetFigures:
    """The figures and galleries of one set, encoded."""

    confusion: str
    reliability: str
    gallery: tuple[Thumb, ...]
    confused_pairs: tuple[ConfusedPair, ...]


@dataclass(frozen=True)
class LedgerRow:
    """One input file that was not evaluated, and why."""

    path: str
    status: str
    reason: str
    label: str | None


@dataclass(frozen=True)
class PredictedClass:
    """One class among a set's predictions: how often it is predicted and how many images of
    the set really are that class."""

    name: str
    predicted: int
    share: float
    support: int


@dataclass(frozen=True)
class PredictedClasses:
    """The distribution of a set's predicted classes, and the accuracies to read the set's
    accuracy against.

    Attributes
    ----------
    n_images, n_classes
        The set's images and the model's classes.
    n_distinct
        How many classes the model predicts at least once on the set.
    top
        The most predicted classes, most first (ties in the model's class order).
    chance_accuracy
        The accuracy of a uniform random guess over the model's classes, ``1 / n_classes``.
    majority_class, majority_accuracy
        The set's most frequent true class and the accuracy of always predicting it (its share
        of the set).
    """

    n_images: int
    n_classes: int
    n_distinct: int
    top: tuple[PredictedClass, ...]
    chance_accuracy: float
    majority_class: str
    majority_accuracy: float


@dataclass(frozen=True)
class SetResult:
    """One evaluation set in the report.

    The numbers are those of :attr:`evaluation` (one :class:`asl_eval.metrics.Evaluation`,
    computed once) under their own names; this class adds where the set came from, its input
    ledger and its figures.
    """

    evaluation: Evaluation
    role: Role
    source: str
    ledger: Mapping[str, object]
    not_evaluated: tuple[LedgerRow, ...]
    figures: SetFigures
    content: Mapping[str, object] = field(default_factory=dict)
    """``n_hashed`` (images with a content hash) and ``digest``
    (:attr:`asl_eval.predictions.Predictions.content_digest`, None when unknown)."""
    predicted: PredictedClasses | None = None
    """The distribution of the predicted classes, with the chance and majority-class rates."""

    @property
    def name(self) -> str:
        return self.evaluation.name


@dataclass(frozen=True)
class ComparisonRow:
    """One class of one comparison, as its compact table prints it: the class's accuracy in
    the in-domain and the out-of-domain set, side by side with its drop.

    ``drop_low``/``drop_high`` are Newcombe's 95% interval of the drop (the findings'), and
    ``too_few`` marks a class whose sizes could not show even a drop from 100% to 0% on its
    own (Fisher's smallest attainable p at or above alpha / classes compared).
    """

    position: int
    name: str
    inside: ClassCell
    outside: ClassCell
    drop: float
    drop_low: float
    drop_high: float
    p_adjusted: float
    significant_drop: bool
    marker: str
    too_few: bool


@dataclass(frozen=True)
class Comparison:
    """In-domain versus one out-of-domain set, per class.

    ``n_significant`` counts the classes whose accuracy drops significantly (a significant
    gain is not a drop); ``n_compared`` those with images in both sets; ``n_too_few`` those
    among them too small for a drop to be detected on their own; ``chart`` is the per-class
    drop as a ``data:`` URI; ``rows`` the compact per-class table, in the model's order.
    """

    in_domain: str
    out_of_domain: str
    table: pd.DataFrame
    n_significant: int
    n_compared: int
    chart: str
    rows: tuple[ComparisonRow, ...] = ()
    n_too_few: int = 0


@dataclass(frozen=True)
class ClassCell:
    """One class in one set, as the per-class table prints it."""

    accuracy: float
    ci_low: float
    ci_high: float
    correct: int
    support: int


@dataclass(frozen=True)
class GapCell:
    """One class's drop from in-domain to one out-of-domain set.

    ``marker`` is ``" *"`` for a significant drop, ``" +"`` for a significant gain, else ``""``.
    """

    drop: float
    p_adjusted: float
    significant_drop: bool
    marker: str


@dataclass(frozen=True)
class ClassRow:
    """One row of the per-class table: a cell per set, then a gap cell per comparison."""

    position: int
    name: str
    cells: tuple[ClassCell, ...]
    gaps: tuple[GapCell, ...]


@dataclass(frozen=True)
class BuiltSection:
    """An optional section ready for the page: the registered spec's template and title, and
    what its ``build`` made of the analysis (None when the analysis is absent from this report:
    the page shows ``placeholder``, if any)."""

    key: str
    title: str
    anchor: str
    template: str
    placeholder: str
    variables: Mapping[str, object] | None

    @property
    def present(self) -> bool:
        return self.variables is not None


@dataclass(frozen=True)
class ReportContext:
    """Everything the HTML page and the JSON need; built once, rendered twice.

    ``sections`` are the optional analyses as given (keyed by name); ``built_sections`` every
    registered section in page order, built from them. ``sharing`` says what the report left
    out (paths, images); the page and the JSON state it.
    """

    title: str
    model: ModelInfo
    command: str
    generated_at: str
    classes: tuple[str, ...]
    sets: tuple[SetResult, ...]
    comparisons: tuple[Comparison, ...]
    headline: str
    uncertainty_note: str
    bootstrap_note: str
    class_rows: tuple[ClassRow, ...]
    per_class_chart: str
    predictions: tuple[Predictions, ...]
    sections: Mapping[str, AnalysisResult] = field(default_factory=dict)
    built_sections: tuple[BuiltSection, ...] = ()
    sharing: Sharing = field(default_factory=Sharing)

    @property
    def present_sections(self) -> tuple[BuiltSection, ...]:
        """The optional sections this report has (the navigation links to these)."""
        return tuple(section for section in self.built_sections if section.present)
