"""Class activation maps: what the model looks at, for the true and for the predicted class.

Heatmaps come from `pytorch-grad-cam <https://github.com/jacobgil/pytorch-grad-cam>`_ (PyPI
``grad-cam``): its classes do the weighting arithmetic, so every method gives the same heatmap
as the library used on its own. What this module adds:

* the target layer is found for fastai ``vision_learner`` models (the last convolutional block
  of the body, ``learner.model[0]``), or named as a dotted path (``"0.7"``);
* images go through the learner's own preprocessing (``dls.test_dl``: item transforms such as
  the resize, then batch transforms such as normalization);
* it is fast: the network up to the target layer runs without recording a graph and only the
  layers after it are differentiated, and several targets (the true and the predicted class)
  share one forward pass; a heatmap costs about one forward pass, against 2.4 to 3.1 for
  plain pytorch-grad-cam (``docs/benchmarks.md``);
* hooks are always released, parameters' ``requires_grad`` and the train/eval mode restored,
  also when an error is raised half-way;
* :func:`build_cam_section` selects the images the report shows (the classes with the lowest
  out-of-domain accuracy, misclassified first, plus the top losses), and returns plain
  dataclasses holding PNG bytes and numbers, so the report renders without calling torch.

The pure functions (:func:`select_cam_images`, :func:`overlay`) need numpy only; torch,
fastai and pytorch-grad-cam are imported when a heatmap is computed.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast, get_args

import numpy as np

from asl_eval.errors import CamError, InputError, LabelError, first_few
from asl_eval.inference import model_classes
from asl_eval.predictions import Predictions

if TYPE_CHECKING:
    import torch
    from fastai.learner import Learner
    from PIL import Image
    from torch import nn

logger = logging.getLogger(__name__)

CamMethod = Literal["gradcam", "gradcam++", "hirescam", "eigencam", "scorecam", "finercam"]
CAM_METHODS: tuple[str, ...] = get_args(CamMethod)
Faithfulness = Literal["road", "confidence_drop", "none"]
FAITHFULNESS_METRICS: tuple[str, ...] = get_args(Faithfulness)

#: Classes FinerCAM contrasts the explained class with: the n most similar by logit.
FINERCAM_N_COMPARISONS = 3
#: Removal percentiles of the ROAD faithfulness score (pytorch-grad-cam uses 10..90 by 10).
ROAD_PERCENTILES: tuple[int, ...] = (20, 40, 60, 80)

Target = int | str


# -- target layer ----------------------------------------------------------------------------
def _is_conv(module: nn.Module) -> bool:
    from torch import nn

    return isinstance(module, nn.modules.conv._ConvNd)


def _contains_conv(module: nn.Module) -> bool:
    return any(_is_conv(m) for m in module.modules())


def _is_norm_or_activation(module: nn.Module) -> bool:
    from torch import nn

    norms = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
    activations = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.LeakyReLU, nn.Hardswish, nn.Mish)
    return isinstance(module, norms + activations)


def _stops_spatial(module: nn.Module) -> bool:
    """A global pooling, flatten or linear layer: the feature map ends here."""
    from torch import nn

    if isinstance(module, nn.Flatten | nn.Linear | nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d):
        return True
    return type(module).__name__ in {"AdaptiveConcatPool2d", "SelectAdaptivePool2d"}


def _body(model: nn.Module) -> tuple[str, nn.Module]:
    """The convolutional body: ``model[0]`` for fastai's ``Sequential(body, head)``, else the
    model itself; single-child wrappers (densenet's ``Sequential(features)``, fastai's
    ``TimmBody``) are unwrapped."""
    from torch import nn

    prefix, body = "", model
    children = list(model.named_children())
    if (
        isinstance(model, nn.Sequential)
        and len(children) >= 2
        and _contains_conv(children[0][1])
        and not any(_contains_conv(child) for _, child in children[1:])
    ):
        prefix, body = children[0]
    while len(inner := list(body.named_children())) == 1:
        name, body = inner[0]
        prefix = f"{prefix}.{name}" if prefix else name
    return prefix, body


def find_target_layer(model: nn.Module) -> str:
    """Dotted name of the last convolutional block of ``model``'s body.

    The body is ``model[0]`` for fastai ``vision_learner`` models (``Sequential(body, head)``)
    and the model itself otherwise. Among the body's children before any global pooling,
    flatten or linear layer, the last one that contains a convolution is the target (resnet and
    xresnet: the last stage; timm convnext: ``stages``); normalization or activation layers
    right after it are included (densenet: ``norm5``; timm efficientnet: ``bn2``).

    Raises
    ------
    CamError
        If the model has no convolutional layer.
    """
    prefix, body = _body(model)
    chosen: str | None = None
    for name, child in body.named_children():
        if _stops_spatial(child):
            break
        trailing_norm = chosen is not None and _is_norm_or_activation(child)
        if _contains_conv(child) or trailing_norm:
            chosen = name
    if chosen is None:
        if _contains_conv(body) and _is_conv(body):
            return prefix
        raise CamError(
            f"{type(model).__name__} has no convolutional layer before its pooling/linear "
            "head, so there is no feature map to explain. Grad-CAM needs a convolutional "
            "network (resnet, xresnet, densenet, convnext, efficientnet, ...); for other models "
            "name a layer that outputs a (batch, channels, height, width) map with --cam-layer."
        )
    return f"{prefix}.{chosen}" if prefix else chosen


def resolve_layer(model: nn.Module, layer: str | None = None) -> tuple[str, nn.Module]:
    """The target layer's dotted name and module: ``layer`` if given, else
    :func:`find_target_layer`.

    Raises
    ------
    CamError
        If ``layer`` names no submodule of ``model`` (the message lists the valid names near
        the body's end).
    """
    name = find_target_layer(model) if layer is None else layer.strip()
    try:
        module = model.get_submodule(name) if name else model
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n and n.count(".") <= 1]
        raise CamError(
            f"--cam-layer {layer!r} names no layer of this {type(model).__name__}. Expected a "
            f"dotted path such as {find_target_layer_or_none(model) or '0.7'!r}; top-level "
            f"names include: {first_few(names[-12:], limit=12)}."
        ) from None
    return name, module


def find_target_layer_or_none(model: nn.Module) -> str | None:
    """:func:`find_target_layer`, or ``None`` when the model has no convolutional layer."""
    try:
        return find_target_layer(model)
    except CamError:
        return None


# -- preprocessing ---------------------------------------------------------------------------
def _open_items(items: Sequence[object]) -> list[Image.Image]:
    from PIL import Image

    from asl_eval.inputs import load_rgb

    opened: list[Image.Image] = []
    for item in items:
        if isinstance(item, str | Path):
            opened.append(load_rgb(item))
        elif isinstance(item, Image.Image):
            opened.append(item.convert("RGB"))
        elif isinstance(item, np.ndarray) and item.dtype == np.uint8 and item.ndim in (2, 3):
            opened.append(Image.fromarray(item).convert("RGB"))
        else:
            raise InputError(
                "Expected image paths, PIL images or uint8 arrays (H, W[, 3]); got "
                f"{type(item).__name__}"
                + (f" of dtype {item.dtype}" if isinstance(item, np.ndarray) else "")
                + "."
            )
    return opened


def _learner_batches(
    learner: Learner, items: Sequence[object], batch_size: int
) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
    """Yield ``(model input, model view)`` per batch: the tensor after the learner's item and
    batch transforms, and the same images decoded to RGB uint8 ``(n, H, W, 3)``."""
    import torch

    for start in range(0, len(items), batch_size):
        images = _open_items(items[start : start + batch_size])
        dl = learner.dls.test_dl(images, bs=len(images), num_workers=0)
        (batch,) = dl.one_batch()
        decoded = dl.decode((batch,))[0]
        view = np.asarray(decoded.detach().cpu().clamp(0, 255).to(torch.uint8))
        yield batch.as_subclass(torch.Tensor), view.transpose(0, 2, 3, 1).copy()


def preprocess(
    learner: Learner, images: Sequence[str | Path | Image.Image | np.ndarray]
) -> tuple[torch.Tensor, np.ndarray]:
    """The learner's model input for ``images`` and the images as the model sees them.

    Images go through ``learner.dls.test_dl``: item transforms (resize, crop) then batch
    transforms (conversion to float, normalization), exactly as in prediction.

    Returns
    -------
    batch
        Float tensor ``(n, 3, H, W)`` on the learner's data device.
    view
        RGB ``uint8`` array ``(n, H, W, 3)``: the model input decoded back to pixels (after the
        resize, before normalization); heatmaps align with it pixel for pixel.
    """
    batches = list(_learner_batches(learner, list(images), max(len(images), 1)))
    if not batches:
        raise InputError("No images given: expected at least one image path or array.")
    return batches[0]


# -- the capture: activations at the target layer, gradients only after it ----------------------
class _LayerCapture:
    """Context manager that makes one forward pass cheap to explain.

    While open: the model is in eval mode, every parameter has ``requires_grad=False`` (so the
    layers before the target record no graph), and a forward hook on the target layer replaces
    its output with a fresh leaf tensor that requires grad (so only the layers after it are
    differentiated). On exit, whatever happened, the hook is removed and the parameters' flags
    and the train/eval mode are restored.
    """

    def __init__(self, model: nn.Module, layer_name: str, layer: nn.Module) -> None:
        self.model = model
        self.layer_name = layer_name
        self.layer = layer
        self.active = False
        self.activation: torch.Tensor | None = None
        self._handle: object | None = None
        self._flags: list[tuple[torch.nn.Parameter, bool]] = []
        self._training = model.training

    def __enter__(self) -> _LayerCapture:
        self._training = self.model.training
        self._flags = [(p, p.requires_grad) for p in self.model.parameters()]
        try:
            self.model.eval()
            for parameter, _ in self._flags:
                parameter.requires_grad_(False)
            self._handle = self.layer.register_forward_hook(self._hook)
        except BaseException:
            self._restore()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._restore()

    def _restore(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.remove()  # type: ignore[attr-defined]
        for parameter, flag in self._flags:
            parameter.requires_grad_(flag)
        self._flags = []
        self.model.train(self._training)
        self.active = False
        self.activation = None

    def _hook(self, module: nn.Module, inputs: object, output: object) -> object:
        import torch

        if not self.active:
            return None
        if not isinstance(output, torch.Tensor) or output.ndim != 4:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output)
            raise CamError(
                f"Layer {self.layer_name!r} ({type(module).__name__}) outputs {shape}; a heatmap "
                "needs a (batch, channels, height, width) feature map. Name a convolutional "
                "layer with --cam-layer, or leave it out to use the last convolutional block."
            )
        if self.activation is not None:
            raise CamError(
                f"Layer {self.layer_name!r} runs more than once per forward pass; name a layer "
                "that runs once with --cam-layer."
            )
        leaf = output.detach().requires_grad_(True)
        self.activation = leaf
        return leaf.clone()  # later in-place operations must not touch the leaf


# -- pytorch-grad-cam engines ----------------------------------------------------------------
class _Holder:
    """Stands in for pytorch-grad-cam's ``ActivationsAndGradients``: holds one layer's arrays."""

    def __init__(self) -> None:
        self.activations: list[torch.Tensor] = []
        self.gradients: list[torch.Tensor] = []

    def release(self) -> None:
        self.activations.clear()
        self.gradients.clear()


def _score_cam_weights(
    model: nn.Module,
    input_tensor: torch.Tensor,
    activations: np.ndarray,
    targets: Sequence[Callable[[torch.Tensor], torch.Tensor]],
    batch_size: int,
) -> np.ndarray:
    """ScoreCAM channel weights: the softmax over channels of the target score of the input
    masked by each upsampled, min-max normalized activation channel (Wang et al., 2020)."""
    import torch
    import torch.nn.functional as functional

    weights = []
    with torch.no_grad():
        maps = torch.from_numpy(activations).to(input_tensor.device)
        maps = functional.interpolate(
            maps, size=tuple(input_tensor.shape[-2:]), mode="bilinear", align_corners=True
        )
        flat = maps.flatten(2)
        low = flat.min(dim=-1).values[:, :, None, None]
        high = flat.max(dim=-1).values[:, :, None, None]
        maps = (maps - low) / (high - low + 1e-8)
        for image, channel_maps, target in zip(input_tensor, maps, targets, strict=True):
            scores = []
            for start in range(0, channel_maps.shape[0], batch_size):
                masked = image[None] * channel_maps[start : start + batch_size, None]
                scores.append(torch.stack([target(o) for o in model(masked)]).float().cpu())
            weights.append(torch.softmax(torch.cat(scores), dim=-1))
    return torch.stack(weights).numpy()


def _engine(method: CamMethod, model: nn.Module, layer: nn.Module, batch_size: int) -> object:
    """A pytorch-grad-cam object whose arithmetic we reuse, built without hooks."""
    from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, ScoreCAM

    classes = {
        "gradcam": GradCAM,
        "finercam": GradCAM,  # FinerCAM is Grad-CAM of a contrastive target
        "gradcam++": GradCAMPlusPlus,
        "hirescam": HiResCAM,
        "eigencam": EigenCAM,
        "scorecam": ScoreCAM,
    }
    engine = classes[method](model=model, target_layers=[])
    engine.target_layers = [layer]
    engine.activations_and_grads = _Holder()
    if method == "scorecam":

        def weights(input_tensor, target_layer, targets, activations, grads):
            return _score_cam_weights(model, input_tensor, activations, targets, batch_size)

        engine.get_cam_weights = weights
    return engine


def _check_faithfulness(metric: str) -> None:
    if metric not in FAITHFULNESS_METRICS:
        raise CamError(
            f"Unknown faithfulness metric {metric!r}; expected one of "
            f"{', '.join(FAITHFULNESS_METRICS)}."
        )


def _check_method(method: str) -> CamMethod:
    if method not in CAM_METHODS:
        raise CamError(f"Unknown CAM method {method!r}; expected one of {', '.join(CAM_METHODS)}.")
    return cast(CamMethod, method)


def _target_objects(
    method: CamMethod, class_indices: np.ndarray, logits: np.ndarray
) -> list[Callable[[torch.Tensor], torch.Tensor]]:
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget, FinerWeightedTarget

    if method != "finercam":
        return [ClassifierOutputTarget(int(c)) for c in class_indices]
    objects: list[Callable[[torch.Tensor], torch.Tensor]] = []
    n_classes = logits.shape[1]
    for row, c in zip(logits, class_indices, strict=True):
        order = [int(i) for i in np.argsort(np.abs(row - row[c]), kind="stable") if i != c]
        comparisons = order[: min(FINERCAM_N_COMPARISONS, n_classes - 1)]
        objects.append(FinerWeightedTarget(int(c), comparisons, 1.0))
    return objects


def _explain_tensor(
    model: nn.Module,
    layer_name: str,
    layer: nn.Module,
    batch: torch.Tensor,
    target_sets: Sequence[np.ndarray | None],
    method: CamMethod,
    score_batch_size: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps ``(n_sets, n, H, W)`` and logits ``(n, n_classes)`` for one input batch.

    ``None`` in ``target_sets`` means the predicted class.
    """
    import torch

    device = next(model.parameters()).device
    batch = batch.to(device)
    training = model.training
    holder = _Holder()
    uses_gradients = method not in ("eigencam", "scorecam")
    cams: list[np.ndarray] = []
    try:
        engine = _engine(method, model, layer, score_batch_size)  # sets eval mode
        engine.activations_and_grads = holder  # type: ignore[attr-defined]
        with (
            torch.inference_mode(False),
            torch.enable_grad(),
            _LayerCapture(model, layer_name, layer) as capture,
        ):
            capture.active = True
            logits = model(batch)
            capture.active = False
            if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
                raise CamError("The model must output class scores of shape (batch, classes).")
            leaf = capture.activation
            if leaf is None:
                raise CamError(
                    f"Layer {layer_name!r} did not run during the forward pass; name a layer "
                    "of the network's forward path with --cam-layer."
                )
            if leaf.shape[-2:] == (1, 1):
                warnings.warn(
                    f"Layer {layer_name!r} outputs a 1x1 map for {tuple(batch.shape[-2:])} "
                    "inputs, so every heatmap is constant (shown as zeros). Name an earlier "
                    "layer with --cam-layer, or use a model trained on larger images.",
                    stacklevel=4,
                )
            logits_np = logits.detach().cpu().float().numpy()
            holder.activations = [leaf.detach().cpu()]
            for indices in target_sets:
                classes = logits_np.argmax(axis=1) if indices is None else np.asarray(indices)
                targets = _target_objects(method, classes, logits_np)
                if uses_gradients:
                    score = torch.stack([t(o) for t, o in zip(targets, logits, strict=True)]).sum()
                    (gradient,) = torch.autograd.grad(score, leaf, retain_graph=True)
                    holder.gradients = [gradient.detach().cpu()]
                per_layer = engine.compute_cam_per_layer(batch, targets, False)  # type: ignore[attr-defined]
                cams.append(engine.aggregate_multi_layers(per_layer))  # type: ignore[attr-defined]
    finally:
        holder.release()
        model.train(training)
    return np.stack(cams).astype(np.float32), logits_np


# -- public computation ----------------------------------------------------------------------
@dataclass(frozen=True)
class CamBatch:
    """Heatmaps for several target sets over the same images, from one forward pass per batch.

    Attributes
    ----------
    cams
        ``float32`` array ``(n_sets, n_images, H, W)`` in ``[0, 1]``, ``H, W`` the model input
        size; ``cams[j, i]`` explains image ``i`` for the class of target set ``j``.
    images
        The images as the model saw them (after the resize): RGB ``uint8`` ``(n, H, W, 3)``.
    y_proba
        Softmax of the model's outputs for the images, ``(n, n_classes)``.
    classes
        The learner's classes (``dls.vocab``), in order.
    layer
        Dotted name of the target layer.
    method
        The CAM method.
    """

    cams: np.ndarray
    images: np.ndarray
    y_proba: np.ndarray
    classes: tuple[str, ...]
    layer: str
    method: str


def _class_indices(
    targets: Target | Sequence[Target] | None, n: int, classes: Sequence[str]
) -> np.ndarray | None:
    """Turn targets (class names or indices, one per image or one for all) into indices."""
    if targets is None:
        return None
    items: list[Target] = (
        [targets] * n if isinstance(targets, int | str | np.integer) else list(targets)
    )
    if len(items) != n:
        raise CamError(f"Expected one target per image ({n}); got {len(items)} targets.")
    lookup = {c: i for i, c in enumerate(classes)}
    indices: list[int] = []
    bad: list[object] = []
    for item in items:
        if isinstance(item, str):
            if item in lookup:
                indices.append(lookup[item])
            else:
                bad.append(item)
        elif isinstance(item, int | np.integer) and 0 <= int(item) < len(classes):
            indices.append(int(item))
        else:
            bad.append(item)
    if bad:
        raise CamError(
            f"{len(bad)} target(s) are not classes of the model: {first_few(bad)}. Expected "
            f"class names or indices 0..{len(classes) - 1} of {first_few(list(classes), 8)}."
        )
    return np.asarray(indices, dtype=np.int64)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted.astype(np.float64))
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))


