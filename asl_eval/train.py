"""Training with the fastai ASL tutorial's recipe as defaults, and exporting the result.

The recipe: ``DataBlock(ImageBlock, CategoryBlock)`` over ``get_image_files`` with
``parent_label``, a seeded 20% random split, ``Resize(200)``, ``aug_transforms()``, batch size 64,
resnet18, ``CrossEntropyLossFlat``, Adam, metrics error rate and accuracy, then
``fine_tune(4, base_lr=1e-2)``. Without pretrained weights the frozen first epoch of
``fine_tune`` would train a head on random features, so the whole network is trained with
``fit_one_cycle`` instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

from asl_eval.errors import InputError, LabelError, TrainingError, first_few
from asl_eval.hashing import file_sha256
from asl_eval.inference import model_classes
from asl_eval.inputs import UnreadableImage, discover_images, load_rgb
from asl_eval.labels import LabelOptions, label_files
from asl_eval.metrics import accuracy_score
from asl_eval.predictions import LedgerEntry, Predictions

if TYPE_CHECKING:
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of the recipe; the defaults are the tutorial's."""

    arch: str = "resnet18"
    image_size: int = 200
    epochs: int = 4
    lr: float | Literal["find"] = 1e-2
    batch_size: int = 64
    valid_pct: float = 0.2
    seed: int = 42
    pretrained: bool = True
    augment: bool = True
    num_workers: int = 0
    show_progress: bool = True
    safe_copy: bool = False
    check_images: bool = True


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


def valid_predictions_path(model_path: str | Path) -> Path:
    """Where the validation split's predictions live next to a model: ``model.valid.parquet``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".valid.parquet")


def training_record_path(model_path: str | Path) -> Path:
    """Where the training configuration is recorded next to a model: ``model.train.json``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".train.json")


