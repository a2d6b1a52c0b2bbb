"""``asl-eval stress MODEL IMAGES...``: the robustness sweep on labelled image folders, as a
plain function the CLI registers (``app.command("stress")(stress_command)``).

It opens the model through the trust boundary (:class:`asl_eval.inference.LazyModel`, so an
unsafe pickle is refused unless ``--trust-model``), labels the images by their folder names
aligned with the model's classes (:func:`asl_eval.labels.label_files`; unlabeled files and
labels the model lacks are counted as excluded), runs :func:`asl_eval.stress.stress_sweep` and
prints a summary, or the JSON record with ``--json``; ``--out`` also writes the JSON to a file.
Exit codes: 0 done, 1 an asl-eval error (message on stderr), 2 a usage error.

May import: Typer, :mod:`asl_eval.errors`, :mod:`asl_eval.console` (progress bars on stderr)
and the stress catalogue (standard library) at the top; the other stress modules, the inputs,
the labels and the inference stage inside the command (so ``asl-eval --help`` stays light).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from asl_eval.console import ShowProgress, progress_bars, progress_enabled
from asl_eval.errors import AslEvalError, printable
from asl_eval.stress.catalogue import DEFAULT_SEVERITIES

if TYPE_CHECKING:
    from asl_eval.analysis import AnalysisResult
    from asl_eval.predictions import LedgerEntry

__all__ = ["parse_corruptions", "parse_severities", "render_summary", "stress_command"]

logger = logging.getLogger(__name__)

# Measured by benchmarks/bench_stress.py (docs/benchmarks.md), resnet18 at 200 px, 2 CPU cores.
_HELP = (
    "Robustness sweep: accuracy per class under image changes (blur, noise, lighting, colour, "
    "rotation, scale, background, ...) at severities 1 to 5, on a seeded sample of "
    "--n-per-class images per class of IMAGES (labelled by their folder names).\n\n"
    "The default (7 changes at severity 3, 30 images per class) takes about 4 minutes for 29 "
    "classes on two idle CPU cores at 200 px; the full sweep (--corruptions all --severities "
    "1..5: 23 changes, 116 conditions) about an hour (docs/stress.md, "
    "docs/benchmarks.md). --corruptions list prints every change."
)

_DEFAULT_SEVERITIES = ",".join(str(level) for level in DEFAULT_SEVERITIES)

ModelArgument = Annotated[
    Path,
    typer.Argument(
        help="Exported fastai learner (.pkl), or a .safetensors file with its .json sidecar."
    ),
]
ImagesArgument = Annotated[
    list[Path],
    typer.Argument(help="Image folders (one subfolder per class) or image files in them."),
]
Corruptions = Annotated[
    str,
    typer.Option(
        help="Comma-separated changes, 'default', 'all', or 'list' to print them and exit.",
    ),
]
Severities = Annotated[
    str,
    typer.Option(help="Severities: '1..5', '1,3,5' or '0' (the identity)."),
]
NPerClass = Annotated[int, typer.Option(min=1, help="Images sampled per class.")]
SeedOption = Annotated[int, typer.Option(min=0, help="Base seed of the sample and the changes.")]
BatchSizeOption = Annotated[
    int | None,
    typer.Option(min=1, help="Images per forward pass (default: 8 on the CPU, 64 on a GPU)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the JSON record instead of text.")]
OutOption = Annotated[
    Path | None, typer.Option("--out", help="Also write the JSON record to this file.")
]
TrustModelOption = Annotated[
    bool,
    typer.Option(
        help="Load a .pkl even if the safety scan refuses it: it may run code (docs/trust.md)."
    ),
]


def parse_corruptions(value: str) -> tuple[str, ...]:
    """``--corruptions``: ``default``, ``all`` or comma-separated names.

    >>> parse_corruptions("rotate, background")
    ('rotate', 'background')
    """
    from asl_eval.stress.catalogue import CATALOGUE, DEFAULT_CORRUPTIONS, check_corruptions

    text = value.strip().lower()
    if text == "default":
        return DEFAULT_CORRUPTIONS
    if text == "all":
        return tuple(CATALOGUE)
    return check_corruptions([part.strip() for part in text.split(",") if part.strip()])


def parse_severities(value: str) -> tuple[int, ...]:
    """``--severities``: a range ``a..b`` or comma-separated whole numbers.

    >>> parse_severities("1..5"), parse_severities("5,1")
    ((1, 2, 3, 4, 5), (1, 5))
    """
    from asl_eval.errors import InputError
    from asl_eval.stress.catalogue import check_severities

    text = value.replace(" ", "")
    try:
        if ".." in text:
            low, high = (int(part) for part in text.split("..", 1))
            values = list(range(low, high + 1))
        else:
            values = [int(part) for part in text.split(",") if part]
    except ValueError:
        raise InputError(f"--severities expects '1..5' or '1,3,5', got {value!r}") from None
    return check_severities(values)


def _catalogue_text() -> str:
    from asl_eval.stress.catalogue import CATALOGUE, DEFAULT_CORRUPTIONS

    lines = []
    for info in CATALOGUE.values():
        marks: list[str] = [info.family]
        if info.name in DEFAULT_CORRUPTIONS:
            marks.append("default")
        if not info.label_preserving:
            marks.append("NOT label-preserving")
        lines.append(f"{info.name} ({', '.join(marks)}): {info.description}")
        lines.append(f"    severities 1-5: {'; '.join(info.levels)}")
    return "\n".join(lines)


def _labelled(
    images: list[Path], classes: tuple[str, ...]
) -> tuple[list[Path], list[str], list[LedgerEntry]]:
    """Every image under ``images`` labelled by its folder's name (aligned with ``classes``),
    and the files that could not be labelled, with their reasons."""
    from asl_eval.inputs import discover_images
    from asl_eval.labels import LabelOptions, label_files

    paths: list[Path] = []
    labels: list[str] = []
    entries: list[LedgerEntry] = []
    for root in images:
        discovery = discover_images(root)
        base = discovery.root if Path(root).is_dir() else Path(root).parent.parent
        labeled = label_files(
            list(discovery.images),
            root=base,
            classes=classes,
            options=LabelOptions(source="folder"),
        )
        for path, label in labeled.items:
            paths.append(Path(path))
            labels.append(str(label))
        entries += [*discovery.entries, *labeled.entries]
    return paths, labels, entries


def render_summary(result: AnalysisResult, *, top: int = 5) -> str:
    """The sweep in a few lines of text: clean accuracy, the score, each change, the most
    fragile classes and where the errors go."""
    import pandas as pd

    summary = result.summary_record()
    parameters = result.info.get("parameters", {})
    lines = [
        f"{summary['n_images']} images, {summary['n_classes']} classes; clean accuracy "
        f"{_percent(summary['clean_accuracy'])} (95% CI {_percent(summary['clean_accuracy_low'])}"
        f"–{_percent(summary['clean_accuracy_high'])})",
        f"mean corruption error (mCE) {_points(summary['mean_corruption_error'])} points; "
        f"worst change: {summary['worst_corruption']}",
        f"  {summary['score_formula']}",
        "change: mean accuracy over severities, corruption error (points)",
    ]
    corruptions = result.info["corruptions"]
    if isinstance(corruptions, pd.DataFrame):
        for row in corruptions.itertuples(index=False):
            mark = "" if row.label_preserving else "  (not label-preserving: not in mCE)"
            lines.append(
                f"  {row.corruption}: {_percent(row.mean_accuracy)}, "
                f"{_points(row.corruption_error)}{mark}"
            )
    fragile = result.info["fragile_classes"]
    if isinstance(fragile, pd.DataFrame) and len(fragile):
        lines.append("most fragile classes: clean → under the changes (worst change)")
        for row in fragile.head(top).itertuples(index=False):
            lines.append(
                f"  {row[0]}: {_percent(row.clean_accuracy)} → "
                f"{_percent(row.corrupted_accuracy)} ({row.worst_corruption} "
                f"{_percent(row.worst_accuracy)})"
            )
    destinations = result.info["error_destinations"]
    if isinstance(destinations, pd.DataFrame) and len(destinations):
        lines.append("where the errors go (change: true → predicted, errors of images)")
        for row in destinations.head(top).itertuples(index=False):
            lines.append(
                f"  {row.corruption}: {row[1]} → {row.predicted}, {row.n_errors} of "
                f"{row.n_images} ({row.n_new} right when unchanged)"
            )
    if isinstance(parameters, dict) and "seconds" in parameters:
        lines.append(
            f"{parameters['n_forward_passes']} forward passes in {parameters['seconds']:.0f} s"
        )
    return printable("\n".join(lines), keep="\n")


def _percent(value: object) -> str:
    number = float(value) if isinstance(value, int | float) else float("nan")
    return "–" if number != number else f"{100 * number:.0f}%"


def _points(value: object) -> str:
    number = float(value) if isinstance(value, int | float) else float("nan")
    return "–" if number != number else f"{100 * number:+.1f}"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {printable(message, keep=chr(10))}", err=True)
    return typer.Exit(code=1)


def stress_command(
    model: ModelArgument,
    images: ImagesArgument,
    corruptions: Corruptions = "default",
    severities: Severities = _DEFAULT_SEVERITIES,
    n_per_class: NPerClass = 30,
    seed: SeedOption = 0,
    batch_size: BatchSizeOption = None,
    as_json: AsJson = False,
    out: OutOption = None,
    trust_model: TrustModelOption = False,
    progress: ShowProgress = None,
) -> None:
    if corruptions.strip().lower() == "list":
        typer.echo(_catalogue_text())
        return
    from asl_eval.inference import LazyModel
    from asl_eval.stress.records import robustness_record
    from asl_eval.stress.sweep import stress_sweep

    try:
        chosen = parse_corruptions(corruptions)
        levels = parse_severities(severities)
    except AslEvalError as error:
        raise typer.BadParameter(str(error)) from None
    if not model.is_file():
        raise _fail(f"Model file {model} does not exist.")
    try:
        engine = LazyModel(model, batch_size=batch_size, trust_model=trust_model)
        paths, labels, entries = _labelled(list(images), engine.classes)
        with progress_bars(progress_enabled(progress)) as bars:
            result = stress_sweep(
                engine,
                paths,
                labels,
                corruptions=chosen,
                severities=levels,
                n_per_class=n_per_class,
                seed=seed,
                batch_size=batch_size,
                excluded=entries,
                set_name=", ".join(Path(p).name for p in images),
                progress=bars,
            )
    except AslEvalError as error:
        raise _fail(str(error)) from None
    record = robustness_record(result)
    text = json.dumps(record, indent=2, sort_keys=True, allow_nan=False)
    if out is not None:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text + "\n", encoding="utf-8")
        except OSError as error:
            raise _fail(f"could not write {out}: {error}") from None
    typer.echo(text if as_json else render_summary(result))


stress_command.__doc__ = _HELP
