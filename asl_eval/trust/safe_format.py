"""A model format that loads without unpickling: safetensors weights plus a JSON sidecar.

``export_safe(learner, "model.safetensors")`` writes the model's ``state_dict`` with safetensors
and, next to it, ``model.json``: the architecture, the classes, the input size, the
normalization statistics and the item and batch transforms inference needs. ``load_safe``
rebuilds a fastai :class:`~fastai.learner.Learner` from the pair with
``vision_learner(pretrained=False)`` on empty DataLoaders, so ``learner.dls.test_dl(images)`` and
``learner.get_preds(dl=...)`` behave exactly as on the exported pickle. Nothing in either file
is executed: the sidecar names transforms and architectures from fixed lists, and
safetensors holds only tensors.

Only what inference uses is kept. Transforms that fastai applies to the training split alone
(``split_idx == 0``, such as ``Brightness``) are left out; the random affine augmentations of
``aug_transforms`` do nothing on the validation and test splits but resample to their ``size``,
so they are stored as a plain ``AffineCoordTfm`` with the same size, mode and padding.

Imports :mod:`asl_eval.errors`, :mod:`asl_eval.hashing` and :mod:`asl_eval.trust.probe`;
fastai, torch and safetensors only inside the functions that need them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asl_eval.errors import ModelLoadError
from asl_eval.hashing import file_sha256
from asl_eval.trust.probe import input_size

if TYPE_CHECKING:
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner

__all__ = [
    "BATCH_TRANSFORMS",
    "ITEM_TRANSFORMS",
    "LOSS_FUNCTIONS",
    "SIDECAR_FORMAT",
    "SIDECAR_VERSION",
    "describe_learner",
    "export_safe",
    "is_safe_format",
    "load_safe",
    "sidecar_path",
]

logger = logging.getLogger(__name__)

SIDECAR_FORMAT = "asl-eval safe learner"
SIDECAR_VERSION = 1

ITEM_TRANSFORMS: dict[str, tuple[str, ...]] = {
    "Resize": ("size", "method", "pad_mode", "resamples"),
    "RandomResizedCrop": ("size", "min_scale", "ratio", "resamples", "val_xtra", "max_scale"),
    "CropPad": ("size", "pad_mode"),
    "ToTensor": (),
}
"""Item transforms the safe format can store, with the constructor arguments it keeps."""

BATCH_TRANSFORMS: dict[str, tuple[str, ...]] = {
    "IntToFloatTensor": ("div", "div_mask"),
    "Normalize": ("mean", "std", "axes"),
    "AffineCoordTfm": ("size", "mode", "pad_mode", "mode_mask", "align_corners"),
}
"""Batch transforms the safe format can store, with the constructor arguments it keeps."""

LOSS_FUNCTIONS: tuple[str, ...] = (
    "CrossEntropyLossFlat",
    "LabelSmoothingCrossEntropyFlat",
    "FocalLossFlat",
)
"""fastai losses (single-label, softmax activation) the safe format can rebuild."""


def sidecar_path(weights_path: str | Path) -> Path:
    """The JSON sidecar that goes with a weights file: ``model.safetensors`` -> ``model.json``.

    >>> sidecar_path("out/model.safetensors").as_posix()
    'out/model.json'
    """
    return Path(weights_path).with_suffix(".json")


def is_safe_format(path: str | Path) -> bool:
    """Whether ``path`` names the safe format (the ``.safetensors`` file or its sidecar).

    >>> is_safe_format("model.safetensors"), is_safe_format("model.pkl")
    (True, False)
    """
    return Path(path).suffix.lower() in (".safetensors", ".json")


def _json_value(value: object, where: str) -> object:
    """A transform argument as plain JSON (tensors to nested lists, enums to ints)."""
    import enum

    import numpy as np
    import torch

    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, enum.Enum):
        return _json_value(value.value, where)
    if isinstance(value, int | float | np.integer | np.floating):
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, torch.Tensor):
        return {"tensor": value.detach().cpu().tolist(), "dtype": str(value.dtype)}
    if isinstance(value, tuple | list):
        return [_json_value(item, where) for item in value]
    raise ModelLoadError(
        f"Cannot write {where} in the safe format: its value {value!r} "
        f"({type(value).__name__}) is not plain data."
    )


def _python_value(value: object) -> object:
    """Undo :func:`_json_value`: lists back to tuples, tensor records back to tensors."""
    import torch

    if isinstance(value, dict) and set(value) == {"tensor", "dtype"}:
        dtype = getattr(torch, str(value["dtype"]).removeprefix("torch."), None)
        if not isinstance(dtype, torch.dtype):
            raise ModelLoadError(f"Unknown tensor dtype {value['dtype']!r} in the sidecar.")
        return torch.tensor(value["tensor"], dtype=dtype)
    if isinstance(value, list):
        return tuple(_python_value(item) for item in value)
    return value


def _describe_transforms(pipeline: object, kind: str) -> list[dict[str, object]]:
    """The inference-relevant transforms of a fastai Pipeline as JSON records."""
    from fastai.vision.augment import AffineCoordTfm

    known = ITEM_TRANSFORMS if kind == "item" else BATCH_TRANSFORMS
    records: list[dict[str, object]] = []
    for transform in getattr(pipeline, "fs", []):
        name = type(transform).__name__
        split_idx = getattr(transform, "split_idx", None)
        if split_idx == 0:
            logger.info("safe format: %s applies to training only; not stored", name)
            continue
        if isinstance(transform, AffineCoordTfm):
            name = "AffineCoordTfm"
        if name not in known:
            raise ModelLoadError(
                f"Cannot write the {kind} transform {type(transform).__name__} in the safe "
                f"format, which stores only {', '.join(known)} (and training-only "
                "augmentations, which it leaves out). Evaluate this learner from its pickle."
            )
        arguments = {
            argument: _json_value(getattr(transform, argument), f"{name}.{argument}")
            for argument in known[name]
            if hasattr(transform, argument)
        }
        records.append(
            {
                "type": name,
                "args": arguments,
                "split_idx": split_idx,
                "order": int(getattr(transform, "order", 0)),
            }
        )
    return records


def _architecture_name(learner: Learner) -> dict[str, str]:
    """The architecture a ``vision_learner`` was built with, by name and source."""
    arch = getattr(learner, "arch", None)
    if isinstance(arch, str):
        return {"name": arch, "source": "timm"}
    module = getattr(arch, "__module__", "") or ""
    if callable(arch) and module.startswith("torchvision.models"):
        return {"name": str(arch.__name__), "source": "torchvision"}
    raise ModelLoadError(
        "Cannot write this learner in the safe format: it was not built by fastai's "
        f"vision_learner from a torchvision or timm architecture (its arch is {arch!r}). "
        "Evaluate it from its pickle instead."
    )


def describe_learner(learner: Learner) -> dict[str, object]:
    """The sidecar content for ``learner`` (everything but the weights' file name and hash).

    Raises
    ------
    ModelLoadError
        If the learner uses an architecture, transform or loss the safe format cannot store.
    """
    loss_name = type(learner.loss_func).__name__
    if loss_name not in LOSS_FUNCTIONS:
        raise ModelLoadError(
            f"Cannot write this learner in the safe format: its loss {loss_name} is not one of "
            f"{', '.join(LOSS_FUNCTIONS)}."
        )
    x_type = "PILImage"
    for transform in learner.dls.valid.dataset.tfms[0].fs:
        owner = getattr(transform, "__qualname__", "") or str(transform)
        if "PILImageBW" in owner:
            x_type = "PILImageBW"
    item_tfms = _describe_transforms(learner.dls.after_item, "item")
    size = input_size(learner)
    batch_tfms = _describe_transforms(learner.dls.after_batch, "batch")
    normalize = next((r["args"] for r in batch_tfms if r["type"] == "Normalize"), None)
    first_conv = next((p for name, p in learner.model.named_parameters() if p.ndim == 4), None)
    return {
        "format": SIDECAR_FORMAT,
        "format_version": SIDECAR_VERSION,
        "architecture": _architecture_name(learner),
        "n_in": int(first_conv.shape[1]) if first_conv is not None else 3,
        "n_out": len(learner.dls.vocab),
        "classes": [str(c) for c in learner.dls.vocab],
        "input_size": list(size) if size else None,
        "image_type": x_type,
        "normalization": normalize,
        "item_tfms": item_tfms,
        "batch_tfms": batch_tfms,
        "batch_size": int(getattr(learner.dls.valid, "bs", 64) or 64),
        "loss_func": {"type": loss_name, "axis": int(getattr(learner.loss_func, "axis", -1))},
    }


def export_safe(learner: Learner, weights_path: str | Path) -> tuple[Path, Path]:
    """Write ``learner`` as safetensors weights plus a JSON sidecar; return both paths.

    The pair is read back with :func:`load_safe` (and by
    :func:`asl_eval.trust.load_learner_file`) before returning, and the rebuilt model must
    give the same outputs as ``learner.model`` on a fixed input, so a pair that would predict
    differently is never left behind.

    Raises
    ------
    ModelLoadError
        If the learner cannot be represented (see :func:`describe_learner`) or the round trip
        does not reproduce the model.
    """
    from safetensors.torch import save_model

    weights_path = Path(weights_path)
    if weights_path.suffix.lower() != ".safetensors":
        raise ModelLoadError(
            f"The safe format's weights file must end in .safetensors; got {weights_path}."
        )
    description = describe_learner(learner)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    side = sidecar_path(weights_path)
    model = learner.model.cpu() if hasattr(learner.model, "cpu") else learner.model
    save_model(model, str(weights_path), metadata={"format": SIDECAR_FORMAT})
    description["weights"] = {"file": weights_path.name, "sha256": file_sha256(weights_path)}
    side.write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    if not _reproduces(learner, load_safe(weights_path), description):
        weights_path.unlink(missing_ok=True)
        side.unlink(missing_ok=True)
        raise ModelLoadError(
            "The safe format does not reproduce this learner's model (its vision_learner head "
            "was probably built with non-default options), so nothing was written. Evaluate it "
            "from its pickle instead."
        )
    logger.info("wrote %s and %s", weights_path, side)
    return weights_path, side


def _reproduces(learner: Learner, rebuilt: Learner, description: Mapping[str, Any]) -> bool:
    """Whether the rebuilt model gives exactly the learner's outputs on a fixed random input."""
    import torch

    size = description["input_size"] or [64, 64]
    generator = torch.Generator().manual_seed(0)
    n_in = int(str(description["n_in"]))
    probe = torch.rand(2, n_in, *size, generator=generator)
    was_training = learner.model.training
    learner.model.eval()
    with torch.no_grad():
        expected, got = learner.model(probe), rebuilt.model.eval()(probe)
    learner.model.train(was_training)
    return bool(expected.shape == got.shape and torch.equal(expected, got))


def _read_sidecar(weights_path: Path) -> dict[str, Any]:
    """The sidecar of ``weights_path``, checked for format and for belonging to the weights."""
    side = sidecar_path(weights_path)
    if not side.is_file():
        raise ModelLoadError(
            f"{weights_path} has no sidecar: expected {side} next to it, as written by "
            "asl-eval export-safe. The weights alone do not say how to rebuild the model."
        )
    try:
        description = json.loads(side.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"{side} is not valid JSON ({error}); re-export the model.") from error
    if not isinstance(description, dict) or description.get("format") != SIDECAR_FORMAT:
        raise ModelLoadError(f"{side} is not an asl-eval safe-format sidecar.")
    if description.get("format_version") != SIDECAR_VERSION:
        raise ModelLoadError(
            f"{side} has format version {description.get('format_version')!r}; this asl-eval "
            f"reads version {SIDECAR_VERSION}. Upgrade asl-eval or re-export."
        )
    weights = description.get("weights")
    expected = weights.get("sha256") if isinstance(weights, dict) else None
    if expected != file_sha256(weights_path):
        raise ModelLoadError(
            f"{side} does not belong to {weights_path}: the weights' SHA-256 differs from the "
            "one the sidecar records. Keep the two files of one export together."
        )
    return description


def _build_transforms(records: list[Mapping[str, Any]], kind: str) -> list[object]:
    """fastai transforms from sidecar records, from the fixed lists only."""
    import fastai.data.transforms as data_transforms
    import fastai.vision.augment as augment

    known = ITEM_TRANSFORMS if kind == "item" else BATCH_TRANSFORMS
    built: list[object] = []
    for record in records:
        name = record.get("type")
        if name not in known:
            raise ModelLoadError(f"The sidecar names an unknown {kind} transform {name!r}.")
        arguments = {
            key: _python_value(value)
            for key, value in dict(record.get("args", {})).items()
            if key in known[name]
        }
        cls = getattr(augment, name, None) or getattr(data_transforms, name)
        transform = cls(**arguments)
        transform.split_idx = record.get("split_idx")
        transform.order = int(record.get("order", transform.order))
        built.append(transform)
    return built


def _build_architecture(architecture: Mapping[str, Any]) -> object:
    """A torchvision builder or timm name, only from the libraries' registered model lists."""
    name, source = str(architecture.get("name")), architecture.get("source")
    if source == "torchvision":
        import torchvision.models

        if name not in torchvision.models.list_models():
            raise ModelLoadError(f"The sidecar names an unknown torchvision model {name!r}.")
        return torchvision.models.get_model_builder(name)
    if source == "timm":
        try:
            import timm
        except ImportError:
            raise ModelLoadError(
                f"The model is the timm architecture {name!r}, but timm is not installed."
            ) from None
        if name not in timm.list_models():
            raise ModelLoadError(f"The sidecar names an unknown timm model {name!r}.")
        return name
    raise ModelLoadError(f"The sidecar names an unknown architecture source {source!r}.")


def _placeholder_label(label: str, item: object) -> str:
    """The label getter of a rebuilt learner, which has no training items to label."""
    return label


def load_safe(weights_path: str | Path) -> Learner:
    """Rebuild a learner from ``model.safetensors`` and its ``model.json`` sidecar.

    A sidecar whose fields have the wrong shape (hand-edited, or made by another tool) is a
    :class:`ModelLoadError`, like every other problem with the pair.
    """
    try:
        return _load_safe(weights_path)
    except ModelLoadError:
        raise
    except (KeyError, AttributeError, TypeError, ValueError) as error:
        raise ModelLoadError(
            f"The sidecar of {weights_path} is malformed ({type(error).__name__}: {error}); "
            "re-export the model with asl-eval export-safe."
        ) from error


def _load_safe(weights_path: str | Path) -> Learner:
    """Rebuild a learner from ``model.safetensors`` and its ``model.json`` sidecar.

    Raises
    ------
    ModelLoadError
        If the sidecar is missing, malformed, or belongs to other weights, or the weights do
        not fit the architecture it names.
    """
    from fastai.vision.learner import vision_learner

    weights_path = _weights_file(weights_path)
    description = _read_sidecar(weights_path)
    learner = vision_learner(
        _empty_dataloaders(description),
        _build_architecture(description["architecture"]),
        pretrained=False,
        normalize=False,
        n_out=int(description["n_out"]),
        n_in=int(description.get("n_in", 3)),
        loss_func=_build_loss(description.get("loss_func", {})),
    )
    _load_weights(learner, weights_path, description)
    learner.model.eval()
    return learner


def _weights_file(path: str | Path) -> Path:
    """The ``.safetensors`` file of a pair named by either of its files; it must exist."""
    weights_path = Path(path)
    if weights_path.suffix.lower() == ".json":
        weights_path = weights_path.with_suffix(".safetensors")
    if not weights_path.is_file():
        raise ModelLoadError(f"Weights file {weights_path} does not exist.")
    return weights_path


def _empty_dataloaders(description: Mapping[str, Any]) -> DataLoaders:
    """Empty DataLoaders with the sidecar's classes, image type and transforms.

    fastai cannot set up Datasets without items: they are built on one blank image, which is
    then dropped, as ``Learner.export`` drops the training data (``DataLoaders.new_empty``).
    """
    from functools import partial

    from fastai.data.core import Datasets
    from fastai.data.transforms import Categorize
    from fastai.vision.core import PILImage, PILImageBW
    from PIL import Image

    classes = [str(c) for c in description["classes"]]
    image_type = PILImageBW if description.get("image_type") == "PILImageBW" else PILImage
    blank = Image.new("L" if image_type is PILImageBW else "RGB", (8, 8))
    datasets = Datasets(
        [blank],
        tfms=[
            [image_type.create],
            [partial(_placeholder_label, classes[0]), Categorize(vocab=classes, sort=False)],
        ],
        splits=([0], [0]),
    )
    return datasets.dataloaders(
        bs=int(description.get("batch_size", 64)),
        num_workers=0,
        after_item=_build_transforms(description["item_tfms"], "item"),
        after_batch=_build_transforms(description["batch_tfms"], "batch"),
    ).new_empty()


def _build_loss(loss: Mapping[str, Any]) -> object:
    """The fastai loss the sidecar names, from :data:`LOSS_FUNCTIONS` only."""
    import fastai.losses

    if loss.get("type") not in LOSS_FUNCTIONS:
        raise ModelLoadError(f"The sidecar names an unknown loss {loss.get('type')!r}.")
    return getattr(fastai.losses, loss["type"])(axis=int(loss.get("axis", -1)))


def _load_weights(learner: Learner, weights_path: Path, description: Mapping[str, Any]) -> None:
    """Read the safetensors weights into the rebuilt model; every tensor must fit."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    try:
        missing, unexpected = load_model(learner.model, str(weights_path), strict=False)
    except (SafetensorError, OSError, RuntimeError) as error:
        raise ModelLoadError(
            f"Could not read the weights in {weights_path}: {type(error).__name__}: {error}"
        ) from error
    if missing or unexpected:
        raise ModelLoadError(
            f"The weights in {weights_path} do not fit {description['architecture']['name']} "
            f"with {description['n_out']} classes: {len(missing)} missing and "
            f"{len(unexpected)} unexpected tensors. Re-export the pair with asl-eval export-safe."
        )
