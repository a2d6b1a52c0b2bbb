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
from pathlib import Path
from typing import TYPE_CHECKING

from asl_eval.errors import ModelLoadError, first_few
from asl_eval.hashing import file_sha256
from asl_eval.trust.probe import input_size
from asl_eval.trust.sidecar import (
    BATCH_ARGUMENTS,
    ITEM_ARGUMENTS,
    LOSS_FUNCTIONS,
    SIDECAR_FORMAT,
    SIDECAR_VERSION,
    Sidecar,
    TensorSpec,
    TransformSpec,
    content_sha256,
    read_sidecar,
    sidecar_path,
    validate_sidecar,
)

if TYPE_CHECKING:
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner
    from torch import nn

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

ITEM_TRANSFORMS: dict[str, tuple[str, ...]] = {
    name: tuple(checks) for name, checks in ITEM_ARGUMENTS.items()
}
"""Item transforms the safe format can store, with the constructor arguments it keeps."""

BATCH_TRANSFORMS: dict[str, tuple[str, ...]] = {
    name: tuple(checks) for name, checks in BATCH_ARGUMENTS.items()
}
"""Batch transforms the safe format can store, with the constructor arguments it keeps."""


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
    """The sidecar content for ``learner``: everything but the weights and the content hash.

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

    The sidecar records a ``content_sha256`` over all its fields (the weights' SHA-256 among
    them) and must pass the same validation :func:`load_safe` applies. The pair is read back
    before returning, and the rebuilt model must give the same outputs as ``learner.model`` on a
    fixed input, so a pair that would predict differently is never left behind.

    Raises
    ------
    ModelLoadError
        If the learner cannot be represented (see :func:`describe_learner`), exceeds the
        sidecar's bounds, or the round trip does not reproduce the model.
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
    try:
        description["weights"] = {"file": weights_path.name, "sha256": file_sha256(weights_path)}
        description["content_sha256"] = content_sha256(description)
        text = json.dumps(description, indent=2) + "\n"
        sidecar = validate_sidecar(
            json.loads(text),
            source="the sidecar of this learner",
            fix="Evaluate this learner from its pickle instead.",
        )
        side.write_text(text, encoding="utf-8")
        reproduced = _reproduces(learner, load_safe(weights_path), sidecar)
    except ModelLoadError:
        weights_path.unlink(missing_ok=True)
        side.unlink(missing_ok=True)
        raise
    if not reproduced:
        weights_path.unlink(missing_ok=True)
        side.unlink(missing_ok=True)
        raise ModelLoadError(
            "The safe format does not reproduce this learner's model (its vision_learner head "
            "was probably built with non-default options), so nothing was written. Evaluate it "
            "from its pickle instead."
        )
    logger.info("wrote %s and %s", weights_path, side)
    return weights_path, side


def _reproduces(learner: Learner, rebuilt: Learner, sidecar: Sidecar) -> bool:
    """Whether the rebuilt model gives exactly the learner's outputs on a fixed random input."""
    import torch

    size = sidecar.input_size or (64, 64)
    generator = torch.Generator().manual_seed(0)
    probe = torch.rand(2, sidecar.n_in, *size, generator=generator)
    was_training = learner.model.training
    learner.model.eval()
    with torch.no_grad():
        expected, got = learner.model(probe), rebuilt.model.eval()(probe)
    learner.model.train(was_training)
    return bool(expected.shape == got.shape and torch.equal(expected, got))


def load_safe(weights_path: str | Path) -> Learner:
    """Rebuild a learner from ``model.safetensors`` and its ``model.json`` sidecar.

    The sidecar is validated in full before anything is built (see
    :func:`asl_eval.trust.sidecar.read_sidecar`), and the weights' tensor names and shapes are
    compared with the architecture built on PyTorch's ``meta`` device, which allocates no
    memory, before the real model is built and the weights are read.

    Raises
    ------
    ModelLoadError
        If the sidecar is missing, malformed, out of bounds, edited after export, or belongs to
        other weights, or the weights do not fit the architecture it names.
    """
    try:
        return _load_safe(Path(weights_path))
    except ModelLoadError:
        raise
    except (KeyError, AttributeError, TypeError, ValueError, RuntimeError, IndexError) as error:
        raise ModelLoadError(
            f"Could not rebuild the model of {weights_path} from its sidecar "
            f"({type(error).__name__}: {error}); re-export the model with asl-eval export-safe."
        ) from error


def _load_safe(weights_path: Path) -> Learner:
    """Validate the sidecar, check the weights fit, build the learner, read the weights."""
    # An exported learner brings fastai's progress callback (and Learner.no_bar, which the
    # input-size probe and inference use) when it is unpickled; a rebuilt one must import it.
    import fastai.callback.progress  # noqa: F401
    from fastai.vision.learner import vision_learner

    weights_path = _weights_file(weights_path)
    sidecar = read_sidecar(weights_path)
    architecture = _build_architecture(sidecar)
    _check_weights_fit(architecture, sidecar, weights_path)
    learner = vision_learner(
        _empty_dataloaders(sidecar),
        architecture,
        pretrained=False,
        normalize=False,
        n_out=sidecar.n_out,
        n_in=sidecar.n_in,
        loss_func=_build_loss(sidecar),
    )
    _load_weights(learner, weights_path)
    learner.model.eval()
    return learner


def _weights_file(path: Path) -> Path:
    """The ``.safetensors`` file of a pair named by either of its files; it must exist."""
    if path.suffix.lower() == ".json":
        path = path.with_suffix(".safetensors")
    if not path.is_file():
        raise ModelLoadError(f"Weights file {path} does not exist.")
    return path


