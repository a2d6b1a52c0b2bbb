"""The ``asl-eval`` command line: a thin Typer adapter over the library.

Each command parses its options, calls one library function and prints where the result went.
Errors the library raises on purpose (:class:`~asl_eval.errors.AslEvalError`) are translated here,
in one place, into a one-paragraph message on stderr and exit code 1. Usage errors exit with 2.
"""

from __future__ import annotations

import json
import logging
import math
import shlex
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from asl_eval._version import __version__
from asl_eval.errors import AslEvalError

if TYPE_CHECKING:
    from asl_eval.labels import LabelOptions
    from asl_eval.pipeline import CamOptions

app = typer.Typer(
    name="asl-eval",
    help="Evaluate fastai image classifiers and find out why they fail.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

T = TypeVar("T")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def _call(function: Callable[[], T]) -> T:
    """Run one library call; an AslEvalError becomes a message and exit code 1."""
    try:
        return function()
    except AslEvalError as error:
        raise _fail(str(error)) from None


def _command_line() -> str:
    return shlex.join(["asl-eval", *sys.argv[1:]])


def _version(value: bool) -> None:
    if value:
        typer.echo(f"asl-eval {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False,
) -> None:
    """Evaluate fastai image classifiers and find out why they fail."""
    # fastai imports torch.jit.script at import time; that deprecation is not the user's concern.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def _parse_lr(value: str) -> float | str:
    if value == "find":
        return "find"
    try:
        rate = float(value)
    except ValueError:
        raise typer.BadParameter(f"expected a number or 'find', got {value!r}") from None
    if not math.isfinite(rate) or rate <= 0:
        raise typer.BadParameter(f"expected a positive learning rate, got {value!r}")
    return rate


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


def _label_options(
    labels_from: str,
    label_regex: str | None,
    labels_csv: Path | None,
    label_map: list[str] | None,
    strict: bool,
) -> LabelOptions:
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
    )


@app.command()
def train(
    data_dir: Annotated[
        Path,
        typer.Argument(help="Training folder: one subfolder per class, or see the label options."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to export the learner.")] = Path(
        "model.pkl"
    ),
    arch: Annotated[str, typer.Option(help="torchvision model name, or a timm name.")] = "resnet18",
    image_size: Annotated[int, typer.Option(min=8, help="Resize(image_size).")] = 200,
    epochs: Annotated[int, typer.Option(min=1)] = 4,
    lr: Annotated[str, typer.Option(help="Learning rate, or 'find' to use lr_find.")] = "1e-2",
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    valid_pct: Annotated[float, typer.Option(min=0.01, max=0.9)] = 0.2,
    seed: Annotated[int, typer.Option()] = 42,
    pretrained: Annotated[
        bool, typer.Option("--pretrained/--no-pretrained", help="Start from ImageNet weights.")
    ] = True,
    augment: Annotated[
        bool, typer.Option("--augment/--no-augment", help="Use aug_transforms().")
    ] = True,
    num_workers: Annotated[int, typer.Option(min=0, help="DataLoader workers.")] = 0,
    safe_copy: Annotated[
        bool,
        typer.Option(
            "--safe-copy", help="Also write MODEL.safetensors + MODEL.json (no pickle needed)."
        ),
    ] = False,
    check_images: Annotated[
        bool,
        typer.Option(
            "--check-images/--no-check-images",
            help="Decode every image first and leave out unreadable ones (recorded).",
        ),
    ] = True,
    labels_from: Annotated[
        str | None,
        typer.Option(
            help="Where labels come from: auto, folder, filename or csv "
            "(default: folder, or the source --label-regex/--labels-csv imply)."
        ),
    ] = None,
    label_regex: LabelRegex = None,
    labels_csv: LabelsCsv = None,
    label_map: LabelMap = None,
    strict: Annotated[bool, typer.Option(help="Fail when a file gets no label.")] = False,
) -> None:
    """Train with the fastai ASL tutorial's recipe and export the learner.

    Labels are the class folders' names, as in the tutorial, unless the label options say
    otherwise; they become the model's classes.
    """
    from asl_eval.train import TrainConfig, train_model

    implied = "auto" if label_regex is not None or labels_csv is not None else "folder"
    source = labels_from or implied
    label_options = _call(
        lambda: _label_options(source, label_regex, labels_csv, label_map, strict)
    )
    config = TrainConfig(
        arch=arch,
        image_size=image_size,
        epochs=epochs,
        lr=_parse_lr(lr),  # type: ignore[arg-type]
        batch_size=batch_size,
        valid_pct=valid_pct,
        seed=seed,
        pretrained=pretrained,
        augment=augment,
        num_workers=num_workers,
        safe_copy=safe_copy,
        check_images=check_images,
    )
    result = _call(lambda: train_model(data_dir, out, config, label_options=label_options))
    typer.echo(f"validation accuracy {result.valid_accuracy:.4f} (learning rate {result.lr:.2e})")
    typer.echo(f"model: {result.model_path}")
    typer.echo(f"validation predictions: {result.valid_predictions_path}")
    if result.n_not_used:
        typer.echo(f"{result.n_not_used} files not used for training: see {result.record_path}")
    if result.safe_weights_path is not None:
        typer.echo(f"safe copy: {result.safe_weights_path}")


def _parse_sets(values: list[str]) -> list[tuple[str, Path]]:
    parsed = []
    for value in values:
        name, sep, folder = value.partition("=")
        if not sep or not name or not folder:
            raise typer.BadParameter(f"expected NAME=DIR, got {value!r}", param_hint="--set")
        parsed.append((name, Path(folder)))
    return parsed


TrustModel = Annotated[
    bool,
    typer.Option(
        help="Load a .pkl even if the safety scan refuses it: it may run code (docs/trust.md)."
    ),
]


CAM_METHODS = ("gradcam", "gradcam++", "hirescam", "eigencam", "scorecam", "finercam")


def _cam_options(
    enabled: bool,
    method: str,
    layer: str | None,
    classes: str | None,
    set_name: str | None,
    k: int,
    n_images: int,
) -> CamOptions | None:
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


@app.command()
def report(
    model: Annotated[
        Path,
        typer.Argument(
            help="Exported fastai learner (.pkl), or a .safetensors file with its .json sidecar."
        ),
    ],
    test_dirs: Annotated[
        list[Path] | None, typer.Argument(help="Test folders, each named after itself.")
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output folder, or an .html file path.")
    ] = Path("reports"),
    name: Annotated[str | None, typer.Option(help="Report file name (default: model's).")] = None,
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="A named test folder: NAME=DIR (repeatable).")
    ] = None,
    in_domain: Annotated[
        Path | None,
        typer.Option(help="Training folder: re-create and predict its validation split."),
    ] = None,
    labels_from: LabelsFrom = "auto",
    label_regex: LabelRegex = None,
    labels_csv: LabelsCsv = None,
    label_map: LabelMap = None,
    strict: Strict = False,
    trust_model: TrustModel = False,
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    cam: Annotated[
        bool, typer.Option("--cam/--no-cam", help="Add the Grad-CAM 'why it fails' section.")
    ] = True,
    cam_method: Annotated[
        str,
        typer.Option(
            help="gradcam, gradcam++, hirescam, eigencam, scorecam or finercam.",
        ),
    ] = "gradcam",
    cam_layer: Annotated[
        str | None, typer.Option(help="Target layer (dotted name); default: found automatically.")
    ] = None,
    cam_classes: Annotated[
        str | None, typer.Option(help="Classes to explain, e.g. T,V,X (default: the worst k).")
    ] = None,
    cam_set: Annotated[
        str | None, typer.Option(help="Test set to explain (default: the largest).")
    ] = None,
    cam_k: Annotated[int, typer.Option(min=1, help="How many worst classes to explain.")] = 3,
    cam_images: Annotated[int, typer.Option(min=1, help="Images per explained class.")] = 4,
) -> None:
    """Evaluate MODEL on test folders and write an HTML + JSON report."""
    from asl_eval.pipeline import ReportRequest, name_sets, run_report

    label_options = _call(
        lambda: _label_options(labels_from, label_regex, labels_csv, label_map, strict)
    )
    request = ReportRequest(
        model=model,
        test_sets=_call(lambda: name_sets(list(test_dirs or []), _parse_sets(list(sets or [])))),
        out=out,
        name=name,
        in_domain=in_domain,
        trust_model=trust_model,
        label_options=label_options,
        command=_command_line(),
        batch_size=batch_size,
        cam=_cam_options(cam, cam_method, cam_layer, cam_classes, cam_set, cam_k, cam_images),
    )
    files = _call(lambda: run_report(request))
    typer.echo(f"report: {files.html}")
    typer.echo(f"numbers: {files.json}")
    typer.echo(f"predictions: {files.predictions_csv}")


