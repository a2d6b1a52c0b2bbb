"""What ``asl-eval audit TRAIN_DIR`` runs and prints, without torch: the hash-based leakage
audit of a training folder's random validation split (and of test folders given with
``--against``), and the text of the audit and of the embedding analysis.

The split is training's: the folder is listed and labelled as ``asl-eval train`` lists it
(:func:`asl_eval.audit.hashes.hash_folder`) and split with fastai's ``RandomSplitter(valid_pct,
seed)`` re-created without torch (:func:`asl_eval.audit.splits.random_split`). Without a model
there are no predictions, so the audit reports near-duplicate shares, not accuracy (the report's
leakage section, which has the predictions, shows the leak-adjusted accuracy).

The typer command itself is :func:`asl_eval.audit_cli.audit_command` (a layer above, so that
``--model`` can load a model); this module stays torch-free.

Imports the audit package (inside the functions) and :mod:`asl_eval.errors`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from asl_eval.errors import printable

if TYPE_CHECKING:
    import pandas as pd

    from asl_eval.analysis import AnalysisResult
    from asl_eval.progress import Progress

__all__ = ["render_embeddings", "render_summary", "run_audit"]

_SHOWN = 10


def run_audit(
    train_dir: Path,
    *,
    valid_pct: float = 0.2,
    seed: int = 42,
    against: list[Path] | None = None,
    threshold: int | None = None,
    workers: int | None = None,
    cache: bool = True,
    cache_dir: Path | None = None,
    progress: Progress = None,
) -> AnalysisResult:
    """Hash ``train_dir``, re-create training's random validation split and audit it (and the
    ``against`` folders) for near-duplicates of the training part. ``workers``, ``cache``,
    ``cache_dir`` and ``progress`` are the hashing's (:func:`asl_eval.audit.hash_folder`)."""
    from asl_eval.audit.hashes import hash_folder
    from asl_eval.audit.leakage import audit_leakage
    from asl_eval.audit.splits import random_split
    from asl_eval.audit.thresholds import ThresholdRule

    table = hash_folder(
        train_dir,
        name="train",
        workers=workers,
        cache=cache,
        cache_dir=cache_dir,
        progress=progress,
    )
    train_index, valid_index = random_split(len(table), valid_pct=valid_pct, seed=seed)
    return audit_leakage(
        table.take(sorted(train_index.tolist())),
        table.take(sorted(valid_index.tolist()), name="valid"),
        against=list(against or []),
        thresholds=ThresholdRule(phash=threshold),
        thumbnails=False,
        workers=workers,
        cache=cache,
        cache_dir=cache_dir,
        progress=progress,
    )


def _set_line(row: pd.Series) -> str:
    import pandas as pd

    share = row["near_duplicate_share"]
    percent = f"{share:.1%}" if pd.notna(share) else "–"
    line = (
        f"{printable(row['set'])}: {row['n_images']} images, {row['near_duplicates']} with a "
        f"near-duplicate in training ({percent}), {row['exact_duplicates']} exact copies"
    )
    if row.get("n_evaluated", 0) and pd.notna(row.get("accuracy")):
        adjusted = row["leak_adjusted_accuracy"]
        line += f"; accuracy {row['accuracy']:.1%}, leak-adjusted " + (
            f"{adjusted:.1%}" if pd.notna(adjusted) else "–"
        )
    return line


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


def _number(value: object, digits: int = 2) -> str:
    import math

    return f"{value:.{digits}f}" if isinstance(value, float | int) and math.isfinite(value) else "–"


def render_embeddings(result: AnalysisResult) -> str:
    """The embedding analysis as a few lines of text for the terminal: domain AUC per set,
    accuracy by distance bin, the candidate pairs' verdicts and the suspicious labels (names
    made printable)."""
    from asl_eval.audit.records import info_table

    summary = result.summary_record()
    lines = [
        f"embeddings: {summary['n_train']} training images sampled, k = {summary['k']} "
        "nearest by cosine distance of the model's penultimate features"
    ]
    for _, row in info_table(result, "auc").iterrows():
        lines.append(
            f"domain AUC {printable(row['set'])} vs {printable(row['reference'])}: "
            f"{_number(row['auc'])} (95% {_number(row['auc_low'])}-{_number(row['auc_high'])})"
        )
    bins = info_table(result, "distance_bins")
    for _, row in info_table(result, "sets").iterrows():
        part = bins[bins["set"] == row["set"]]
        accuracies = ", ".join(
            f"{_number(b['accuracy'] * 100, 0)}%" if b["n_images"] else "–"
            for _, b in part.iterrows()
        )
        lines.append(
            f"{printable(row['set'])}: accuracy by distance bin, nearest first: {accuracies}; "
            f"wrong further than right in {_number(row['error_distance_auc'])} of pairs "
            f"(Mann-Whitney p {_number(row['error_distance_p'], 3)})"
        )
    pairs = info_table(result, "pairs")
    if len(pairs):
        confirmed = int(pairs["confirmed"].astype(bool).sum())
        lines.append(
            "near-duplicate candidates confirmed by the features (cosine similarity at the "
            f"{summary['confirm_quantile']:.0%} quantile of same-class training pairs or "
            f"above): {confirmed} of {len(pairs)}"
        )
    suspicious = info_table(result, "suspicious")
    lines.append(
        f"suspicious labels (confidence >= {summary['high_confidence']}, neighbours agree "
        f"with the model): {len(suspicious)}"
    )
    for _, row in suspicious.head(_SHOWN).iterrows():
        lines.append(
            f"  {printable(row['set'])}: {printable(row['relpath'])} labelled "
            f"{printable(row['y_true'])}, predicted {printable(row['y_pred'])} "
            f"({row['confidence']:.0%})"
        )
    if len(suspicious) > _SHOWN:
        lines.append(f"  ... and {len(suspicious) - _SHOWN} more (--json lists them all)")
    excluded = info_table(result, "excluded")
    if len(excluded):
        lines.append(f"files without features: {len(excluded)} (--json lists them with reasons)")
    return "\n".join(lines) + "\n"
