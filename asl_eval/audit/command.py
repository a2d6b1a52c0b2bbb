"""``asl-eval audit TRAIN_DIR``: the hash-based leakage audit of a training folder's random
validation split (and of test folders given with ``--against``), without a model.

The split is training's: the folder is listed and labelled as ``asl-eval train`` lists it
(:func:`asl_eval.audit.hashes.hash_folder`) and split with fastai's ``RandomSplitter(valid_pct,
seed)`` re-created without torch (:func:`asl_eval.audit.splits.random_split`). Without a model
there are no predictions, so the audit reports near-duplicate shares, not accuracy (the report's
leakage section, which has the predictions, shows the leak-adjusted accuracy).

The command is registered in :mod:`asl_eval.cli`. Exit codes: 0 done, 1 an asl-eval error
(message on stderr), 2 a usage error.

Imports typer and the audit package.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from asl_eval.errors import AslEvalError, printable

if TYPE_CHECKING:
    import pandas as pd

    from asl_eval.analysis import AnalysisResult

__all__ = ["audit_command", "render_summary", "run_audit"]

_SHOWN = 10


def run_audit(
    train_dir: Path,
    *,
    valid_pct: float = 0.2,
    seed: int = 42,
    against: list[Path] | None = None,
    threshold: int | None = None,
) -> AnalysisResult:
    """Hash ``train_dir``, re-create training's random validation split and audit it (and the
    ``against`` folders) for near-duplicates of the training part."""
    from asl_eval.audit.hashes import hash_folder
    from asl_eval.audit.leakage import audit_leakage
    from asl_eval.audit.splits import random_split
    from asl_eval.audit.thresholds import ThresholdRule

    table = hash_folder(train_dir, name="train")
    train_index, valid_index = random_split(len(table), valid_pct=valid_pct, seed=seed)
    return audit_leakage(
        table.take(sorted(train_index.tolist())),
        table.take(sorted(valid_index.tolist()), name="valid"),
        against=list(against or []),
        thresholds=ThresholdRule(phash=threshold),
        thumbnails=False,
    )


def _set_line(row: pd.Series) -> str:
    import pandas as pd

    share = row["near_duplicate_share"]
    percent = f"{share:.1%}" if pd.notna(share) else "–"
    return (
        f"{printable(row['set'])}: {row['n_images']} images, {row['near_duplicates']} with a "
        f"near-duplicate in training ({percent}), {row['exact_duplicates']} exact copies"
    )


def render_summary(result: AnalysisResult) -> str:
    """The audit as a few lines of text for the terminal (names made printable)."""
    from asl_eval.audit.records import info_table

    summary = result.summary_record()
    sets = info_table(result, "sets")
    lines = [f"training images: {summary['n_train']}"]
    lines += [_set_line(row) for _, row in sets.iterrows()]
    lines.append(f"thresholds: {summary['threshold_rule']}")
    items = result.items
    flagged = items[items["near_duplicate"].astype(bool)].sort_values(
        ["phash_distance", "dhash_distance"], kind="stable"
    )
    for name, part in flagged.groupby("set", sort=False):
        lines.append(f"closest near-duplicates in {printable(name)}:")
        for _, row in part.head(_SHOWN).iterrows():
            lines.append(
                f"  {printable(row['relpath'])} ~ {printable(row['nearest_train'])} "
                f"(pHash {row['phash_distance']}, dHash {row['dhash_distance']}"
                f"{', identical file' if row['exact_duplicate'] else ''})"
            )
        if len(part) > _SHOWN:
            lines.append(f"  ... and {len(part) - _SHOWN} more (--json lists them all)")
    excluded = info_table(result, "excluded")
    if len(excluded):
        lines.append(f"files not hashed: {len(excluded)} (--json lists them with reasons)")
    return "\n".join(lines) + "\n"


def audit_command(
    train_dir: Annotated[
        Path, typer.Argument(help="The training folder: one sub-folder of images per class.")
    ],
    valid_pct: Annotated[
        float, typer.Option("--valid-pct", help="Validation share of training's random split.")
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
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Find validation and test images that are near-duplicates of training images (perceptual
    hashes; no model needed)."""
    from asl_eval.audit.records import leakage_record

    if not 0.0 < valid_pct < 1.0:
        raise typer.BadParameter(
            f"must be between 0 and 1, got {valid_pct:g}", param_hint="--valid-pct"
        )
    if threshold is not None and not -1 <= threshold <= 64:
        raise typer.BadParameter(
            f"must be between -1 and 64, got {threshold}", param_hint="--threshold"
        )
    try:
        result = run_audit(
            train_dir, valid_pct=valid_pct, seed=seed, against=against, threshold=threshold
        )
    except AslEvalError as error:
        typer.echo(f"error: {printable(error, keep=chr(10))}", err=True)
        raise typer.Exit(code=1) from None
    if as_json:
        typer.echo(json.dumps(leakage_record(result), indent=2, ensure_ascii=False))
    else:
        typer.echo(render_summary(result), nl=False)
