"""The training stage: the fastai ASL tutorial's recipe, and what it leaves next to a model.

:mod:`~asl_eval.training.recipe` trains and exports (:func:`train_model`),
:mod:`~asl_eval.training.data` lists and labels the training files and builds the DataLoaders,
:mod:`~asl_eval.training.split` computes the validation split and re-creates it to predict it
again (:func:`predict_validation_split`, ``report --in-domain``),
:mod:`~asl_eval.training.record` names and reads the files written next to a model, and
:mod:`~asl_eval.training.label_lookup` is the label getter an exported model may name.

Layer: a sibling of :mod:`asl_eval.cam`, above :mod:`asl_eval.inference` and
:mod:`asl_eval.trust`, below :mod:`asl_eval.report`. fastai and torch are imported inside
functions; importing this package imports fasttransform (for :class:`LabelLookup`), not torch.
"""

from __future__ import annotations

from asl_eval.training.data import (
    SPLITS,
    TrainingItems,
    group_values,
    make_dataloaders,
    split_indices,
    training_items,
)
from asl_eval.training.label_lookup import LabelLookup
from asl_eval.training.recipe import (
    TrainConfig,
    TrainResult,
    make_learner,
    resolve_arch,
    train_model,
    validation_predictions,
)
from asl_eval.training.record import (
    RecordedSplit,
    read_training_record,
    recorded_label_options,
    recorded_split,
    training_record_path,
    valid_predictions_path,
    write_training_record,
)
from asl_eval.training.split import predict_validation_split, split_items, validation_items

__all__ = [
    "SPLITS",
    "LabelLookup",
    "RecordedSplit",
    "TrainConfig",
    "TrainResult",
    "TrainingItems",
    "group_values",
    "make_dataloaders",
    "make_learner",
    "predict_validation_split",
    "read_training_record",
    "recorded_label_options",
    "recorded_split",
    "resolve_arch",
    "split_indices",
    "split_items",
    "train_model",
    "training_items",
    "training_record_path",
    "valid_predictions_path",
    "validation_items",
    "validation_predictions",
    "write_training_record",
]
