"""Assignment: label a list of files, accounting for every one of them.

:func:`label_files` is the entry point used by ``report``, ``predict`` and ``train``: it detects
the rule (:mod:`asl_eval.labels.detection`), gives each file its class, and records each file it
cannot use in the ledger (``unlabeled`` or ``not_in_classes``), so that no file is dropped
silently. With ``strict`` those files are an error instead. :func:`label_outcome` is the same
work with the error returned, for the dry run.

May import: :mod:`asl_eval.errors`, :mod:`asl_eval.predictions` (the ledger entry),
:mod:`asl_eval.labels.rules`, :mod:`asl_eval.labels.alignment`,
:mod:`asl_eval.labels.detection` and the standard library. Never torch or fastai.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from asl_eval.errors import LabelError, first_few
from asl_eval.labels.alignment import Alignment
from asl_eval.labels.detection import Detection, Reading, detect_rule
from asl_eval.labels.rules import UNLABELED_REASONS, LabelOptions, unused_rows
from asl_eval.predictions import LedgerEntry

__all__ = [
    "NOT_IN_CLASSES_REASON",
    "LabelOutcome",
    "LabeledFiles",
    "label_files",
    "label_outcome",
]

NOT_IN_CLASSES_REASON = "label is not one of the model's classes"


@dataclass(frozen=True)
class LabeledFiles:
    """Files with a true label that is one of the model's classes, plus ledger entries for the
    files left unlabeled or labelled with a class the model does not have.

    Attributes
    ----------
    items
        ``(path, class)`` for every file whose label aligned with a class.
    entries
        ``unlabeled`` and ``not_in_classes`` ledger entries, in input order.
    rule
        The rule used: ``"folder"``, ``"filename"``, ``"regex"`` or ``"csv"``.
    alignment
        How the rule's labels mapped to classes.
    """

    items: tuple[tuple[Path, str], ...]
    entries: tuple[LedgerEntry, ...]
    rule: str
    alignment: Alignment | None = None


@dataclass(frozen=True)
class LabelOutcome:
    """Everything :func:`label_files` finds, with the error it would raise returned instead.

    Attributes
    ----------
    detection
        The rules read and the rule chosen.
    labeled
        The labelled files and ledger entries; None when detection failed.
    error
        The LabelError :func:`label_files` raises, or None.
    """

    detection: Detection
    labeled: LabeledFiles | None
    error: LabelError | None


def label_outcome(
    paths: Sequence[Path],
    root: Path,
    classes: Sequence[str] | None,
    options: LabelOptions,
    *,
    preview: bool = False,
) -> LabelOutcome:
    """Everything :func:`label_files` does; a LabelError found after reading is returned, not
    raised, so that the dry run can still show the counts (``preview``: see
    :func:`~asl_eval.labels.detection.detect_rule`).

    Raises
    ------
    LabelError
        If the options themselves are invalid (see :func:`~asl_eval.labels.detection.detect_rule`).
    """
    detection = detect_rule(paths, root, classes, options, preview=preview)
    if detection.error is not None or detection.chosen is None:
        return LabelOutcome(detection, None, detection.error)
    labeled = _account(paths, detection.chosen)
    error = _strict_error(labeled.entries, len(paths)) if options.strict else None
    return LabelOutcome(detection, labeled, error)


def _account(paths: Sequence[Path], reading: Reading) -> LabeledFiles:
    """Each path becomes an item, or an ``unlabeled`` / ``not_in_classes`` ledger entry."""
    items: list[tuple[Path, str]] = []
    entries: list[LedgerEntry] = []
    for i, path in enumerate(paths):
        label, aligned = reading.labels[i], reading.aligned(i)
        if label is None:
            entries.append(LedgerEntry(str(path), "unlabeled", UNLABELED_REASONS[reading.rule]))
        elif aligned is None:
            entries.append(LedgerEntry(str(path), "not_in_classes", NOT_IN_CLASSES_REASON, label))
        else:
            items.append((path, aligned))
    return LabeledFiles(tuple(items), tuple(entries), reading.rule, reading.alignment)


def _strict_error(entries: Sequence[LedgerEntry], n_paths: int) -> LabelError | None:
    """Under ``--strict``: the files that cannot be used, by kind, or None if there are none."""
    if not entries:
        return None
    unknown = [e for e in entries if e.status == "not_in_classes"]
    unlabeled = [e for e in entries if e.status == "unlabeled"]
    parts = []
    if unknown:
        labels = sorted({e.label or "" for e in unknown})
        parts.append(
            f"{len(unknown)} have labels that are not model classes "
            f"({first_few(labels, limit=10)}): {first_few([e.path for e in unknown])}"
        )
    if unlabeled:
        parts.append(f"{len(unlabeled)} have no label: {first_few([e.path for e in unlabeled])}")
    fix = "Add --label-map LABEL=CLASS entries, fix" if unknown else "Fix"
    return LabelError(
        f"--strict: {len(entries)} of {n_paths} files cannot be used; "
        + "; ".join(parts)
        + f". {fix} the files or the label rule, or drop --strict."
    )


def label_files(
    paths: Sequence[Path],
    *,
    root: str | Path,
    classes: Sequence[str] | None = None,
    options: LabelOptions | None = None,
) -> LabeledFiles:
    """Derive the true label of every path and align it with the model's classes.

    Parameters
    ----------
    paths
        The files found (:attr:`asl_eval.inputs.Discovery.images`).
    root
        The input folder; the folder rule gives no label to files directly inside it, and
        relative paths in a labels CSV are relative to it.
    classes
        The model's classes; None when there is no model yet (training), in which case labels
        are kept as read (after ``label_map``).
    options
        Where labels come from (default: ``auto``).

    Returns
    -------
    LabeledFiles
        Every path is either in ``items`` or in ``entries`` (``unlabeled`` /
        ``not_in_classes``), never dropped.

    Raises
    ------
    LabelError
        If no file gets a label, two rules disagree on some file (``auto``), the labels cannot
        be aligned without a silent merge, the options contradict each other, or ``strict`` is
        set and a file cannot be evaluated.

    Warns
    -----
    UserWarning
        When rows of the labels CSV name no file among ``paths``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     labeled = label_files(
    ...         [Path(folder, "A_test.jpg"), Path(folder, "notes.jpg")], root=folder, classes=["A"]
    ...     )
    >>> labeled.rule, [c for _, c in labeled.items], [e.status for e in labeled.entries]
    ('filename', ['A'], ['unlabeled'])
    """
    options = options or LabelOptions()
    paths = [Path(p) for p in paths]
    outcome = label_outcome(paths, Path(root), classes, options)
    if outcome.error is not None:
        raise outcome.error
    labeled = outcome.labeled
    if labeled is None:  # pragma: no cover - label_outcome sets error or labeled
        raise LabelError("internal error: no labels and no error")
    if labeled.rule == "csv":
        _warn_unused_rows(paths, Path(root), outcome.detection.table)
    return labeled


def _warn_unused_rows(paths: Sequence[Path], root: Path, table: Mapping[str, str] | None) -> None:
    """Warn (at the caller of :func:`label_files`) about labels CSV rows that name no file."""
    unused = unused_rows(paths, table)
    if unused:
        warnings.warn(
            f"{len(unused)} rows of the labels CSV name no image found under {root}: "
            f"{first_few(unused)}.",
            stacklevel=3,
        )