def _build_architecture(sidecar: Sidecar) -> object:
    """A torchvision builder or timm name, only from the libraries' registered model lists."""
    name = sidecar.architecture
    if sidecar.source == "torchvision":
        import torchvision.models

        if name not in torchvision.models.list_models():
            raise ModelLoadError(f"The sidecar names an unknown torchvision model {name!r}.")
        return torchvision.models.get_model_builder(name)
    try:
        import timm
    except ImportError:
        raise ModelLoadError(
            f"The model is the timm architecture {name!r}, but timm is not installed."
        ) from None
    if name not in timm.list_models():
        raise ModelLoadError(f"The sidecar names an unknown timm model {name!r}.")
    return name


def _model_shapes(architecture: object, sidecar: Sidecar) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of the model ``vision_learner`` would build, on ``meta``."""
    import torch
    from fastai.vision.learner import create_vision_model

    with torch.device("meta"):
        model: nn.Module
        if isinstance(architecture, str):
            from fastai.vision.learner import create_timm_model

            model = create_timm_model(
                architecture, sidecar.n_out, pretrained=False, n_in=sidecar.n_in
            )[0]
        else:
            model = create_vision_model(
                architecture, sidecar.n_out, pretrained=False, n_in=sidecar.n_in
            )
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def _weights_shapes(weights_path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes from the safetensors header, without reading the tensors."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(weights_path), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, RuntimeError) as error:
        raise ModelLoadError(
            f"Could not read the weights in {weights_path}: {type(error).__name__}: {error}"
        ) from error


def _check_weights_fit(architecture: object, sidecar: Sidecar, weights_path: Path) -> None:
    """The file's tensors must be exactly the model's, by name and shape, before allocation."""
    try:
        expected = _model_shapes(architecture, sidecar)
    except Exception as error:  # fastai or the architecture cannot build it; nothing ran
        raise ModelLoadError(
            f"fastai cannot build {sidecar.architecture} with n_in={sidecar.n_in} and "
            f"n_out={sidecar.n_out} ({type(error).__name__}: {error}); the safe format covers "
            "vision_learner's default models only."
        ) from error
    got = _weights_shapes(weights_path)
    missing = [key for key in expected if key not in got]
    unexpected = [key for key in got if key not in expected]
    wrong = [f"{k} {got[k]} (expected {s})" for k, s in expected.items() if got.get(k, s) != s]
    if missing or unexpected or wrong:
        raise ModelLoadError(
            f"The weights in {weights_path} do not fit {sidecar.architecture} with "
            f"{sidecar.n_in} input channels and {sidecar.n_out} classes: {len(missing)} missing "
            f"({first_few(missing) or 'none'}), {len(unexpected)} unexpected "
            f"({first_few(unexpected) or 'none'}) and {len(wrong)} of another shape "
            f"({first_few(wrong) or 'none'}). Re-export the pair with asl-eval export-safe."
        )


def _python_value(value: object) -> object:
    """A validated argument as fastai takes it: statistics become tensors."""
    import torch

    if isinstance(value, TensorSpec):
        dtype = getattr(torch, value.dtype.removeprefix("torch."))
        return torch.tensor(value.values, dtype=dtype).reshape(value.shape)
    return value


def _build_transforms(specs: tuple[TransformSpec, ...]) -> list[object]:
    """fastai transforms from validated records, from the fixed lists only."""
    import fastai.data.transforms as data_transforms
    import fastai.vision.augment as augment

    built: list[object] = []
    for spec in specs:
        cls = getattr(augment, spec.type, None) or getattr(data_transforms, spec.type)
        transform = cls(**{key: _python_value(value) for key, value in spec.args.items()})
        transform.split_idx = spec.split_idx
        transform.order = spec.order
        built.append(transform)
    return built


def _placeholder_label(label: str, item: object) -> str:
    """The label getter of a rebuilt learner, which has no training items to label."""
    return label


def _empty_dataloaders(sidecar: Sidecar) -> DataLoaders:
    """Empty DataLoaders with the sidecar's classes, image type and transforms.

    fastai cannot set up Datasets without items: they are built on one blank image, which is
    then dropped, as ``Learner.export`` drops the training data (``DataLoaders.new_empty``).
    """
    from functools import partial

    from fastai.data.core import Datasets
    from fastai.data.transforms import Categorize
    from fastai.vision.core import PILImage, PILImageBW
    from PIL import Image

    classes = list(sidecar.classes)
    image_type = PILImageBW if sidecar.image_type == "PILImageBW" else PILImage
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
        bs=sidecar.batch_size,
        num_workers=0,
        after_item=_build_transforms(sidecar.item_tfms),
        after_batch=_build_transforms(sidecar.batch_tfms),
    ).new_empty()


def _build_loss(sidecar: Sidecar) -> object:
    """The fastai loss the sidecar names, from :data:`LOSS_FUNCTIONS` only."""
    import fastai.losses

    return getattr(fastai.losses, sidecar.loss)(axis=sidecar.loss_axis)


def _load_weights(learner: Learner, weights_path: Path) -> None:
    """Read the safetensors weights into the rebuilt model (names and shapes already match)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    try:
        load_model(learner.model, str(weights_path), strict=True)
    except (SafetensorError, OSError, RuntimeError) as error:
        raise ModelLoadError(
            f"Could not read the weights in {weights_path}: {type(error).__name__}: {error}"
        ) from error
