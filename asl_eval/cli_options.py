"""The command line's options: each a Typer ``Annotated`` type, named once and shared by the
commands that take it (:mod:`asl_eval.cli`), and the checks and parsing of option values Typer
cannot express. The ``report`` command's optional analyses (``--cam-*``, ``--audit``,
``--metadata``, ``--embeddings``, ``--stress-*``) are in :mod:`asl_eval.cli_report_options`.
Typer, the standard library and :mod:`asl_eval.console` (``--progress/--quiet``, shared with the
command modules below the CLI) at import; the stages that define the valid values inside the
checks.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from asl_eval.console import ShowProgress

if TYPE_CHECKING:
    from asl_eval.labels import LabelOptions

__all__ = [
    "Arch",
    "Augment",
    "BatchSize",
    "Bf16",
    "CacheDir",
    "ChannelsLast",
    "CheckImages",
    "ChunkSize",
    "EngineName",
    "Epochs",
    "FollowLinks",
    "GroupBy",
    "ImageSize",
    "Images",
    "InDomain",
    "InferenceBatchSize",
    "LabelMap",
    "LabelRegex",
    "LabelsCsv",
    "LabelsFrom",
    "LearningRate",
    "MetadataPathColumn",
    "ModelFile",
    "NamedSets",
    "NumWorkers",
    "Pretrained",
    "RedactPaths",
    "ReportName",
    "ReportOut",
    "SafeCopy",
    "Seed",
    "ShowProgress",
    "Split",
    "Strict",
    "TestDirs",
    "TrainLabelsFrom",
    "TrainMetadata",
    "TrainOut",
    "TrainStrict",
    "TrustModel",
    "UseCache",
    "ValidPct",
    "engine_name",
    "parse_label_options",
    "parse_lr",
    "parse_sets",
    "split_kind",
]

LabelsFrom = Annotated[
    str, typer.Option(help="Where true labels come from: auto, folder, filename or csv.")
]
LabelRegex = Annotated[
    str | None, typer.Option(help="File-name regex with one group (or a group named 'label').")
]
LabelsCsv = Annotated[Path | None, typer.Option(help="CSV of path,label (--labels-from csv).")]
LabelMap = Annotated[
    list[str] | None,
    typer.Option(help="Map a label to a class: LABEL=CLASS (repeatable, or comma-separated)."),
]
Strict = Annotated[
    bool,
    typer.Option(help="Fail when a file is unlabeled or its label is not a class of the model."),
]
FollowLinks = Annotated[
    bool,
    typer.Option(
        "--follow-links",
        help="Follow symbolic links that lead out of the folder (default: record them as "
        "excluded, 'link outside the folder').",
    ),
]
TrainOut = Annotated[Path, typer.Option("--out", "-o", help="Where to export the learner.")]
Arch = Annotated[str, typer.Option(help="torchvision model name, or a timm name.")]
ImageSize = Annotated[int, typer.Option(min=8, help="Resize(image_size).")]
Epochs = Annotated[int, typer.Option(min=1)]
LearningRate = Annotated[str, typer.Option(help="Learning rate, or 'find' to use lr_find.")]
BatchSize = Annotated[int, typer.Option(min=1, help="Images per training step.")]
InferenceBatchSize = Annotated[
    int | None,
    typer.Option(
        "--batch-size",
        min=1,
        help="Images per forward pass (default: 8 for the fastai engine on the CPU, where small "
        "batches are fastest; 64 on a GPU and for the ONNX engines).",
    ),
]
ValidPct = Annotated[float, typer.Option(min=0.01, max=0.9)]
Seed = Annotated[int, typer.Option()]
Split = Annotated[
    str,
    typer.Option(
        help="Validation split: random (the tutorial's) or grouped (near-identical frames kept "
        "on one side, so the validation score is honest; docs/audit.md).",
    ),
]
Pretrained = Annotated[
    bool, typer.Option("--pretrained/--no-pretrained", help="Start from ImageNet weights.")
]
Augment = Annotated[bool, typer.Option("--augment/--no-augment", help="Use aug_transforms().")]
NumWorkers = Annotated[int, typer.Option(min=0, help="DataLoader workers.")]
SafeCopy = Annotated[
    bool,
    typer.Option(
        "--safe-copy", help="Also write MODEL.safetensors + MODEL.json (no pickle needed)."
    ),
]
CheckImages = Annotated[
    bool,
    typer.Option(
        "--check-images/--no-check-images",
        help="Decode every image first and leave out unreadable ones (recorded).",
    ),
]
TrainLabelsFrom = Annotated[
    str | None,
    typer.Option(
        help="Where labels come from: auto, folder, filename or csv "
        "(default: folder, or the source --label-regex/--labels-csv imply)."
    ),
]
TrainStrict = Annotated[bool, typer.Option(help="Fail when a file gets no label.")]
TrustModel = Annotated[
    bool,
    typer.Option(
        help="Load a .pkl even if the safety scan refuses it: it may run code (docs/trust.md)."
    ),
]
ModelFile = Annotated[
    Path,
    typer.Argument(
        help="Exported fastai learner (.pkl), or a .safetensors file with its .json sidecar."
    ),
]
TestDirs = Annotated[
    list[Path] | None, typer.Argument(help="Test folders, each named after itself.")
]
ReportOut = Annotated[
    Path, typer.Option("--out", "-o", help="Output folder, or an .html file path.")
]
ReportName = Annotated[str | None, typer.Option(help="Report file name (default: model's).")]
NamedSets = Annotated[
    list[str] | None, typer.Option("--set", help="A named test folder: NAME=DIR (repeatable).")
]
InDomain = Annotated[
    Path | None,
    typer.Option(help="Training folder: re-create and predict its validation split."),
]
RedactPaths = Annotated[
    bool,
    typer.Option(help="Paths relative to each set's folder, the model by its file name."),
]
Images = Annotated[
    bool, typer.Option(help="Thumbnails and Grad-CAM heatmaps in the HTML (or --no-images).")
]
EngineName = Annotated[
    str,
    typer.Option(
        "--engine",
        help="What runs the model: fastai (default), onnx or onnx-int8 (docs/engines.md).",
    ),
]
UseCache = Annotated[
    bool,
    typer.Option(
        "--cache/--no-cache",
        help="Reuse and keep predictions, and with --audit/--embeddings image hashes and "
        "features, in the cache, by content hash (docs/inference.md).",
    ),
]
CacheDir = Annotated[
    Path | None,
    typer.Option(
        help="The predictions cache folder (default: $ASL_EVAL_CACHE_DIR, else "
        "$XDG_CACHE_HOME/asl-eval or ~/.cache/asl-eval).",
        show_default=False,
    ),
]
ChunkSize = Annotated[
    int, typer.Option(min=1, help="Images decoded, predicted and cached together.")
]
Bf16 = Annotated[
    bool,
    typer.Option(
        "--bf16",
        help="fastai engine: bfloat16 autocast (faster on some CPUs; changes the numbers).",
    ),
]
ChannelsLast = Annotated[
    bool,
    typer.Option(
        "--channels-last",
        help="fastai engine: channels-last memory format (faster on some CPUs; changes the "
        "numbers in the last digits).",
    ),
]
MetadataPathColumn = Annotated[
    str,
    typer.Option(
        help="The metadata CSV's column naming each image (relative path, absolute path or "
        "unique file name).",
    ),
]
GroupBy = Annotated[
    str | None,
    typer.Option(
        help="With --split grouped: keep each value of this --metadata column (a signer) on one "
        "side of the split, as well as each frame group. Every training image needs a value.",
    ),
]
TrainMetadata = Annotated[
    Path | None,
    typer.Option("--metadata", help="CSV with a path column and the --group-by column."),
]


def parse_label_options(
    labels_from: str,
    label_regex: str | None,
    labels_csv: Path | None,
    label_map: list[str] | None,
    strict: bool,
    follow_links: bool = False,
) -> LabelOptions:
    """``--labels-from`` (checked), ``--label-regex``, ``--labels-csv``, ``--label-map``
    (parsed), ``--strict`` and ``--follow-links``, as the labels' options."""
    from asl_eval.labels import LabelOptions, parse_label_map

    if labels_from not in ("auto", "folder", "filename", "csv"):
        raise typer.BadParameter(
            f"expected auto, folder, filename or csv, got {labels_from!r}",
            param_hint="--labels-from",
        )
    return LabelOptions(
        source=labels_from,  # type: ignore[arg-type]
        regex=label_regex,
        labels_csv=labels_csv,
        label_map=parse_label_map(list(label_map or [])),
        strict=strict,
        follow_links=follow_links,
    )


