"""The training data: which files train, with which labels, as fastai DataLoaders.

:func:`training_items` lists the training folder's images (:mod:`asl_eval.inputs`), labels them
(:func:`asl_eval.labels.label_files`) and, by default, decodes each once so an unreadable file
is set aside with its reason instead of stopping training halfway through an epoch.
:func:`make_dataloaders` turns the result into the tutorial's ``DataBlock``.

Imports :mod:`asl_eval.errors`, :mod:`asl_eval.inputs`, :mod:`asl_eval.labels`,
:mod:`asl_eval.predictions` and :mod:`asl_eval.training.label_lookup`; fastai inside
:func:`make_dataloaders` and :func:`split_indices`, and the audit (hashes, frame groups, the
grouped split, the metadata table) inside :func:`split_indices` and :func:`group_values`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from asl_eval.errors import InputError, LabelError, TrainingError, UnreadableImage, first_few
from asl_eval.inputs import discover_images, load_rgb, path_under
from asl_eval.labels import LabelOptions, label_files
from asl_eval.predictions import LedgerEntry

if TYPE_CHECKING:
    from fastai.data.core import DataLoaders

    from asl_eval.training.recipe import TrainConfig

__all__ = [
    "SPLITS",
    "TrainingItems",
    "check_split_options",
    "group_values",
    "make_dataloaders",
    "split_indices",
    "training_items",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingItems:
    """The training folder's usable images with their labels, the ledger of those that cannot
    be used, and the label rule that was applied."""

    items: tuple[tuple[Path, str], ...]
    entries: tuple[LedgerEntry, ...]
    rule: str = "folder"
    root: Path | None = None

    @property
    def paths(self) -> tuple[Path, ...]:
        """The usable images, in training order."""
        return tuple(path for path, _ in self.items)

    @property
    def follows_folders(self) -> bool:
        """Whether every label is the parent folder's name (then fastai's ``parent_label``
        reproduces them, as in the tutorial)."""
        return all(label == path.parent.name for path, label in self.items)


def training_items(
    data_dir: str | Path,
    *,
    check_images: bool = True,
    label_options: LabelOptions | None = None,
) -> TrainingItems:
    """Every labelled image under ``data_dir``, in a fixed order.

    Discovery is :func:`asl_eval.inputs.discover_images` (recursive, hidden files skipped).
    Labels come from :func:`asl_eval.labels.label_files` with ``label_options`` (default: the
    recipe's parent folder name); a file the rule gives no label is recorded as unlabeled.
    With ``check_images`` each labelled file is decoded once and an unreadable one is excluded
    with its reason, instead of stopping training halfway through an epoch.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputError(f"Training folder {data_dir} does not exist or is not a folder.")
    options = label_options or LabelOptions(source="folder")
    discovery = discover_images(data_dir, follow_links=options.follow_links)
    labeled = label_files(list(discovery.images), root=data_dir, options=options)
    read = set(labeled.alignment.mapping) if labeled.alignment is not None else set()
    unused_map = sorted(set(options.label_map) - read)
    if unused_map:
        raise LabelError(
            f"--label-map names labels that the {labeled.rule} rule finds on no file in "
            f"{data_dir}: {first_few(unused_map)} (labels found: "
            f"{first_few(sorted(read), limit=10)}). Fix the typo or drop the entry."
        )
    entries: list[LedgerEntry] = [*discovery.entries, *labeled.entries]
    items = _readable(labeled.items, entries) if check_images else list(labeled.items)
    _check_enough(data_dir, items, entries, labeled.rule)
    return TrainingItems(tuple(items), tuple(entries), labeled.rule, data_dir)


def _readable(
    labeled: Iterable[tuple[Path, str]], entries: list[LedgerEntry]
) -> list[tuple[Path, str]]:
    """The labelled files that decode; each one that does not is added to ``entries``."""
    items: list[tuple[Path, str]] = []
    for path, label in labeled:
        try:
            load_rgb(path)
        except UnreadableImage as error:
            entries.append(LedgerEntry(str(path), "excluded", error.reason, label=label))
            continue
        items.append((path, label))
    return items


def _check_enough(
    data_dir: Path, items: list[tuple[Path, str]], entries: list[LedgerEntry], rule: str
) -> None:
    """At least two classes of usable files; the files set aside are logged."""
    if not items:
        raise InputError(
            f"Training folder {data_dir} holds no usable labelled images "
            f"({len(entries)} files set aside: {first_few([e.path for e in entries])})."
        )
    if len({label for _, label in items}) < 2:
        raise InputError(
            f"The {rule} rule gives every usable file in {data_dir} the same label, "
            f"{items[0][1]!r}, and a classifier needs at least two classes."
        )
    if entries:
        logger.warning(
            "%d of %d files in %s are not used for training: %s",
            len(entries),
            len(entries) + len(items),
            data_dir,
            first_few([f"{Path(e.path).name} ({e.reason})" for e in entries]),
        )


SPLITS = ("random", "grouped")
"""The validation splits training offers: fastai's seeded ``RandomSplitter`` (the tutorial's),
or ``grouped``, which keeps each group of near-identical frames on one side
(:func:`asl_eval.audit.frame_groups`, :func:`asl_eval.audit.grouped_split`) and, with a
``group_by`` column of a metadata CSV, each value of that column too (a signer)."""


def _relpath(path: Path, root: Path | None) -> str:
    """``path`` relative to ``root`` with ``/`` separators; "" when outside it or no root."""
    return (path_under(path, root) or "") if root is not None else ""


def group_values(
    items: Sequence[tuple[Path, str]],
    *,
    group_by: str,
    metadata: str | Path,
    path_column: str = "path",
    root: str | Path | None = None,
) -> list[str]:
    """Each training image's value in the metadata column ``group_by`` (its signer).

    Rows are matched to images as for the report's slices
    (:func:`asl_eval.audit.metadata.match_metadata`: the path relative to ``root``, the training
    folder, then the resolved path, then a unique file name). An image without a row, or with
    an empty cell, is an error, not a group of its own: a signer's image left out of the CSV
    could otherwise land on the other side of the split from the rest of that signer's images.
    Give such images a value (``unknown``) to keep them together.

    Raises
    ------
    TrainingError
        When the CSV cannot be read, lacks the column, or leaves images without a value.
    """
    from asl_eval.audit.metadata import NO_METADATA, match_metadata, read_metadata, slice_column

    try:
        table = read_metadata(metadata, path_column=path_column)
    except InputError as error:
        raise TrainingError(f"--metadata: {error}") from None
    if group_by not in table.columns or group_by == path_column:
        others = [c for c in table.columns if c != path_column]
        raise TrainingError(
            f"--group-by {group_by!r} is not a column of {metadata}; its columns besides "
            f"{path_column!r} are {first_few(others, limit=10)}."
        )
    base = Path(root) if root is not None else None
    paths = [path for path, _ in items]
    relpaths = [_relpath(path, base) for path in paths]
    found = match_metadata(
        paths,
        table,
        relpaths=relpaths if base is not None and all(relpaths) else (),
        path_column=path_column,
    )
    values = slice_column(table, found, group_by).tolist()
    missing = [paths[i] for i, value in enumerate(values) if value == NO_METADATA]
    if missing:
        raise TrainingError(
            f"{len(missing)} of {len(paths)} training images have no {group_by!r} value in "
            f"{metadata} (no row, or an empty cell): "
            f"{first_few([_relpath(p, base) or str(p) for p in missing])}. The grouped split "
            "keeps each value on one side, so every image needs one: add rows for them (a "
            "value such as 'unknown' keeps them together)."
        )
    return [str(value) for value in values]


def split_indices(
    items: Sequence[tuple[Path, str]],
    *,
    valid_pct: float,
    seed: int,
    kind: str = "random",
    group_by: str | None = None,
    metadata: str | Path | None = None,
    metadata_path_column: str = "path",
    root: str | Path | None = None,
) -> tuple[list[int], list[int]]:
    """``(train_index, valid_index)`` of ``items`` (``(file, label)`` pairs in training order)
    for the split ``kind`` (one of :data:`SPLITS`).

    ``random`` is fastai's ``RandomSplitter(valid_pct, seed)``. ``grouped`` joins frames whose
    numbers are close or whose perceptual hashes are near (the audit's frame groups, with its
    default ``G`` and ``D``) and puts each group wholly on one side, stratified by class, so
    the validation score is not inflated by near-copies of training frames. With ``group_by``
    (a column of the ``metadata`` CSV, such as ``signer``; :func:`group_values`) images that
    share a value are joined too: the groups are the union of both groupings
    (:func:`asl_eval.audit.splits.join_groups`), so one signer, and every frame group reaching
    into that signer's images, stays on one side. ``root`` is the training folder (the
    metadata's relative paths are matched against paths relative to it).

    Raises
    ------
    TrainingError
        For an unknown ``kind``, ``group_by`` without ``metadata`` or with the random split,
        images the grouped split cannot hash or group, or a grouped split that leaves
        validation or training empty.
    """
    check_split_options(kind, group_by, metadata)
    if kind == "random":
        from fastai.vision.all import RandomSplitter

        train, valid = RandomSplitter(valid_pct=valid_pct, seed=seed)(list(items))
        return [int(i) for i in train], [int(i) for i in valid]
    from asl_eval.audit import frame_groups, grouped_split, hash_files
    from asl_eval.audit.splits import join_groups

    paths = [str(path) for path, _ in items]
    labels = [label for _, label in items]
    table = hash_files(paths, labels=labels)
    if len(table.paths) != len(paths):
        raise TrainingError(
            f"{len(paths) - len(table.paths)} training images could not be hashed for the "
            "grouped split; train with --check-images to set unreadable files aside first."
        )
    groups = frame_groups(paths, labels=labels, phash=table.phash)
    if group_by is not None and metadata is not None:
        values = group_values(
            items, group_by=group_by, metadata=metadata, path_column=metadata_path_column, root=root
        )
        groups = join_groups(groups, values)
    train, valid = grouped_split(paths, labels, groups, valid_pct=valid_pct, seed=seed)
    if len(valid) == 0 or len(train) == 0:
        side = "validation" if len(valid) == 0 else "training"
        raise TrainingError(
            f"The grouped split leaves {side} empty: {len(set(groups.tolist()))} groups over "
            f"{len(paths)} images cannot be divided near {valid_pct:.0%}"
            + (f" (the {group_by!r} values join into few groups)" if group_by else "")
            + ". Change --valid-pct, or group by a column with more values."
        )
    _warn_unvalidated(labels, valid)
    return [int(i) for i in train], [int(i) for i in valid]


def _warn_unvalidated(labels: Sequence[str], valid: Iterable[int]) -> None:
    """Log the classes a grouped split leaves without validation images (a class whose images
    all join one group stays in training whole): their validation accuracy is unmeasured."""
    missing = sorted(set(labels) - {labels[int(i)] for i in valid})
    if missing:
        logger.warning(
            "the grouped split leaves %d of %d classes without validation images (%s): their "
            "frames join into one group each; the validation accuracy does not cover them",
            len(missing),
            len(set(labels)),
            first_few(missing, limit=8),
        )


def check_split_options(kind: str, group_by: str | None, metadata: object) -> None:
    """The split options agree: a known ``kind``; ``group_by`` and ``metadata`` together, and
    only with the grouped split."""
    if kind not in SPLITS:
        raise TrainingError(f"unknown split {kind!r}; choose one of {', '.join(SPLITS)}")
    if group_by is not None and metadata is None:
        raise TrainingError(f"--group-by {group_by} needs --metadata CSV (the column's table).")
    if metadata is not None and group_by is None:
        raise TrainingError("--metadata is used to group the split: pass --group-by COLUMN.")
    if group_by is not None and kind != "grouped":
        raise TrainingError(f"--group-by {group_by} needs --split grouped.")


def make_dataloaders(found: TrainingItems, config: TrainConfig) -> DataLoaders:
    """The tutorial's DataBlock (seeded random split, ``Resize``, ``aug_transforms``) over the
    labelled training files.

    Raises :class:`~asl_eval.errors.TrainingError` when the training split does not fill one
    batch (fastai drops the last partial batch, so training would see no image).

    Labels are fastai's ``parent_label`` when every label is the parent folder's name (the
    recipe, and an export identical to the tutorial's); otherwise they are looked up from
    ``found`` (:class:`asl_eval.training.label_lookup.LabelLookup`).
    """
    from fastai.vision.all import (
        CategoryBlock,
        DataBlock,
        ImageBlock,
        IndexSplitter,
        RandomSplitter,
        Resize,
        aug_transforms,
        parent_label,
        set_seed,
    )

    from asl_eval.training.label_lookup import LabelLookup

    if found.follows_folders:
        get_y: object = parent_label
    else:
        get_y = LabelLookup({str(path): label for path, label in found.items}, found.rule)
        logger.info(
            "labels by the %s rule, not parent folders: the exported model names "
            "asl_eval.training.label_lookup.LabelLookup, so loading it needs asl-eval installed "
            "(--safe-copy writes a copy that loads without it)",
            found.rule,
        )
    set_seed(config.seed, reproducible=True)
    block = DataBlock(
        blocks=(ImageBlock, CategoryBlock),
        get_y=get_y,
        splitter=(
            RandomSplitter(valid_pct=config.valid_pct, seed=config.seed)
            if config.split == "random"
            else IndexSplitter(
                split_indices(
                    found.items,
                    valid_pct=config.valid_pct,
                    seed=config.seed,
                    kind="grouped",
                    group_by=config.group_by,
                    metadata=config.metadata,
                    metadata_path_column=config.metadata_path_column,
                    root=found.root,
                )[1]
            )
        ),
        item_tfms=Resize(config.image_size),
        batch_tfms=aug_transforms() if config.augment else None,
    )
    dls = block.dataloaders(list(found.paths), bs=config.batch_size, num_workers=config.num_workers)
    if len(dls.train) == 0:
        # fastai drops the last partial training batch, so the epochs would train nothing
        raise TrainingError(
            f"{len(dls.train_ds)} training images (after the {config.valid_pct:.0%} validation "
            f"split) do not fill one batch of {config.batch_size}, so training would see no "
            f"image. Pass --batch-size {max(1, len(dls.train_ds) // 2)} or smaller, or add "
            "images."
        )
    return dls
