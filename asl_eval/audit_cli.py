"""``asl-eval audit TRAIN_DIR [--model MODEL]``: the data audit of a training folder's random
validation split (and of test folders given with ``--against``).

Without ``--model`` only the hash-based leakage audit runs
(:func:`asl_eval.audit.command.run_audit`), and neither torch nor fastai is imported. With
``--model`` the model file is opened through the trust boundary the report uses
(:class:`asl_eval.inference.LazyModel`: the pickle scan, ``--trust-model``, the predictions
cache), the validation split and the ``--against`` folders are predicted, the leakage audit
gets their accuracy too (leak-adjusted accuracy), and the embedding analysis runs
(:func:`asl_eval.inference.features.embedding_audit`: domain AUC, accuracy by distance from the
training images, confirmation of the near-duplicate pairs, suspicious labels).

The command is registered in :mod:`asl_eval.cli`. Exit codes: 0 done, 1 an asl-eval error
(message on stderr), 2 a usage error.

Layer: above :mod:`asl_eval.pipeline` (it uses its set naming), beside :mod:`asl_eval.compare`
and :mod:`asl_eval.demo`. Imports only typer, :mod:`asl_eval.errors` and :mod:`asl_eval.console`
(progress bars on stderr) at module level, so ``asl-eval --help`` stays light; the stages inside
the command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from asl_eval.console import ShowProgress, progress_bars, progress_enabled
from asl_eval.errors import AslEvalError, printable

if TYPE_CHECKING:
    from asl_eval.analysis import AnalysisResult
    from asl_eval.progress import Progress

__all__ = ["audit_command", "run_model_audit"]


def run_model_audit(
    train_dir: Path,
    model_file: Path,
    *,
    valid_pct: float = 0.2,
    seed: int = 42,
    against: list[Path] | None = None,
    threshold: int | None = None,
    trust_model: bool = False,
    n_per_class: int = 50,
    batch_size: int | None = None,
    use_cache: bool = True,
    cache_dir: Path | None = None,
    workers: int | None = None,
    progress: Progress = None,
) -> tuple[AnalysisResult, AnalysisResult]:
    """The leakage audit with accuracy and the embedding analysis, with a model.

    The validation split is training's, re-created and predicted
    (:func:`asl_eval.training.predict_validation_split`): the training record beside the model
    names its kind (random, grouped, grouped by a metadata column), percentage, seed and
    labelling; without a record, the random split of ``valid_pct`` and ``seed``. Each
    ``against`` folder is predicted with its labels read as the report reads them. ``progress``
    gets every step's events (predicting, hashing, features). Returns ``(leakage, embeddings)``.
    """
    from asl_eval.audit import ThresholdRule, audit_leakage
    from asl_eval.inference import LazyModel, PredictionCache, default_cache_dir, predict_folder
    from asl_eval.inference.features import embedding_audit
    from asl_eval.pipeline import name_sets
    from asl_eval.training import (
        predict_validation_split,
        read_training_record,
        recorded_label_options,
        recorded_split,
    )

    cache = None
    if use_cache:
        try:
            cache = PredictionCache(cache_dir or default_cache_dir(), model_file)
        except OSError:  # a missing or unreadable model file: loading it says what is wrong
            cache = None
    model = LazyModel(model_file, batch_size=batch_size, trust_model=trust_model, cache=cache)
    model.describe()  # from the cache's model record, or by loading the model: fails early
    record = read_training_record(model_file) or {}
    config = record.get("config")
    if isinstance(config, dict):  # the split training made, not the options' defaults
        valid_pct = float(str(config.get("valid_pct", valid_pct)))
        seed = int(str(config.get("seed", seed)))
    split = recorded_split(record)
    labels = recorded_label_options(record)
    valid = predict_validation_split(
        model,
        train_dir,
        valid_pct=valid_pct,
        seed=seed,
        label_options=labels,
        split=split.kind,
        group_by=split.group_by,
        metadata=split.metadata,
        metadata_path_column=split.metadata_path_column,
        batch_size=batch_size,
        cache=cache,
        progress=progress,
    )
    tests = [
        predict_folder(
            model, folder, name=name, batch_size=batch_size, cache=cache, progress=progress
        )
        for name, folder in name_sets(list(against or []))
    ]
    leakage = audit_leakage(
        train_dir,
        valid,
        against=tests,
        thresholds=ThresholdRule(phash=threshold),
        thumbnails=False,
        workers=workers,
        cache=use_cache,
        cache_dir=cache_dir,
        progress=progress,
    )
    embeddings = embedding_audit(
        model.learner,
        train_dir,
        [valid, *tests],
        n_per_class=n_per_class,
        leakage=leakage,
        in_domain=valid.name,
        label_options=labels,
        batch_size=batch_size,
        cache=use_cache,
        cache_dir=cache_dir,
        model_key=cache.model_key if cache is not None else None,
        progress=progress,
    )
    return leakage, embeddings


def audit_command(
    train_dir: Annotated[
        Path, typer.Argument(help="The training folder: one sub-folder of images per class.")
    ],
    valid_pct: Annotated[
        float,
        typer.Option(
            "--valid-pct",
            help="Validation share of training's random split (with --model, the split in the "
            "training record beside it wins).",
        ),
    ] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of training's random split.")] = 42,
    against: Annotated[
        list[Path] | None,
        typer.Option("--against", help="A test folder to check too (repeatable)."),
    ] = None,
    threshold: Annotated[
        int | None,
        typer.Option(
            "--threshold",
            help="pHash threshold (bits of 64) for every class, instead of the per-class "
            "calibration.",
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="A trained model (.pkl or .safetensors): predict the sets and add the "
            "embedding analysis (domain AUC, accuracy by distance from training, confirmed "
            "near-duplicates, suspicious labels).",
        ),
    ] = None,
    trust_model: Annotated[
        bool,
        typer.Option(
            help="Load a .pkl even if the safety scan refuses it: it may run code (docs/trust.md)."
        ),
    ] = False,
    n_per_class: Annotated[
        int,
        typer.Option(
            "--n-per-class",
            min=2,
            help="With --model: training images per class the embeddings are compared with.",
        ),
    ] = 50,
    batch_size: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="With --model: images per forward pass (default: 8 on the CPU, 64 on a GPU).",
        ),
    ] = None,
    cache: Annotated[
        bool,
        typer.Option(
            help="Reuse and keep image hashes (and with --model, predictions) in the cache "
            "(docs/audit.md, docs/inference.md)."
        ),
    ] = True,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            help="The cache folder (default: $ASL_EVAL_CACHE_DIR, else the user's cache folder)."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, help="Processes that hash images (default: one per CPU, at most 8; 1: none)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    progress: ShowProgress = None,
) -> None:
    """Find validation and test images that are near-duplicates of training images (perceptual
    hashes; no model needed); with --model, also how far each image lies from the training
    images in the model's feature space and which labels look wrong."""
    from asl_eval.audit.command import render_embeddings, render_summary, run_audit
    from asl_eval.audit.records import leakage_record

    if not 0.0 < valid_pct < 1.0:
        raise typer.BadParameter(
            f"must be between 0 and 1, got {valid_pct:g}", param_hint="--valid-pct"
        )
    if threshold is not None and not -1 <= threshold <= 64:
        raise typer.BadParameter(
            f"must be between -1 and 64, got {threshold}", param_hint="--threshold"
        )
    embeddings = None
    try:
        with progress_bars(progress_enabled(progress)) as bars:
            if model is None:
                leakage = run_audit(
                    train_dir,
                    valid_pct=valid_pct,
                    seed=seed,
                    against=against,
                    threshold=threshold,
                    workers=workers,
                    cache=cache,
                    cache_dir=cache_dir,
                    progress=bars,
                )
            else:
                leakage, embeddings = run_model_audit(
                    train_dir,
                    model,
                    valid_pct=valid_pct,
                    seed=seed,
                    against=against,
                    threshold=threshold,
                    trust_model=trust_model,
                    n_per_class=n_per_class,
                    batch_size=batch_size,
                    use_cache=cache,
                    cache_dir=cache_dir,
                    workers=workers,
                    progress=bars,
                )
    except AslEvalError as error:
        typer.echo(f"error: {printable(error, keep=chr(10))}", err=True)
        raise typer.Exit(code=1) from None
    if as_json:
        record = leakage_record(leakage)
        if embeddings is not None:
            from asl_eval.audit.embeddings import embeddings_record

            record["embeddings"] = embeddings_record(embeddings)
        typer.echo(json.dumps(record, indent=2, ensure_ascii=False))
    else:
        typer.echo(render_summary(leakage), nl=False)
        if embeddings is not None:
            typer.echo(render_embeddings(embeddings), nl=False)