def explain_images(
    learner: Learner,
    images: Sequence[str | Path | Image.Image | np.ndarray],
    target_sets: Sequence[Target | Sequence[Target] | None],
    *,
    method: CamMethod = "gradcam",
    layer: str | None = None,
    batch_size: int = 32,
) -> CamBatch:
    """Heatmaps of ``images`` for each set of targets, sharing one forward pass per batch.

    Parameters
    ----------
    learner
        A fastai learner; its ``dls.test_dl`` preprocesses the images.
    images
        Image paths (opened with :func:`asl_eval.inputs.load_rgb`), PIL images or RGB ``uint8``
        arrays.
    target_sets
        One entry per heatmap set: ``None`` (each image's predicted class), one class (name or
        index) for all images, or one class per image. ``[None, y_true]`` gives the predicted
        and the true class maps in one pass.
    method
        One of :data:`CAM_METHODS`. FinerCAM explains a class against its
        :data:`FINERCAM_N_COMPARISONS` most similar classes (closest logits).
    layer
        Dotted path of the target layer in ``learner.model``; default
        :func:`find_target_layer`.
    batch_size
        Images per forward pass.

    Raises
    ------
    CamError
        Unknown method, class or layer, or a model without a convolutional layer.
    InputError
        An image cannot be read.
    """
    method = _check_method(method)
    if batch_size < 1:
        raise CamError(f"batch_size must be at least 1; got {batch_size}.")
    model = learner.model
    classes = model_classes(learner)
    layer_name, module = resolve_layer(model, layer)
    items = list(images)
    n = len(items)
    sets = [_class_indices(t, n, classes) for t in target_sets]
    if not sets:
        raise CamError("target_sets is empty: pass at least one set, e.g. [None].")
    cams: list[np.ndarray] = []
    views: list[np.ndarray] = []
    logits: list[np.ndarray] = []
    for start, (batch, view) in zip(
        range(0, n, batch_size), _learner_batches(learner, items, batch_size), strict=True
    ):
        stop = start + len(view)
        batch_sets = [None if s is None else s[start:stop] for s in sets]
        batch_cams, batch_logits = _explain_tensor(
            model, layer_name, module, batch, batch_sets, method
        )
        cams.append(batch_cams)
        views.append(view)
        logits.append(batch_logits)
    if not cams:
        return CamBatch(
            cams=np.zeros((len(sets), 0, 0, 0), dtype=np.float32),
            images=np.zeros((0, 0, 0, 3), dtype=np.uint8),
            y_proba=np.zeros((0, len(classes))),
            classes=classes,
            layer=layer_name,
            method=method,
        )
    return CamBatch(
        cams=np.concatenate(cams, axis=1),
        images=np.concatenate(views),
        y_proba=_softmax(np.concatenate(logits)),
        classes=classes,
        layer=layer_name,
        method=method,
    )


