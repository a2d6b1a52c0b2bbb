"""The recipe's validation split: computing it, and re-creating it later to predict it again.

Training holds out a seeded random 20% (fastai's ``RandomSplitter``). :func:`validation_items`
re-creates that split from the training folder with the same listing and labels, and
:func:`predict_validation_split` predicts it with a loaded learner (``report --in-domain``), so
the in-domain set of a report never mixes in images the model trained on.

Imports :mod:`asl_eval.errors`, :mod:`asl_eval.inference`, :mod:`asl_eval.labels`,
:mod:`asl_eval.predictions` and :mod:`asl_eval.training.data`; fastai inside
:func:`split_items`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from asl_eval.errors import AslEvalError, InputError, first_few
from asl_eval.inference import model_classes, predict_files
from asl_eval.labels import LabelOptions
from asl_eval.training.data import split_indices, training_items

if TYPE_CHECKING:
    from fastai.learner import Learner

    from asl_eval.inference import Engine, PredictionCache
    from asl_eval.predictions import Predictions
    from asl_eval.progress import Progress

__all__ = ["predict_validation_split", "split_items", "validation_items"]


def split_items(
    items: Sequence[tuple[Path, str]],
    *,
    valid_pct: float,
    seed: int,
    kind: str = "random",
    group_by: str | None = None,
    metadata: str | Path | None = None,
    metadata_path_column: str = "path",
    root: str | Path | None = None,
) -> tuple[list[tuple[Path, str]], list[tuple[Path, str]]]:
    """The recipe's split of ``items`` (:func:`asl_eval.training.data.split_indices`):
    fastai's ``RandomSplitter(valid_pct, seed)``, or the ``grouped`` split (by frame groups
    and, with ``group_by``, by a column of the ``metadata`` CSV)."""
    train_index, valid_index = split_indices(
        items,
        valid_pct=valid_pct,
        seed=seed,
        kind=kind,
        group_by=group_by,
        metadata=metadata,
        metadata_path_column=metadata_path_column,
        root=root,
    )
    return [items[i] for i in train_index], [items[i] for i in valid_index]


def validation_items(
    data_dir: str | Path,
    *,
    valid_pct: float,
    seed: int,
    check_images: bool = True,
    label_options: LabelOptions | None = None,
    split: str = "random",
    group_by: str | None = None,
    metadata: str | Path | None = None,
    metadata_path_column: str = "path",
) -> list[tuple[Path, str]]:
    """The ``(file, label)`` pairs that the recipe's split puts in validation.

    Uses the same listing and labels as training
    (:func:`asl_eval.training.data.training_items`), so on the same folder with the same
    options it gives the same split (``report --in-domain DIR`` relies on it;
    :func:`asl_eval.training.record.recorded_label_options` reads training's options back).
    """
    found = training_items(data_dir, check_images=check_images, label_options=label_options)
    return split_items(
        found.items,
        valid_pct=valid_pct,
        seed=seed,
        kind=split,
        group_by=group_by,
        metadata=metadata,
        metadata_path_column=metadata_path_column,
        root=data_dir,
    )[1]


def predict_validation_split(
    model: Learner | Engine,
    data_dir: str | Path,
    *,
    valid_pct: float,
    seed: int,
    check_images: bool = True,
    label_options: LabelOptions | None = None,
    expected_files: int | None = None,
    split: str = "random",
    group_by: str | None = None,
    metadata: str | Path | None = None,
    metadata_path_column: str = "path",
    name: str = "valid",
    batch_size: int | None = None,
    chunk_size: int = 512,
    cache: PredictionCache | None = None,
    progress: Progress = None,
) -> Predictions:
    """Re-create the training recipe's validation split of ``data_dir`` and predict it.

    ``valid_pct``, ``seed``, ``split`` (``random`` or ``grouped``), ``group_by``,
    ``metadata``, ``metadata_path_column``, ``check_images`` and ``label_options`` must be the
    ones training used (the training record has them; see
    :func:`asl_eval.training.record.recorded_label_options` and
    :func:`asl_eval.training.record.recorded_split`), or the split differs and
    training images leak into it. ``expected_files`` (the record's validation size) is
    checked before anything is predicted. ``model``, ``batch_size``, ``chunk_size``, ``cache`` and
    ``progress`` are :func:`asl_eval.inference.predict_files`'; relative paths are relative to
    ``data_dir``.
    """
    data_dir = Path(data_dir)
    try:
        items = validation_items(
            data_dir,
            valid_pct=valid_pct,
            seed=seed,
            check_images=check_images,
            label_options=label_options,
            split=split,
            group_by=group_by,
            metadata=metadata,
            metadata_path_column=metadata_path_column,
        )
    except AslEvalError as error:
        raise InputError(
            f"--in-domain {data_dir} cannot be split and labelled as training did, with the "
            f"options in the training record: {error} Leave out --in-domain to use the saved "
            "validation predictions."
        ) from error
    _check_same_split(model, data_dir, items, expected_files)
    return predict_files(
        model,
        items,
        name=name,
        source=f"{split} validation split of {data_dir}",
        root=data_dir,
        batch_size=batch_size,
        chunk_size=chunk_size,
        cache=cache,
        progress=progress,
    )


def _check_same_split(
    model: Learner | Engine,
    data_dir: Path,
    items: Sequence[tuple[Path, str]],
    expected_files: int | None,
) -> None:
    """The re-created split has training's size and only the model's classes."""
    if expected_files is not None and len(items) != expected_files:
        raise InputError(
            f"--in-domain {data_dir} gives a validation split of {len(items)} files, but "
            f"training used {expected_files}: the folder is not the one the model was trained "
            "on, or it changed since, so the split would mix in training images."
        )
    classes = set(model_classes(model))
    unknown = sorted({label for _, label in items if label not in classes})
    if unknown:
        raise InputError(
            f"--in-domain {data_dir} has labels the model was not trained on "
            f"({first_few(unknown)}): it is not the training folder, or its labels are read "
            "differently from training's."
        )
