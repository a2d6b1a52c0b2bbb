"""The command line's options: each a Typer ``Annotated`` type, named once and shared by the
commands that take it (:mod:`asl_eval.cli`), and the checks of option values Typer cannot
express. Typer and the standard library at import; the stages that define the valid values
inside the checks.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

__all__ = [
    "CAM_METHODS",
    "Arch",
    "Audit",
    "Augment",
    "BatchSize",
    "Bf16",
    "CacheDir",
    "Cam",
    "CamClasses",
    "CamImages",
    "CamK",
    "CamLayer",
    "CamMethod",
    "CamSet",
    "ChannelsLast",
    "CheckImages",
    "ChunkSize",
    "EngineName",
    "Epochs",
    "FollowLinks",
    "ImageSize",
    "Images",
    "InDomain",
    "LabelMap",
    "LabelRegex",
    "LabelsCsv",
    "LabelsFrom",
    "LearningRate",
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
    "TrainOut",
    "TrainStrict",
    "TrustModel",
    "UseCache",
    "ValidPct",
    "engine_name",
    "parse_lr",
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
BatchSize = Annotated[int, typer.Option(min=1)]
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
ShowProgress = Annotated[
    bool | None,
    typer.Option(
        "--progress/--quiet",
        help="Progress bars on stderr (default: only when stderr is a terminal).",
        show_default=False,
    ),
]
TrustModel = Annotated[
    bool,
    typer.Option(
        help="Load a .pkl even if the safety scan refuses it: it may run code (docs/trust.md)."
    ),
]
CAM_METHODS = ("gradcam", "gradcam++", "hirescam", "eigencam", "scorecam", "finercam")
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
Cam = Annotated[
    bool, typer.Option("--cam/--no-cam", help="Add the Grad-CAM 'why it fails' section.")
]
CamMethod = Annotated[
    str, typer.Option(help="gradcam, gradcam++, hirescam, eigencam, scorecam or finercam.")
]
CamLayer = Annotated[
    str | None, typer.Option(help="Target layer (dotted name); default: found automatically.")
]
CamClasses = Annotated[
    str | None, typer.Option(help="Classes to explain, e.g. T,V,X (default: the worst k).")
]
CamSet = Annotated[str | None, typer.Option(help="Test set to explain (default: the largest).")]
CamK = Annotated[int, typer.Option(min=1, help="How many worst classes to explain.")]
CamImages = Annotated[int, typer.Option(min=1, help="Images per explained class.")]
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
Audit = Annotated[
    bool,
    typer.Option(
        "--audit/--no-audit",
        help="Add the leakage section: near-duplicates of training images in every set "
        "(the training folder is --in-domain, else the one the training record names).",
    ),
]

Properties = Annotated[
    bool | None,
    typer.Option(
        "--properties/--no-properties",
        help="Add the section on what differs between the in-domain and the other sets' images "
        "(brightness, contrast, sharpness, colourfulness, background share, size) and accuracy "
        "by each; default: with --audit.",
        show_default=False,
    ),
]

Metadata = Annotated[
    Path | None,
    typer.Option(
        help="CSV with a path column and columns to slice by (signer, camera, background, "
        "lighting): accuracy per slice value with intervals and a test of whether slices "
        "differ (docs/slices.md).",
    ),
]
MetadataPathColumn = Annotated[
    str,
    typer.Option(
        help="The metadata CSV's column naming each image (relative path, absolute path or "
        "unique file name).",
    ),
]
SliceBy = Annotated[
    list[str] | None,
    typer.Option(
        "--slice-by",
        help="Slice by this metadata column (repeatable); default: every column with at most "
        "50 distinct values.",
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

Stress = Annotated[
    bool,
    typer.Option(
        "--stress/--no-stress",
        help="Add the robustness sweep on the in-domain validation images: which image changes "
        "break which classes (docs/stress.md); the default subset takes about 4 minutes on 2 "
        "CPU cores.",
    ),
]
StressCorruptions = Annotated[
    str,
    typer.Option(
        help="The sweep's changes: comma-separated names, 'default' or 'all' "
        "(asl-eval stress MODEL X --corruptions list shows them).",
    ),
]
StressSeverities = Annotated[
    str, typer.Option(help="The sweep's severities: '1..5' or '1,3,5' (default: 3).")
]
StressPerClass = Annotated[int, typer.Option(min=1, help="Images the sweep samples per class.")]
StressSeed = Annotated[
    int, typer.Option(min=0, help="Base seed of the sweep's sample and of its changes.")
]

Embeddings = Annotated[
    bool,
    typer.Option(
        "--embeddings/--no-embeddings",
        help="Add the embedding-drift section: domain AUC, accuracy by distance from the "
        "training images, confirmed near-duplicates, suspicious labels (needs the training "
        "folder: --in-domain or the training record).",
    ),
]
EmbeddingSamples = Annotated[
    int,
    typer.Option(min=2, help="Training images per class the embeddings are compared with."),
]


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
