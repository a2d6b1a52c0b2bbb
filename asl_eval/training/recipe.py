"""Training with the fastai ASL tutorial's recipe as defaults, and exporting the result.

The recipe: ``DataBlock(ImageBlock, CategoryBlock)`` over the training folder's images with
``parent_label``, a seeded 20% random split, ``Resize(200)``, ``aug_transforms()``, batch size 64,
resnet18, ``CrossEntropyLossFlat``, Adam, metrics error rate and accuracy, then
``fine_tune(4, base_lr=1e-2)``. Without pretrained weights the frozen first epoch of
``fine_tune`` would train a head on random features, so the whole network is trained with
``fit_one_cycle`` instead. :func:`train_model` runs it and writes the model, its validation
predictions and the training record (:mod:`asl_eval.training.record`).

Imports :mod:`asl_eval.errors`, :mod:`asl_eval.inference`, :mod:`asl_eval.labels`,
:mod:`asl_eval.metrics`, :mod:`asl_eval.predictions`, :mod:`asl_eval.progress`,
:mod:`asl_eval.trust` (for ``--safe-copy``) and the other ``asl_eval.training`` modules;
fastai, torch and torchvision inside functions.
"""

from __future__ import annotations

import logging
import tempfile
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from asl_eval.errors import TrainingError
from asl_eval.hashing import file_sha256
from asl_eval.inference import model_classes
from asl_eval.inputs import path_under
from asl_eval.labels import LabelOptions
from asl_eval.metrics import accuracy_score
from asl_eval.predictions import Predictions
from asl_eval.progress import Progress, notify
from asl_eval.training.data import check_split_options, make_dataloaders, training_items
from asl_eval.training.record import (
    training_record_path,
    valid_predictions_path,
    write_training_record,
)

if TYPE_CHECKING:
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner

__all__ = [
    "TrainConfig",
    "TrainResult",
    "make_learner",
    "resolve_arch",
    "train_model",
    "validation_predictions",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of the recipe; the defaults are the tutorial's.

    ``group_by`` (a column of the ``metadata`` CSV, such as ``signer``) makes the grouped split
    keep each of the column's values on one side as well as each frame group
    (:func:`asl_eval.training.data.split_indices`); ``metadata_path_column`` names the CSV's
    column of image paths. ``metadata`` is kept as text, so the record stays JSON.
    """

    arch: str = "resnet18"
    image_size: int = 200
    epochs: int = 4
    lr: float | Literal["find"] = 1e-2
    batch_size: int = 64
    valid_pct: float = 0.2
    seed: int = 42
    split: Literal["random", "grouped"] = "random"
    pretrained: bool = True
    augment: bool = True
    num_workers: int = 0
    show_progress: bool = True
    safe_copy: bool = False
    check_images: bool = True
    group_by: str | None = None
    metadata: str | None = None
    metadata_path_column: str = "path"

    def __post_init__(self) -> None:
        if self.metadata is not None:
            object.__setattr__(self, "metadata", str(self.metadata))
        check_split_options(self.split, self.group_by, self.metadata)


@dataclass(frozen=True)
class TrainResult:
    """What training wrote and how it went."""

    model_path: Path
    valid_predictions_path: Path
    valid_accuracy: float
    lr: float
    config: TrainConfig
    safe_weights_path: Path | None = None
    n_not_used: int = 0

    @property
    def record_path(self) -> Path:
        """The training record next to the model (configuration, files not used)."""
        return training_record_path(self.model_path)


def resolve_arch(arch: str) -> object:
    """A torchvision model function by name (``resnet18``), else the name itself for timm."""
    import torchvision.models

    if arch in torchvision.models.list_models():
        return getattr(torchvision.models, arch)
    try:
        import timm
    except ImportError:
        raise TrainingError(
            f"Unknown architecture {arch!r}: not a torchvision model, and timm is not installed."
        ) from None
    if not timm.list_models(arch):
        raise TrainingError(f"Unknown architecture {arch!r} (neither torchvision nor timm).")
    return arch


def _weights_hint(arch: str) -> str:
    """Where torch looks for the pretrained weights of ``arch``."""
    import torch.hub

    folder = Path(torch.hub.get_dir()) / "checkpoints"
    try:
        import torchvision.models

        url = torchvision.models.get_model_weights(arch).DEFAULT.url
        return str(folder / url.rsplit("/", 1)[-1])
    except (ValueError, KeyError, AttributeError):
        return str(folder) + "/"


def make_learner(dls: DataLoaders, config: TrainConfig) -> Learner:
    """resnet18 (or ``config.arch``) with the tutorial's loss, optimizer and metrics."""
    from fastai.vision.all import Adam, CrossEntropyLossFlat, accuracy, error_rate, vision_learner

    arch = resolve_arch(config.arch)
    try:
        return vision_learner(
            dls,
            arch,
            pretrained=config.pretrained,
            loss_func=CrossEntropyLossFlat(),
            opt_func=Adam,
            metrics=[error_rate, accuracy],
        )
    except (OSError, RuntimeError) as error:
        if not config.pretrained:
            raise
        raise TrainingError(
            f"Could not get pretrained weights for {config.arch} ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'no detail'}). "
            f"Either train from scratch with --no-pretrained, or place the weights file at "
            f"{_weights_hint(config.arch)} (torch's cache; set TORCH_HOME to move it)."
        ) from error


def validation_predictions(
    learner: Learner, *, name: str = "valid", split: str = "random"
) -> Predictions:
    """The validation split's predictions as a :class:`Predictions` table (its source names
    the ``split`` kind)."""
    probabilities, targets = learner.get_preds(dl=learner.dls.valid)
    return Predictions(
        classes=model_classes(learner),
        paths=tuple(str(p) for p in learner.dls.valid.items),
        y_true=targets.numpy(),
        y_proba=probabilities.numpy(),
        name=name,
        source=f"{split} validation split",
    )


def _with_content_hashes(predictions: Predictions, root: str | Path) -> Predictions:
    """``predictions`` with each file's SHA-256 and its path relative to ``root`` (the
    training folder), so a later ``compare`` can tell whether two models were validated on
    the same images. Unchanged, with a log line, when a file lies outside ``root``."""
    relpaths = []
    for path in predictions.paths:
        relpath = path_under(path, root)
        if relpath is None:
            logger.info("%s is outside %s: validation predictions keep no hashes", path, root)
            return predictions
        relpaths.append(relpath)
    hashes = tuple(file_sha256(p) for p in predictions.paths)
    return replace(predictions, sha256=hashes, relpaths=tuple(relpaths))


def _find_lr(learner: Learner) -> float:
    """fastai's learning-rate finder, run with the learner's folder set to a temporary one: it
    saves and restores the weights under ``learner.path / "models"``, which is the current
    folder by default, and would leave an empty ``models/`` folder there."""
    path = learner.path
    with tempfile.TemporaryDirectory(prefix="asl-eval-lr-find-") as folder:
        learner.path = Path(folder)
        try:
            return float(learner.lr_find(show_plot=False).valley)
        finally:
            learner.path = path


def _epoch_callback(progress: Progress, total: int) -> object:
    """A fastai callback that reports each finished epoch to ``progress`` (step ``"train"``)."""
    from fastai.callback.core import Callback

    class EpochProgress(Callback):
        order = 100

        def __init__(self) -> None:
            self.done = 0

        def after_epoch(self) -> None:
            self.done += 1
            notify(progress, "train", "epochs", min(self.done, total), total)

    return EpochProgress()


def _fit(
    learner: Learner, config: TrainConfig, progress: Progress = None
) -> tuple[float, Predictions]:
    """Train ``learner`` by the recipe; the learning rate used and the validation predictions."""
    freeze_epochs = 1  # fine_tune's default
    total = config.epochs + (freeze_epochs if config.pretrained else 0)
    callbacks = [_epoch_callback(progress, total)] if progress is not None else []
    with ExitStack() as quiet:
        if not config.show_progress:
            quiet.enter_context(learner.no_bar())
            quiet.enter_context(learner.no_logging())
        if config.lr == "find":
            lr = _find_lr(learner)
            logger.info("learning-rate finder suggests %.2e", lr)
        else:
            lr = float(config.lr)
        if config.pretrained:
            learner.fine_tune(config.epochs, base_lr=lr, freeze_epochs=freeze_epochs, cbs=callbacks)
        else:
            learner.fit_one_cycle(config.epochs, lr_max=lr, cbs=callbacks)
        return lr, validation_predictions(learner, split=config.split)


def _forget_training_labels(learner: Learner) -> None:
    """Drop the per-file label table from the learner's pipelines before it is exported."""
    from asl_eval.training.label_lookup import LabelLookup

    for dataset in (learner.dls.train_ds, learner.dls.valid_ds):
        for listing in dataset.tls:
            for transform in listing.tfms.fs:
                if isinstance(transform, LabelLookup):
                    transform.forget()


def train_model(
    data_dir: str | Path,
    out: str | Path,
    config: TrainConfig | None = None,
    *,
    label_options: LabelOptions | None = None,
    progress: Progress = None,
) -> TrainResult:
    """Train on ``data_dir``, export the learner to ``out`` and save the validation split's
    predictions next to it (see :func:`asl_eval.training.record.valid_predictions_path`).

    ``label_options`` say where labels come from, as for ``report`` (default: the recipe's
    parent folder name); there is no model yet, so labels are kept as read, after any
    ``label_map``, and become the model's classes. Files without a label, like unreadable
    ones, are set aside and listed in the training record (``strict`` makes them an error).
    ``progress`` is called after each epoch (step ``"train"``, name ``"epochs"``).
    """
    config = config or TrainConfig()
    label_options = label_options or LabelOptions(source="folder")
    out = Path(out).resolve()
    found = training_items(data_dir, check_images=config.check_images, label_options=label_options)
    learner = make_learner(make_dataloaders(found, config), config)
    lr, predictions = _fit(learner, config, progress)
    predictions = _with_content_hashes(predictions, data_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    _forget_training_labels(learner)
    learner.export(out)
    predictions_path = predictions.save(valid_predictions_path(out))
    write_training_record(out, data_dir, config, lr, predictions, found, label_options)
    safe_weights = None
    if config.safe_copy:
        from asl_eval.trust import export_safe

        safe_weights, _ = export_safe(learner, out.with_suffix(".safetensors"))
    accuracy = accuracy_score(predictions)
    logger.info("trained %s: validation accuracy %.4f (%s)", out, accuracy, asdict(config))
    return TrainResult(
        out, predictions_path, accuracy, lr, config, safe_weights, n_not_used=len(found.entries)
    )