def compute_cams(
    learner: Learner,
    images: Sequence[str | Path | Image.Image | np.ndarray],
    targets: Target | Sequence[Target] | None = None,
    *,
    method: CamMethod = "gradcam",
    layer: str | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """Heatmaps of ``images`` for ``targets``: ``float32`` array ``(n, H, W)`` in ``[0, 1]``.

    ``H, W`` is the model input size (the learner's resize). ``targets`` is ``None`` (each
    image's predicted class), one class name or index for all images, or one per image. See
    :func:`explain_images` for the other parameters; to get the images the heatmaps align
    with, or several target sets from one forward pass, use :func:`explain_images`.
    """
    result = explain_images(
        learner, images, [targets], method=method, layer=layer, batch_size=batch_size
    )
    return np.asarray(result.cams[0])


# -- overlay ---------------------------------------------------------------------------------
def _as_rgb_uint8(image: Image.Image | np.ndarray) -> np.ndarray:
    from PIL import Image

    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise InputError(
            f"overlay expects an RGB uint8 image; got dtype {array.dtype}. Convert with "
            "(image * 255).round().astype(np.uint8) if it holds floats in [0, 1]."
        )
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim == 3 and array.shape[2] == 3:
        return array
    raise InputError(f"overlay expects an image of shape (H, W, 3) or (H, W); got {array.shape}.")


def _checked_heatmap(cam: np.ndarray) -> np.ndarray:
    """``cam`` as float64, if it is 2-D and finite in [0, 1]; otherwise a CamError."""
    values = np.asarray(cam, dtype=np.float64)
    if values.ndim != 2:
        raise CamError(f"A heatmap must be 2-D (H, W); got shape {values.shape}.")
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
        raise CamError(
            "A heatmap must hold finite values in [0, 1]; got range "
            f"[{np.nanmin(values):.3g}, {np.nanmax(values):.3g}]."
        )
    return values


def colorize(cam: np.ndarray, *, colormap: str = "jet") -> np.ndarray:
    """A heatmap in ``[0, 1]`` as an RGB ``uint8`` image through a matplotlib colormap.

    >>> colorize(np.array([[0.0, 1.0]])).shape
    (1, 2, 3)
    """
    from matplotlib import colormaps

    values = _checked_heatmap(cam)
    rgba = colormaps[colormap](values)
    return np.asarray(np.round(rgba[..., :3] * 255), dtype=np.uint8)


def overlay(
    image: Image.Image | np.ndarray,
    cam: np.ndarray,
    *,
    alpha: float = 0.5,
    colormap: str = "jet",
) -> np.ndarray:
    """Blend a heatmap over an image.

    Contract: ``image`` is RGB ``uint8`` ``(H, W, 3)`` (or grayscale ``(H, W)``, or a PIL
    image); ``cam`` is a 2-D float array in ``[0, 1]``, resized bilinearly to ``(H, W)`` when
    its shape differs. The result is RGB ``uint8`` ``(H, W, 3)``:
    ``round((1 - alpha) * image + alpha * colormap(cam))``, with ``colormap`` a matplotlib
    colormap name (``"jet"``: blue is 0, red is 1). ``alpha=0`` returns the image unchanged,
    ``alpha=1`` the colored heatmap. Channels are RGB, never BGR.

    >>> image = np.full((2, 2, 3), 100, dtype=np.uint8)
    >>> overlay(image, np.zeros((2, 2)), alpha=0.0)[0, 0].tolist()
    [100, 100, 100]
    >>> overlay(image, np.ones((2, 2)), alpha=1.0)[0, 0].tolist()  # jet's red end
    [128, 0, 0]
    >>> overlay(image, np.ones((1, 1))).shape
    (2, 2, 3)
    """
    if not 0.0 <= alpha <= 1.0:
        raise CamError(f"alpha must lie in [0, 1]; got {alpha}.")
    rgb = _as_rgb_uint8(image)
    heat = _checked_heatmap(cam)  # before any resize
    if heat.shape != rgb.shape[:2]:
        heat = np.clip(_resize_float(heat, rgb.shape[:2]), 0.0, 1.0)
    colored = colorize(heat, colormap=colormap)
    blended = (1.0 - alpha) * rgb.astype(np.float64) + alpha * colored.astype(np.float64)
    return np.asarray(np.clip(np.round(blended), 0, 255), dtype=np.uint8)


def _resize_float(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a 2-D float array to ``size`` = (H, W)."""
    from PIL import Image

    resized = Image.fromarray(values.astype(np.float32), mode="F").resize(
        (size[1], size[0]), Image.Resampling.BILINEAR
    )
    return np.asarray(resized, dtype=np.float64)


def png_bytes(image: np.ndarray, *, size: int | None = None) -> bytes:
    """Encode an RGB ``uint8`` image as PNG, optionally resized so its longer side is ``size``.

    >>> png_bytes(np.zeros((4, 4, 3), dtype=np.uint8))[:4]
    b'\\x89PNG'
    """
    from PIL import Image

    picture = Image.fromarray(_as_rgb_uint8(image))
    if size is not None and max(picture.size) != size:
        scale = size / max(picture.size)
        new = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(new, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


# -- faithfulness ----------------------------------------------------------------------------
def _faithfulness_tensor(
    model: nn.Module,
    batch: torch.Tensor,
    cams: np.ndarray,
    class_indices: np.ndarray,
    metric: Faithfulness,
) -> np.ndarray:
    import torch
    from pytorch_grad_cam.metrics.cam_mult_image import DropInConfidence
    from pytorch_grad_cam.metrics.road import ROADCombined
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    if metric == "none":
        return np.full(len(class_indices), np.nan)
    targets = [ClassifierOutputSoftmaxTarget(int(c)) for c in class_indices]
    batch = batch.to(next(model.parameters()).device)
    training = model.training
    try:
        model.eval()
        with torch.random.fork_rng(devices=[]), torch.inference_mode(False):
            torch.manual_seed(0)  # ROAD's imputation adds noise: fix it for repeatable scores
            scorer = (
                ROADCombined(percentiles=list(ROAD_PERCENTILES))
                if metric == "road"
                else DropInConfidence()
            )
            scores = scorer(batch, np.asarray(cams, dtype=np.float32), targets, model)
    finally:
        model.train(training)
    return np.asarray(scores, dtype=np.float64).reshape(-1)


def faithfulness_scores(
    learner: Learner,
    images: Sequence[str | Path | Image.Image | np.ndarray],
    cams: np.ndarray,
    targets: Target | Sequence[Target],
    *,
    metric: Faithfulness = "road",
    batch_size: int = 32,
) -> np.ndarray:
    """Per-image score of whether a heatmap means anything, from ``pytorch_grad_cam.metrics``.

    ``"road"``: ROAD combined score (Rong et al., 2022) on the softmax probability of the
    target class, over removal percentiles :data:`ROAD_PERCENTILES`: the mean of (probability
    change when the least relevant pixels are imputed) minus (change when the most relevant
    are), halved. Higher is better; near 0 means the heatmap does not single out the pixels the
    model uses; negative means it points at the wrong ones. ``"confidence_drop"``: the drop of
    the target probability when the image is multiplied by the heatmap (0 when it rises);
    lower is better. ``"none"`` gives NaN. The imputation noise is seeded, so scores repeat.
    """
    _check_faithfulness(metric)
    items = list(images)
    cams = np.asarray(cams)
    if cams.ndim != 3 or cams.shape[0] != len(items):
        raise CamError(f"Expected cams of shape ({len(items)}, H, W); got {cams.shape}.")
    classes = model_classes(learner)
    indices = _class_indices(targets, len(items), classes)
    if indices is None:  # pragma: no cover - targets is required by the signature
        raise CamError("faithfulness_scores needs the explained class of each image.")
    scores = []
    for start, (batch, _) in zip(
        range(0, len(items), batch_size), _learner_batches(learner, items, batch_size), strict=True
    ):
        stop = start + batch.shape[0]
        if tuple(batch.shape[-2:]) != cams.shape[1:]:
            raise CamError(
                f"cams are {cams.shape[1:]} but the model input is {tuple(batch.shape[-2:])}; "
                "pass heatmaps from compute_cams for the same images."
            )
        scores.append(
            _faithfulness_tensor(
                learner.model, batch, cams[start:stop], indices[start:stop], metric
            )
        )
    return np.concatenate(scores) if scores else np.zeros(0)


# -- which images the report explains --------------------------------------------------------
@dataclass(frozen=True)
class CamSelection:
    """Rows of an out-of-domain :class:`Predictions` to explain.

    ``classes`` are the explained classes, worst first; ``per_class[c]`` the row indices of
    class ``c``'s images (misclassified first, then by decreasing loss); ``top_losses`` the
    highest-loss rows not already in a class gallery; ``class_accuracy`` the out-of-domain
    accuracy of each explained class (NaN for a class without images); ``by_hand`` whether the
    classes were given rather than chosen.
    """

    classes: tuple[str, ...]
    per_class: dict[str, tuple[int, ...]]
    top_losses: tuple[int, ...]
    class_accuracy: dict[str, float]
    by_hand: bool


def parse_cam_classes(text: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """Class names from ``--cam-classes T,V,X`` (commas and/or spaces); ``None`` if empty.

    >>> parse_cam_classes("T, V,X")
    ('T', 'V', 'X')
    >>> parse_cam_classes("") is None
    True
    """
    if text is None:
        return None
    parts = text.replace(",", " ").split() if isinstance(text, str) else [str(t) for t in text]
    names = tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))
    return names or None


def select_cam_images(
    ood: Predictions,
    *,
    classes: Sequence[str] | None = None,
    k: int = 3,
    n_per_class: int = 4,
    n_top_losses: int = 4,
) -> CamSelection:
    """Pick the images to explain from an out-of-domain evaluation.

    By default the ``k`` classes with the lowest accuracy (ties: higher mean loss first, then
    the model's class order) among classes with at least one image; ``classes`` picks them by
    hand. Each gets up to ``n_per_class`` of its images, misclassified first, each group by
    decreasing loss. Then the ``n_top_losses`` highest-loss images not already chosen.

    >>> p = Predictions.from_labels(
    ...     ["A", "A", "B", "B", "C"],
    ...     np.array([[.9, .05, .05], [.2, .7, .1], [.1, .8, .1], [.6, .3, .1], [.1, .1, .8]]),
    ...     ["A", "B", "C"],
    ... )
    >>> s = select_cam_images(p, k=2, n_per_class=2, n_top_losses=1)
    >>> s.classes, s.per_class["A"], s.top_losses
    (('A', 'B'), (1, 0), (4,))

    Raises
    ------
    CamError
        If a class given by hand is not one of the model's classes, or ``k`` or a count is
        negative.
    """
    if k < 0 or n_per_class < 0 or n_top_losses < 0:
        raise CamError(
            f"k, n_per_class and n_top_losses must be >= 0; got {k}, {n_per_class}, {n_top_losses}."
        )
    correct = ood.y_true == ood.y_pred
    loss = ood.loss
    accuracy: dict[str, float] = {}
    mean_loss: dict[str, float] = {}
    for index, name in enumerate(ood.classes):
        rows = ood.y_true == index
        accuracy[name] = float(correct[rows].mean()) if rows.any() else float("nan")
        mean_loss[name] = float(loss[rows].mean()) if rows.any() else float("nan")
    if classes is not None:
        unknown = [c for c in classes if c not in accuracy]
        if unknown:
            raise CamError(
                f"--cam-classes names {len(unknown)} class(es) the model does not have: "
                f"{first_few(unknown)}. The model's classes are {first_few(list(ood.classes), 30)}."
            )
        chosen = tuple(dict.fromkeys(classes))
        empty = [c for c in chosen if np.isnan(accuracy[c])]
        if empty:
            warnings.warn(
                f"{ood.name}: no images of class(es) {first_few(empty)}; their galleries are "
                "empty.",
                stacklevel=2,
            )
    else:
        present = [c for c in ood.classes if not np.isnan(accuracy[c])]
        order = sorted(present, key=lambda c: (accuracy[c], -mean_loss[c]))
        chosen = tuple(order[:k])
    index_of = {c: i for i, c in enumerate(ood.classes)}
    per_class: dict[str, tuple[int, ...]] = {}
    for name in chosen:
        rows = np.flatnonzero(ood.y_true == index_of[name])
        ranked = sorted(rows.tolist(), key=lambda r: (bool(correct[r]), -loss[r], r))
        per_class[name] = tuple(ranked[:n_per_class])
    taken = {r for rows in per_class.values() for r in rows}
    by_loss = sorted(range(ood.n_images), key=lambda r: (-loss[r], r))
    top = tuple(r for r in by_loss if r not in taken)[:n_top_losses]
    return CamSelection(
        classes=chosen,
        per_class=per_class,
        top_losses=top,
        class_accuracy={c: accuracy[c] for c in chosen},
        by_hand=classes is not None,
    )


def _spread(rows: np.ndarray, n: int) -> list[int]:
    """Up to ``n`` rows spread evenly over ``rows`` (deterministic).

    >>> _spread(np.arange(10), 3)
    [0, 4, 9]
    """
    if len(rows) <= n:
        return rows.tolist()
    picks = np.unique(np.linspace(0, len(rows) - 1, n).round().astype(int))
    return rows[picks].tolist()


# -- the report section ----------------------------------------------------------------------
@dataclass(frozen=True)
class CamImage:
    """One explained image: the input as the model saw it, and the heatmaps for the predicted
    and the true class (identical when the prediction is right), as PNG bytes.

    ``faithfulness_pred`` / ``faithfulness_true`` score each heatmap (see
    :func:`faithfulness_scores`; NaN when not computed). ``cam_pred`` / ``cam_true`` are the
    raw heatmaps ``(H, W)`` in ``[0, 1]``.
    """

    path: str
    set_name: str
    true_class: str
    pred_class: str
    proba_true: float
    proba_pred: float
    loss: float
    correct: bool
    faithfulness_pred: float
    faithfulness_true: float
    image_png: bytes = field(repr=False)
    pred_png: bytes = field(repr=False)
    true_png: bytes = field(repr=False)
    cam_pred: np.ndarray = field(repr=False)
    cam_true: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class CamMean:
    """The mean true-class heatmap over ``n_images`` images of one class in one set.

    ``overlay_png`` is the colored mean heatmap over the mean input image.
    """

    class_name: str
    set_name: str
    n_images: int
    cam: np.ndarray = field(repr=False)
    overlay_png: bytes = field(repr=False)


@dataclass(frozen=True)
class CamClassGallery:
    """One explained class: its out-of-domain images and mean heatmaps in and out of domain."""

    class_name: str
    ood_accuracy: float
    n_ood_images: int
    n_ood_misclassified: int
    images: tuple[CamImage, ...]
    mean_ood: CamMean | None
    mean_in_domain: CamMean | None
    mean_faithfulness: float


@dataclass(frozen=True)
class CamSection:
    """Everything the report's "why it fails" section shows, torch-free.

    ``galleries`` are the explained classes, worst first; ``top_losses`` the highest-loss
    out-of-domain images outside the galleries; ``skipped`` the ``(path, reason)`` of images
    that could not be read again; ``n_prediction_mismatches`` counts images whose predicted
    class now differs from the stored predictions (a different model or preprocessing).
    """

    method: str
    layer: str
    ood_set: str
    in_domain_set: str | None
    selected_by: Literal["lowest_accuracy", "by_hand"]
    galleries: tuple[CamClassGallery, ...]
    top_losses: tuple[CamImage, ...]
    faithfulness_metric: str
    faithfulness_higher_is_better: bool
    skipped: tuple[tuple[str, str], ...] = ()
    n_prediction_mismatches: int = 0

    def summary(self) -> dict[str, object]:
        """The numbers of the section (no images), for the JSON report."""

        def image_record(item: CamImage) -> dict[str, object]:
            return {
                "path": item.path,
                "set": item.set_name,
                "true_class": item.true_class,
                "pred_class": item.pred_class,
                "proba_true": item.proba_true,
                "proba_pred": item.proba_pred,
                "loss": item.loss,
                "faithfulness_pred": item.faithfulness_pred,
                "faithfulness_true": item.faithfulness_true,
            }

        return {
            "method": self.method,
            "layer": self.layer,
            "ood_set": self.ood_set,
            "in_domain_set": self.in_domain_set,
            "selected_by": self.selected_by,
            "faithfulness_metric": self.faithfulness_metric,
            "faithfulness_higher_is_better": self.faithfulness_higher_is_better,
            "classes": [
                {
                    "class": g.class_name,
                    "ood_accuracy": g.ood_accuracy,
                    "n_ood_images": g.n_ood_images,
                    "n_ood_misclassified": g.n_ood_misclassified,
                    "mean_faithfulness": g.mean_faithfulness,
                    "images": [image_record(i) for i in g.images],
                }
                for g in self.galleries
            ],
            "top_losses": [image_record(i) for i in self.top_losses],
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "n_prediction_mismatches": self.n_prediction_mismatches,
        }


def _check_classes(learner: Learner, sets: Mapping[str, Predictions]) -> tuple[str, ...]:
    classes = model_classes(learner)
    for name, predictions in sets.items():
        if predictions.classes != classes:
            raise LabelError(
                f"Predictions {name!r} were made with classes {first_few(predictions.classes, 8)}"
                f" but the model has {first_few(classes, 8)}; explain them with the model that "
                "made them."
            )
    return classes


@dataclass
class _Explained:
    """Heatmaps of some rows of one set (internal)."""

    rows: list[int]
    position: dict[int, int]
    cams: np.ndarray  # (2, n, H, W): predicted class, true class
    images: np.ndarray
    faithfulness: np.ndarray  # (2, n)


def _explain_rows(
    learner: Learner,
    predictions: Predictions,
    rows: Sequence[int],
    scored: set[int],
    *,
    method: CamMethod,
    layer: str | None,
    faithfulness: Faithfulness,
    batch_size: int,
    skipped: list[tuple[str, str]],
) -> tuple[_Explained, int, str]:
    from asl_eval.inputs import UnreadableImage, load_rgb

    kept: list[int] = []
    images: list[Image.Image] = []
    for row in dict.fromkeys(rows):
        try:
            images.append(load_rgb(predictions.paths[row]))
        except UnreadableImage as error:
            skipped.append((predictions.paths[row], error.reason))
            continue
        kept.append(row)
    y_pred, y_true = predictions.y_pred[kept], predictions.y_true[kept]
    result = explain_images(
        learner,
        images,
        [y_pred.tolist(), y_true.tolist()],
        method=method,
        layer=layer,
        batch_size=batch_size,
    )
    mismatches = int((result.y_proba.argmax(axis=1) != y_pred).sum()) if kept else 0
    scores = np.full((2, len(kept)), np.nan)
    score_at = [i for i, row in enumerate(kept) if row in scored]
    if faithfulness != "none" and score_at:
        subset = [images[i] for i in score_at]
        scores[0, score_at] = faithfulness_scores(
            learner,
            subset,
            result.cams[0, score_at],
            y_pred[score_at].tolist(),
            metric=faithfulness,
        )
        wrong = [i for i in score_at if y_pred[i] != y_true[i]]
        same = [i for i in score_at if y_pred[i] == y_true[i]]
        scores[1, same] = scores[0, same]
        if wrong:
            scores[1, wrong] = faithfulness_scores(
                learner,
                [images[i] for i in wrong],
                result.cams[1, wrong],
                y_true[wrong].tolist(),
                metric=faithfulness,
            )
    explained = _Explained(
        rows=kept,
        position={row: i for i, row in enumerate(kept)},
        cams=result.cams,
        images=result.images,
        faithfulness=scores,
    )
    return explained, mismatches, result.layer


def _cam_image(
    predictions: Predictions, explained: _Explained, row: int, size: int
) -> CamImage | None:
    at = explained.position.get(row)
    if at is None:
        return None
    picture = explained.images[at]
    true_index, pred_index = int(predictions.y_true[row]), int(predictions.y_pred[row])
    cam_pred, cam_true = explained.cams[0, at], explained.cams[1, at]
    return CamImage(
        path=predictions.paths[row],
        set_name=predictions.name,
        true_class=predictions.classes[true_index],
        pred_class=predictions.classes[pred_index],
        proba_true=float(predictions.y_proba[row, true_index]),
        proba_pred=float(predictions.y_proba[row, pred_index]),
        loss=float(predictions.loss[row]),
        correct=true_index == pred_index,
        faithfulness_pred=float(explained.faithfulness[0, at]),
        faithfulness_true=float(explained.faithfulness[1, at]),
        image_png=png_bytes(picture, size=size),
        pred_png=png_bytes(overlay(picture, cam_pred), size=size),
        true_png=png_bytes(overlay(picture, cam_true), size=size),
        cam_pred=cam_pred,
        cam_true=cam_true,
    )


def _cam_mean(
    name: str, predictions: Predictions, explained: _Explained, rows: Sequence[int], size: int
) -> CamMean | None:
    at = [explained.position[r] for r in rows if r in explained.position]
    if not at:
        return None
    cam = explained.cams[1, at].mean(axis=0)
    mean_image = np.asarray(explained.images[at].mean(axis=0).round(), dtype=np.uint8)
    return CamMean(
        class_name=name,
        set_name=predictions.name,
        n_images=len(at),
        cam=cam,
        overlay_png=png_bytes(overlay(mean_image, np.clip(cam, 0.0, 1.0)), size=size),
    )


def build_cam_section(
    learner: Learner,
    sets: Mapping[str, Predictions],
    *,
    ood_set: str,
    in_domain_set: str | None = None,
    classes: Sequence[str] | None = None,
    k: int = 3,
    n_per_class: int = 4,
    n_top_losses: int = 4,
    n_mean: int = 16,
    method: CamMethod = "gradcam",
    layer: str | None = None,
    faithfulness: Faithfulness = "road",
    thumbnail_size: int = 160,
    batch_size: int = 32,
) -> CamSection:
    """Explain the failing classes of an out-of-domain set, for the report.

    Parameters
    ----------
    learner
        The model that made the predictions (checked: same classes).
    sets
        Evaluations by name, e.g. ``{"valid": ..., "massey": ...}``.
    ood_set
        The out-of-domain set whose worst classes are explained.
    in_domain_set
        The set for the in-domain mean heatmaps; default the first other set in ``sets``
        (none when ``sets`` holds only ``ood_set``).
    classes, k, n_per_class, n_top_losses
        Which images: see :func:`select_cam_images` (``classes`` is ``--cam-classes``).
    n_mean
        Images per class and set averaged into the mean heatmaps (spread over the class).
    method, layer
        See :func:`explain_images` (``--cam-method``, ``--cam-layer``).
    faithfulness
        Per-image score of each gallery heatmap, see :func:`faithfulness_scores`.
    thumbnail_size
        Longer side in pixels of the PNGs.

    Raises
    ------
    CamError
        Unknown set, class, method or layer.
    LabelError
        The predictions were made with other classes than the learner's.
    """
    method = _check_method(method)
    _check_faithfulness(faithfulness)
    for name in (ood_set, in_domain_set):
        if name is not None and name not in sets:
            raise CamError(
                f"No evaluation set named {name!r}; the sets are {first_few(list(sets))}."
            )
    if in_domain_set is None:
        in_domain_set = next((name for name in sets if name != ood_set), None)
    _check_classes(learner, sets)
    ood = sets[ood_set]
    selection = select_cam_images(
        ood, classes=classes, k=k, n_per_class=n_per_class, n_top_losses=n_top_losses
    )
    index_of = {c: i for i, c in enumerate(ood.classes)}
    mean_rows: dict[str, dict[str, list[int]]] = {}
    for set_name in (ood_set, in_domain_set):
        if set_name is None:
            continue
        predictions = sets[set_name]
        mean_rows[set_name] = {
            c: _spread(np.flatnonzero(predictions.y_true == index_of[c]), n_mean)
            for c in selection.classes
        }
    gallery_rows = [r for rows in selection.per_class.values() for r in rows]
    scored = set(gallery_rows) | set(selection.top_losses)
    skipped: list[tuple[str, str]] = []
    explained: dict[str, _Explained] = {}
    mismatches = 0
    layer_name = resolve_layer(learner.model, layer)[0]
    for set_name, by_class in mean_rows.items():
        rows = [r for rs in by_class.values() for r in rs]
        if set_name == ood_set:
            rows = [*gallery_rows, *selection.top_losses, *rows]
        explained[set_name], n_wrong, layer_name = _explain_rows(
            learner,
            sets[set_name],
            rows,
            scored if set_name == ood_set else set(),
            method=method,
            layer=layer,
            faithfulness=faithfulness,
            batch_size=batch_size,
            skipped=skipped,
        )
        mismatches += n_wrong
    if mismatches:
        warnings.warn(
            f"{mismatches} explained image(s) are now predicted differently than in the stored "
            "predictions: is this the model that made them?",
            stacklevel=2,
        )
    galleries = []
    for name in selection.classes:
        images = tuple(
            item
            for row in selection.per_class[name]
            if (item := _cam_image(ood, explained[ood_set], row, thumbnail_size)) is not None
        )
        rows_of_class = ood.y_true == index_of[name]
        scores = [i.faithfulness_pred for i in images if not np.isnan(i.faithfulness_pred)]
        in_domain = None
        if in_domain_set is not None:
            in_domain = _cam_mean(
                name,
                sets[in_domain_set],
                explained[in_domain_set],
                mean_rows[in_domain_set][name],
                thumbnail_size,
            )
        galleries.append(
            CamClassGallery(
                class_name=name,
                ood_accuracy=selection.class_accuracy[name],
                n_ood_images=int(rows_of_class.sum()),
                n_ood_misclassified=int((rows_of_class & (ood.y_true != ood.y_pred)).sum()),
                images=images,
                mean_ood=_cam_mean(
                    name, ood, explained[ood_set], mean_rows[ood_set][name], thumbnail_size
                ),
                mean_in_domain=in_domain,
                mean_faithfulness=float(np.mean(scores)) if scores else float("nan"),
            )
        )
    top = tuple(
        item
        for row in selection.top_losses
        if (item := _cam_image(ood, explained[ood_set], row, thumbnail_size)) is not None
    )
    if skipped:
        logger.warning("CAM: %d image(s) could not be read again and were skipped", len(skipped))
    return CamSection(
        method=method,
        layer=layer_name,
        ood_set=ood_set,
        in_domain_set=in_domain_set,
        selected_by="by_hand" if selection.by_hand else "lowest_accuracy",
        galleries=tuple(galleries),
        top_losses=top,
        faithfulness_metric=faithfulness,
        faithfulness_higher_is_better=faithfulness != "confidence_drop",
        skipped=tuple(dict.fromkeys(skipped)),
        n_prediction_mismatches=mismatches,
    )
