"""The ``report`` command's optional analyses on the command line: each group's options
(Grad-CAM ``--cam-*``, the leakage ``--audit`` and ``--properties`` sections, the slices
``--metadata`` and ``--slice-by``, ``--embeddings``, the robustness ``--stress-*`` sweep) as
Typer ``Annotated`` types, and the functions that check the Grad-CAM and stress groups' values
and turn them into the request's options (:class:`asl_eval.pipeline.CamOptions`,
:class:`asl_eval.pipeline.StressOptions`).

The options several commands share, ``--metadata-path-column`` (also ``train --group-by``'s)
among them, are in :mod:`asl_eval.cli_options`. Typer and :mod:`asl_eval.errors` at import;
the stages that parse a group's values inside the function that turns it into options, so
``asl-eval --help`` imports neither torch nor fastai.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from asl_eval.errors import AslEvalError

if TYPE_CHECKING:
    from asl_eval.pipeline import CamOptions, StressOptions

__all__ = [
    "CAM_METHODS",
    "Audit",
    "Cam",
    "CamClasses",
    "CamImages",
    "CamK",
    "CamLayer",
    "CamMethod",
    "CamSet",
    "EmbeddingSamples",
    "Embeddings",
    "Metadata",
    "Properties",
    "SliceBy",
    "Stress",
    "StressCorruptions",
    "StressPerClass",
    "StressSeed",
    "StressSeverities",
    "cam_options",
    "stress_options",
]

# The Grad-CAM section. The methods are asl_eval.cam's (tests/test_cli.py keeps them equal),
# named here so that --help need not import the CAM stage.
CAM_METHODS = ("gradcam", "gradcam++", "hirescam", "eigencam", "scorecam", "finercam")
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

# The leakage and image-properties sections.
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

# The slices section.
Metadata = Annotated[
    Path | None,
    typer.Option(
        help="CSV with a path column and columns to slice by (signer, camera, background, "
        "lighting): accuracy per slice value with intervals and a test of whether slices "
        "differ (docs/slices.md).",
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

# The embedding-drift section.
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

# The robustness sweep.
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


def cam_options(
    enabled: bool,
    method: str,
    layer: str | None,
    classes: str | None,
    set_name: str | None,
    k: int,
    n_images: int,
) -> CamOptions | None:
    """``report --cam`` and its ``--cam-*`` options (None with ``--no-cam``)."""
    from asl_eval.pipeline import CamOptions

    if not enabled:
        return None
    if method not in CAM_METHODS:
        raise typer.BadParameter(
            f"expected one of {', '.join(CAM_METHODS)}, got {method!r}", param_hint="--cam-method"
        )
    from asl_eval.cam import parse_cam_classes

    chosen = parse_cam_classes(classes)
    return CamOptions(
        method=method, layer=layer, classes=chosen, set_name=set_name, k=k, n_per_class=n_images
    )


def stress_options(
    on: bool, corruptions: str, severities: str, n_per_class: int, seed: int
) -> StressOptions | None:
    """``report --stress`` and its ``--stress-*`` options (None without ``--stress``)."""
    from asl_eval.pipeline import StressOptions
    from asl_eval.stress.command import parse_corruptions, parse_severities

    if not on:
        return None
    try:
        chosen = parse_corruptions(corruptions)
    except AslEvalError as error:
        raise typer.BadParameter(str(error), param_hint="--stress-corruptions") from None
    try:
        levels = parse_severities(severities)
    except AslEvalError as error:
        raise typer.BadParameter(str(error), param_hint="--stress-severities") from None
    return StressOptions(chosen, levels, n_per_class=n_per_class, seed=seed)
