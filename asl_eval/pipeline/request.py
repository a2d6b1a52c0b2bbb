"""What ``asl-eval report`` asks for: :class:`ReportRequest` and its options.

Imports the labels' options, the progress callback type and the errors only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from asl_eval.errors import InputError
from asl_eval.labels import LabelOptions
from asl_eval.progress import Progress

__all__ = ["CamOptions", "ReportRequest", "StressOptions", "name_sets"]


@dataclass(frozen=True)
class CamOptions:
    """The Grad-CAM section: which set, classes, method and layer (``--cam-*`` options)."""

    method: str = "gradcam"
    layer: str | None = None
    classes: tuple[str, ...] | None = None
    set_name: str | None = None
    k: int = 3
    n_per_class: int = 4


@dataclass(frozen=True)
class StressOptions:
    """The robustness sweep (``--stress-*`` options); None: the documented default subset
    (:data:`asl_eval.stress.DEFAULT_CORRUPTIONS` at :data:`asl_eval.stress.DEFAULT_SEVERITIES`)."""

    corruptions: tuple[str, ...] | None = None
    severities: tuple[int, ...] | None = None
    n_per_class: int = 30
    seed: int = 0


@dataclass(frozen=True)
class ReportRequest:
    """Everything ``asl-eval report`` needs.

    ``test_sets`` are ``(name, folder)`` pairs. The in-domain set is the model's saved
    validation predictions (``model.valid.parquet``) unless ``in_domain`` names the training
    folder, whose validation split is then re-created and predicted. ``name`` must be a plain
    file name (no folder). Symbolic links out of a folder are followed only with
    ``label_options.follow_links``. ``redact_paths`` and ``images`` say what the report leaves
    out to be shared (:class:`asl_eval.report.sharing.Sharing`).

    ``engine`` names the engine (:data:`asl_eval.inference.ENGINES`) and ``engine_options``
    are its options (``bf16``, ``channels_last``; see docs/engines.md). With ``use_cache``,
    predictions are looked up in and added to the predictions cache under ``cache_dir``
    (default :func:`asl_eval.inference.default_cache_dir`), and the model is loaded only if an
    image must be predicted or Grad-CAM is on. ``chunk_size`` images are decoded, predicted and
    cached together. ``progress`` receives progress events (see :mod:`asl_eval.progress`).
    With ``audit``, the leakage section measures near-duplicates of training images in the
    in-domain and test sets (:func:`asl_eval.audit.audit_leakage`); the training folder is
    ``in_domain``, else the one the training record names. ``properties`` compares image
    properties between the in-domain set and each other set (the "domains" section,
    :func:`asl_eval.audit.domain_analysis`); None: with ``audit``. With ``metadata`` (a CSV
    naming each image in its ``metadata_path_column``), the "slices" section gives accuracy by
    each of its columns (``slice_by``, default: every column with few values;
    :func:`asl_eval.audit.slice_analysis`). With ``stress``, the robustness sweep runs on the
    in-domain images (:func:`asl_eval.stress.robustness_for_report`). With ``embeddings``, the
    model's features of every set are compared with those of ``embedding_samples`` training
    images per class (:func:`asl_eval.inference.features.embedding_audit`).
    """

    model: Path
    test_sets: Sequence[tuple[str, Path]]
    out: Path = Path("reports")
    name: str | None = None
    in_domain: Path | None = None
    trust_model: bool = False
    label_options: LabelOptions = field(default_factory=LabelOptions)
    command: str = "asl-eval report"
    title: str = "asl-eval report"
    batch_size: int | None = None
    cam: CamOptions | None = field(default_factory=CamOptions)
    redact_paths: bool = False
    images: bool = True
    audit: bool = False
    properties: bool | None = None
    metadata: Path | None = None
    metadata_path_column: str = "path"
    slice_by: Sequence[str] = ()
    stress: StressOptions | None = None
    embeddings: bool = False
    embedding_samples: int = 50
    engine: str = "fastai"
    engine_options: Mapping[str, object] = field(default_factory=dict)
    use_cache: bool = True
    cache_dir: Path | None = None
    chunk_size: int = 512
    progress: Progress = None


def name_sets(
    folders: Sequence[Path], named: Sequence[tuple[str, Path]] = ()
) -> list[tuple[str, Path]]:
    """Name each folder after itself (``test``, ``test-2`` on a clash), after explicit names.

    >>> [(name, str(folder)) for name, folder in name_sets(
    ...     [Path("a/test"), Path("b/test")], [("kaggle28", Path("c"))])]
    [('kaggle28', 'c'), ('test', 'a/test'), ('test-2', 'b/test')]
    """
    result = list(named)
    names = [name for name, _ in result]
    clashes = sorted({n for n in names if names.count(n) > 1 or n == "valid"})
    if clashes:
        raise InputError(
            f"Set names must be unique and not 'valid' (the in-domain split's name); "
            f"--set repeats or reuses: {', '.join(clashes)}."
        )
    taken = set(names)
    for folder in folders:
        base = folder.resolve().name or "test"
        candidate, n = base, 1
        while candidate in taken or candidate == "valid":
            n += 1
            candidate = f"{base}-{n}"
        taken.add(candidate)
        result.append((candidate, folder))
    return result
