"""What training leaves next to a model, and reading it back.

Next to ``model.pkl`` training writes ``model.valid.parquet`` (the validation split's
predictions, :func:`valid_predictions_path`) and ``model.train.json`` (the training record,
:func:`training_record_path`): the configuration, the learning rate used, the classes, the
files not used and why, where the labels came from, and the library versions. ``report``
reads the record back (:func:`read_training_record`) to re-create the validation split with
training's own options (:func:`recorded_label_options`).

Imports :mod:`asl_eval.errors`, :mod:`asl_eval.hashing`, :mod:`asl_eval.labels`,
:mod:`asl_eval.predictions` and :mod:`asl_eval._version`; fastai and torch only for their
version numbers, inside :func:`write_training_record`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from asl_eval._version import __version__
from asl_eval.errors import InputError, LabelError
from asl_eval.hashing import file_sha256
from asl_eval.labels import LabelOptions

if TYPE_CHECKING:
    from asl_eval.predictions import Predictions
    from asl_eval.training.data import TrainingItems
    from asl_eval.training.recipe import TrainConfig

__all__ = [
    "RecordedSplit",
    "read_training_record",
    "recorded_label_options",
    "recorded_split",
    "split_record",
    "training_record_path",
    "valid_predictions_path",
    "write_training_record",
]

logger = logging.getLogger(__name__)


def valid_predictions_path(model_path: str | Path) -> Path:
    """Where the validation split's predictions live next to a model: ``model.valid.parquet``.

    >>> valid_predictions_path("out/model.pkl").as_posix()
    'out/model.valid.parquet'
    """
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".valid.parquet")


def training_record_path(model_path: str | Path) -> Path:
    """Where the training configuration is recorded next to a model: ``model.train.json``.

    >>> training_record_path("out/model.pkl").as_posix()
    'out/model.train.json'
    """
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".train.json")


def write_training_record(
    model_path: Path,
    data_dir: str | Path,
    config: TrainConfig,
    lr: float,
    valid: Predictions,
    found: TrainingItems,
    label_options: LabelOptions,
) -> Path:
    """Write the training record next to ``model_path`` and return its path."""
    import fastai
    import torch

    record = {
        "model": model_path.name,
        "data_dir": str(Path(data_dir).resolve()),
        "config": asdict(config),
        "lr_used": lr,
        "classes": list(valid.classes),
        "n_valid": valid.n_images,
        "n_train_files": len(found.items),
        "labels": _labels_record(found.rule, label_options),
        "split": split_record(config, found, valid),
        "not_used": [
            {"path": e.path, "status": e.status, "reason": e.reason} for e in found.entries
        ],
        "versions": {
            "asl_eval": __version__,
            "fastai": fastai.__version__,
            "torch": torch.__version__,
        },
    }
    path = training_record_path(model_path)
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def _labels_record(rule: str, options: LabelOptions) -> dict[str, object]:
    """Where training's labels came from, enough to derive them again
    (:func:`recorded_label_options`)."""
    table = options.labels_csv
    csv_file = Path(table).resolve() if rule == "csv" and isinstance(table, (str, Path)) else None
    return {
        "rule": rule,
        "regex": options.regex if rule == "regex" else None,
        "labels_csv": str(csv_file) if csv_file else None,
        "labels_csv_sha256": file_sha256(csv_file) if csv_file else None,
        "label_map": dict(options.label_map),
    }


def split_record(
    config: TrainConfig, found: TrainingItems, valid: Predictions
) -> dict[str, object]:
    """How the validation split was made, for the record's ``split`` key: its kind and, for a
    split grouped by a metadata column, the column, the CSV (absolute path, file name,
    SHA-256, path column), the rule for images without a value (an error) and the column's
    values on each side (``values_on_both_sides`` is empty by construction)."""
    record: dict[str, object] = {"kind": config.split, "group_by": config.group_by}
    if config.group_by is None or config.metadata is None:
        return record
    from asl_eval.training.data import group_values

    values = group_values(
        found.items,
        group_by=config.group_by,
        metadata=config.metadata,
        path_column=config.metadata_path_column,
        root=found.root,
    )
    in_valid = set(valid.paths)
    valid_values = {v for (p, _), v in zip(found.items, values, strict=True) if str(p) in in_valid}
    train_values = {
        v for (p, _), v in zip(found.items, values, strict=True) if str(p) not in in_valid
    }
    metadata = Path(config.metadata).resolve()
    record.update(
        {
            "metadata": str(metadata),
            "metadata_name": metadata.name,
            "metadata_sha256": file_sha256(metadata),
            "metadata_path_column": config.metadata_path_column,
            "missing_values": "error",
            "train_values": sorted(train_values),
            "valid_values": sorted(valid_values),
            "values_on_both_sides": sorted(train_values & valid_values),
        }
    )
    return record


@dataclass(frozen=True)
class RecordedSplit:
    """The split options a training record holds (:func:`recorded_split`), to pass on to
    :func:`asl_eval.training.split.predict_validation_split`."""

    kind: str = "random"
    group_by: str | None = None
    metadata: str | None = None
    metadata_path_column: str = "path"


def recorded_split(record: Mapping[str, object]) -> RecordedSplit:
    """The split training used, from its record; a record without one means the recipe's
    random split (or the ``config``'s ``split`` for records written before ``split`` existed).

    Raises :class:`~asl_eval.errors.InputError` when the split was grouped by a metadata
    column and the CSV is gone or has changed since training (the split would differ).

    >>> recorded_split({}).kind
    'random'
    """
    config = record.get("config")
    config = config if isinstance(config, Mapping) else {}
    split = record.get("split")
    if not isinstance(split, Mapping):
        return RecordedSplit(kind=str(config.get("split", "random")))
    group_by = split.get("group_by")
    metadata = split.get("metadata")
    if not isinstance(group_by, str) or not isinstance(metadata, str):
        return RecordedSplit(kind=str(split.get("kind", "random")))
    try:
        digest = file_sha256(metadata)
    except OSError as error:
        raise InputError(
            f"The metadata CSV training grouped its split by, {metadata}, cannot be read "
            f"({error.strerror}), so the split cannot be re-created."
        ) from None
    if split.get("metadata_sha256") not in (None, digest):
        raise InputError(
            f"The metadata CSV training grouped its split by, {metadata}, has changed since "
            "training, so the re-created split would differ from training's."
        )
    return RecordedSplit(
        kind=str(split.get("kind", "grouped")),
        group_by=group_by,
        metadata=metadata,
        metadata_path_column=str(split.get("metadata_path_column", "path")),
    )


def recorded_label_options(record: Mapping[str, object]) -> LabelOptions:
    """The label options training used, from its record (:func:`read_training_record`).

    A record without them (written before labels were configurable, or no record at all) means
    the recipe's parent folder names.

    >>> recorded_label_options({}).source
    'folder'
    """
    labels = record.get("labels")
    if not isinstance(labels, dict):
        return LabelOptions(source="folder")
    rule = labels.get("rule")
    label_map = labels.get("label_map") or {}
    if not isinstance(label_map, dict):
        raise LabelError(f"The training record's label_map is not a mapping: {label_map!r}.")
    label_map = {str(k): str(v) for k, v in label_map.items()}
    if rule == "folder":
        return LabelOptions(source="folder", label_map=label_map)
    if rule == "filename":
        return LabelOptions(source="filename", label_map=label_map)
    if rule == "regex":
        regex = labels.get("regex")
        if not isinstance(regex, str):
            raise LabelError("The training record names the regex rule but holds no regex.")
        return LabelOptions(source="filename", regex=regex, label_map=label_map)
    if rule == "csv":
        return _recorded_csv_options(labels, label_map)
    raise LabelError(f"The training record names an unknown label rule: {labels!r}.")


def _recorded_csv_options(
    labels: Mapping[str, object], label_map: Mapping[str, str]
) -> LabelOptions:
    """The CSV rule from a record: the table must still be there, unchanged."""
    table = labels.get("labels_csv")
    if not isinstance(table, str):
        raise LabelError(
            "Training read its labels from a table given in Python (a DataFrame), which the "
            "training record cannot hold, so its labels cannot be read again."
        )
    try:
        digest = file_sha256(table)
    except OSError as error:
        raise LabelError(
            f"The labels CSV training used, {table}, cannot be read ({error.strerror})."
        ) from None
    if labels.get("labels_csv_sha256") not in (None, digest):
        raise LabelError(
            f"The labels CSV training used, {table}, has changed since training, so its "
            "labels would not be training's."
        )
    return LabelOptions(source="csv", labels_csv=table, label_map=dict(label_map))


def read_training_record(model_path: str | Path) -> dict[str, object] | None:
    """The record training wrote next to ``model_path``, or None if there is none."""
    path = training_record_path(model_path)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        logger.warning("ignoring unreadable training record %s", path)
        return None
    return record if isinstance(record, dict) else None