@dataclass(frozen=True)
class TrainingItems:
    """The training folder's usable images with their labels, the ledger of those that cannot
    be used, and the label rule that was applied."""

    items: tuple[tuple[Path, str], ...]
    entries: tuple[LedgerEntry, ...]
    rule: str = "folder"

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
    discovery = discover_images(data_dir)
    labeled = label_files(list(discovery.images), root=data_dir, options=options)
    read = set(labeled.alignment.mapping) if labeled.alignment is not None else set()
    unused_map = sorted(set(options.label_map) - read)
    if unused_map:
        raise LabelError(
            f"--label-map names labels that the {labeled.rule} rule finds on no file in "
            f"{data_dir}: {first_few(unused_map)} (labels found: "
            f"{first_few(sorted(read), limit=10)}). Fix the typo or drop the entry."
        )
    items: list[tuple[Path, str]] = []
    entries: list[LedgerEntry] = [*discovery.entries, *labeled.entries]
    for path, label in labeled.items:
        if check_images:
            try:
                load_rgb(path)
            except UnreadableImage as error:
                entries.append(LedgerEntry(str(path), "excluded", error.reason, label=label))
                continue
        items.append((path, label))
    if not items:
        raise InputError(
            f"Training folder {data_dir} holds no usable labelled images "
            f"({len(entries)} files set aside: {first_few([e.path for e in entries])})."
        )
    if len({label for _, label in items}) < 2:
        raise InputError(
            f"The {labeled.rule} rule gives every usable file in {data_dir} the same label, "
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
    return TrainingItems(tuple(items), tuple(entries), labeled.rule)


def split_items(items: Sequence[T], *, valid_pct: float, seed: int) -> tuple[list[T], list[T]]:
    """The recipe's ``RandomSplitter(valid_pct, seed)`` applied to ``items``."""
    from fastai.vision.all import RandomSplitter

    train_index, valid_index = RandomSplitter(valid_pct=valid_pct, seed=seed)(list(items))
    return [items[i] for i in train_index], [items[i] for i in valid_index]


def validation_items(
    data_dir: str | Path,
    *,
    valid_pct: float,
    seed: int,
    check_images: bool = True,
    label_options: LabelOptions | None = None,
) -> list[tuple[Path, str]]:
    """The ``(file, label)`` pairs that the recipe's split puts in validation.

    Uses the same listing and labels as training (:func:`training_items`), so on the same
    folder with the same options it gives the same split (``report --in-domain DIR`` relies on
    it; :func:`recorded_label_options` reads training's options back).
    """
    found = training_items(data_dir, check_images=check_images, label_options=label_options)
    return split_items(found.items, valid_pct=valid_pct, seed=seed)[1]


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


def make_dataloaders(found: TrainingItems, config: TrainConfig) -> DataLoaders:
    """The tutorial's DataBlock (seeded random split, ``Resize``, ``aug_transforms``) over the
    labelled training files.

    Labels are fastai's ``parent_label`` when every label is the parent folder's name (the
    recipe, and an export identical to the tutorial's); otherwise they are looked up from
    ``found`` (:class:`asl_eval.training_labels.LabelLookup`).
    """
    from fastai.vision.all import (
        CategoryBlock,
        DataBlock,
        ImageBlock,
        RandomSplitter,
        Resize,
        aug_transforms,
        parent_label,
        set_seed,
    )

    if found.follows_folders:
        get_y: object = parent_label
    else:
        from asl_eval.training_labels import LabelLookup

        get_y = LabelLookup({str(path): label for path, label in found.items}, found.rule)
        logger.info(
            "labels by the %s rule, not parent folders: the exported model names "
            "asl_eval.training_labels.LabelLookup, so loading it needs asl-eval installed "
            "(--safe-copy writes a copy that loads without it)",
            found.rule,
        )
    set_seed(config.seed, reproducible=True)
    block = DataBlock(
        blocks=(ImageBlock, CategoryBlock),
        get_y=get_y,
        splitter=RandomSplitter(valid_pct=config.valid_pct, seed=config.seed),
        item_tfms=Resize(config.image_size),
        batch_tfms=aug_transforms() if config.augment else None,
    )
    return block.dataloaders(
        list(found.paths), bs=config.batch_size, num_workers=config.num_workers
    )


def _forget_training_labels(learner: Learner) -> None:
    """Drop the per-file label table from the learner's pipelines before it is exported."""
    from asl_eval.training_labels import LabelLookup

    for dataset in (learner.dls.train_ds, learner.dls.valid_ds):
        for listing in dataset.tls:
            for transform in listing.tfms.fs:
                if isinstance(transform, LabelLookup):
                    transform.forget()


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


def validation_predictions(learner: Learner, *, name: str = "valid") -> Predictions:
    """The validation split's predictions as a :class:`Predictions` table."""
    probabilities, targets = learner.get_preds(dl=learner.dls.valid)
    return Predictions(
        classes=model_classes(learner),
        paths=tuple(str(p) for p in learner.dls.valid.items),
        y_true=targets.numpy(),
        y_proba=probabilities.numpy(),
        name=name,
        source="validation split",
    )


def _write_training_record(
    model_path: Path,
    data_dir: str | Path,
    config: TrainConfig,
    lr: float,
    valid: Predictions,
    found: TrainingItems,
    label_options: LabelOptions,
) -> Path:
    import fastai
    import torch

    from asl_eval._version import __version__

    record = {
        "model": model_path.name,
        "data_dir": str(Path(data_dir).resolve()),
        "config": asdict(config),
        "lr_used": lr,
        "classes": list(valid.classes),
        "n_valid": valid.n_images,
        "n_train_files": len(found.items),
        "labels": _labels_record(found.rule, label_options),
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


def recorded_label_options(record: Mapping[str, object]) -> LabelOptions:
    """The label options training used, from its record (:func:`read_training_record`).

    A record without them (written before labels were configurable, or no record at all) means
    the recipe's parent folder names.
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
        return LabelOptions(source="csv", labels_csv=table, label_map=label_map)
    raise LabelError(f"The training record names an unknown label rule: {labels!r}.")


def read_training_record(model_path: str | Path) -> dict[str, object] | None:
    """The record :func:`train_model` wrote next to ``model_path``, or None if there is none."""
    path = training_record_path(model_path)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        logger.warning("ignoring unreadable training record %s", path)
        return None
    return record if isinstance(record, dict) else None


def train_model(
    data_dir: str | Path,
    out: str | Path,
    config: TrainConfig | None = None,
    *,
    label_options: LabelOptions | None = None,
) -> TrainResult:
    """Train on ``data_dir``, export the learner to ``out`` and save the validation split's
    predictions next to it (see :func:`valid_predictions_path`).

    ``label_options`` say where labels come from, as for ``report`` (default: the recipe's
    parent folder name); there is no model yet, so labels are kept as read, after any
    ``label_map``, and become the model's classes. Files without a label, like unreadable
    ones, are set aside and listed in the training record (``strict`` makes them an error).
    """
    config = config or TrainConfig()
    label_options = label_options or LabelOptions(source="folder")
    out = Path(out).resolve()
    found = training_items(data_dir, check_images=config.check_images, label_options=label_options)
    dls = make_dataloaders(found, config)
    learner = make_learner(dls, config)
    with ExitStack() as quiet:
        if not config.show_progress:
            quiet.enter_context(learner.no_bar())
            quiet.enter_context(learner.no_logging())
        if config.lr == "find":
            lr = float(learner.lr_find(show_plot=False).valley)
            logger.info("learning-rate finder suggests %.2e", lr)
        else:
            lr = float(config.lr)
        if config.pretrained:
            learner.fine_tune(config.epochs, base_lr=lr)
        else:
            learner.fit_one_cycle(config.epochs, lr_max=lr)
        predictions = validation_predictions(learner)
    out.parent.mkdir(parents=True, exist_ok=True)
    _forget_training_labels(learner)
    learner.export(out)
    predictions_path = predictions.save(valid_predictions_path(out))
    _write_training_record(out, data_dir, config, lr, predictions, found, label_options)
    safe_weights = None
    if config.safe_copy:
        from asl_eval.safe_format import export_safe

        safe_weights, _ = export_safe(learner, out.with_suffix(".safetensors"))
    accuracy = accuracy_score(predictions)
    logger.info("trained %s: validation accuracy %.4f (%s)", out, accuracy, asdict(config))
    return TrainResult(
        out, predictions_path, accuracy, lr, config, safe_weights, n_not_used=len(found.entries)
    )