@app.command()
def labels(
    test_dir: Annotated[Path, typer.Argument(help="Folder of images to label.")],
    model: Annotated[
        Path | None, typer.Option(help="Align labels with this model's classes.")
    ] = None,
    labels_from: LabelsFrom = "auto",
    label_regex: LabelRegex = None,
    labels_csv: LabelsCsv = None,
    label_map: LabelMap = None,
    strict: Strict = False,
    trust_model: TrustModel = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Dry run: how each rule labels TEST_DIR, counts per class, what is unmatched.

    Loads no image and runs no model (with --model, only its classes are read).
    """
    from asl_eval.labels import preview_labels

    options = _call(lambda: _label_options(labels_from, label_regex, labels_csv, label_map, strict))
    classes = None
    if model is not None:
        from asl_eval.inference import model_classes
        from asl_eval.loading import load_learner_file

        learner = _call(lambda: load_learner_file(model, trust_model=trust_model))
        classes = list(model_classes(learner))
    preview = _call(lambda: preview_labels(test_dir, classes=classes, options=options))
    if as_json:
        typer.echo(json.dumps(preview.to_dict(), indent=2, sort_keys=True))
    else:
        typer.echo(preview.render_text())
    if not preview.ok:
        raise _fail(str(preview.error))


@app.command("export-safe")
def export_safe_command(
    model: Annotated[Path, typer.Argument(help="Exported fastai learner (.pkl).")],
    out: Annotated[Path, typer.Argument(help="Weights file to write, ending in .safetensors.")],
    trust_model: TrustModel = False,
) -> None:
    """Write MODEL as safetensors weights plus a JSON sidecar that loads without pickle."""
    from asl_eval.loading import load_learner_file
    from asl_eval.safe_format import export_safe

    if out.suffix != ".safetensors":
        raise typer.BadParameter(f"must end in .safetensors, got {out.name}", param_hint="OUT")
    learner = _call(lambda: load_learner_file(model, trust_model=trust_model))
    weights, sidecar = _call(lambda: export_safe(learner, out))
    typer.echo(f"weights: {weights}")
    typer.echo(f"sidecar: {sidecar}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for the report.")] = Path(
        "reports"
    ),
    work_dir: Annotated[
        Path | None,
        typer.Option(help="Where to put the generated data and model (default: a temp folder)."),
    ] = None,
) -> None:
    """Generate stand-in ASL data, train a small model offline, and write its report."""
    from asl_eval.demo import run_demo

    files = _call(lambda: run_demo(out=out, work_dir=work_dir, echo=typer.echo))
    typer.echo(f"report: {files.html}")
    typer.echo(f"open it in a browser: {files.html.resolve().as_uri()}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