def parse_lr(value: str) -> float | str:
    """``--lr``: a positive number, or ``find`` for fastai's learning-rate finder."""
    if value == "find":
        return "find"
    try:
        rate = float(value)
    except ValueError:
        raise typer.BadParameter(f"expected a number or 'find', got {value!r}") from None
    if not math.isfinite(rate) or rate <= 0:
        raise typer.BadParameter(f"expected a positive learning rate, got {value!r}")
    return rate


def parse_sets(values: list[str]) -> list[tuple[str, Path]]:
    """``--set``: each value a ``NAME=DIR`` pair, as ``(name, folder)``."""
    parsed = []
    for value in values:
        name, sep, folder = value.partition("=")
        if not sep or not name or not folder:
            raise typer.BadParameter(f"expected NAME=DIR, got {value!r}", param_hint="--set")
        parsed.append((name, Path(folder)))
    return parsed


def split_kind(value: str) -> str:
    """``--split``: one of the training splits (:data:`asl_eval.training.data.SPLITS`)."""
    from asl_eval.training.data import SPLITS

    if value not in SPLITS:
        raise typer.BadParameter(
            f"expected one of {', '.join(SPLITS)}, got {value!r}", param_hint="--split"
        )
    return value


def engine_name(value: str) -> str:
    """``--engine``: one of :data:`asl_eval.inference.ENGINES`."""
    from asl_eval.inference import ENGINES

    if value not in ENGINES:
        raise typer.BadParameter(
            f"expected one of {', '.join(ENGINES)}, got {value!r}", param_hint="--engine"
        )
    return value
