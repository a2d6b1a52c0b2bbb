"""Heatmaps of images for a fastai learner: the public entry points of the CAM stage.

:func:`explain_images` preprocesses images with the learner's own transforms, chooses the
target layer (:mod:`asl_eval.cam.layers`) and runs the adapter (:mod:`asl_eval.cam.engine`)
batch by batch; :func:`compute_cams` is its one-target-set shorthand.

Imports numpy, :mod:`asl_eval.errors`, :mod:`asl_eval.inference` (the learner's classes) and
the cam modules layers, preprocess and engine.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import softmax

from asl_eval.cam.engine import CamMethod, check_method, explain_tensor
from asl_eval.cam.layers import resolve_layer
from asl_eval.cam.preprocess import learner_batches
from asl_eval.errors import CamError, first_few
from asl_eval.inference import model_classes

if TYPE_CHECKING:
    from fastai.learner import Learner
    from PIL import Image
    from torch import nn

__all__ = ["CamBatch", "Target", "class_indices", "compute_cams", "explain_images"]

Target = int | str
"""A class given by name or by index in the learner's classes."""


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
    map_size
        ``(height, width)`` of the target layer's feature map: the heatmaps' real resolution
        before they are upsampled to the input size (``(0, 0)`` when no image was given).
    """

    cams: np.ndarray
    images: np.ndarray
    y_proba: np.ndarray
    classes: tuple[str, ...]
    layer: str
    method: str
    map_size: tuple[int, int] = (0, 0)


def class_indices(
    targets: Target | Sequence[Target] | None, n: int, classes: Sequence[str]
) -> np.ndarray | None:
    """Targets (class names or indices, one per image or one for all) as class indices.

    ``None`` stays ``None`` (each image's predicted class).

    Raises
    ------
    CamError
        If the number of targets is not ``n``, or a target is not a class of the model.

    Examples
    --------
    >>> class_indices(["B", 0], 2, ["A", "B"]).tolist()
    [1, 0]
    """
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
        if isinstance(item, str) and item in lookup:
            indices.append(lookup[item])
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


def _warn_if_flat(layer: str, map_size: tuple[int, int], input_size: tuple[int, ...]) -> None:
    if map_size == (1, 1):
        warnings.warn(
            f"Layer {layer!r} outputs a 1x1 map for {input_size} inputs, so every heatmap is "
            "constant (shown as zeros). Name an earlier layer with --cam-layer, or use a model "
            "trained on larger images.",
            stacklevel=3,
        )


def _empty(n_sets: int, classes: tuple[str, ...], layer: str, method: str) -> CamBatch:
    return CamBatch(
        cams=np.zeros((n_sets, 0, 0, 0), dtype=np.float32),
        images=np.zeros((0, 0, 0, 3), dtype=np.uint8),
        y_proba=np.zeros((0, len(classes))),
        classes=classes,
        layer=layer,
        method=method,
    )


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
        One of :data:`~asl_eval.cam.engine.CAM_METHODS`. FinerCAM explains a class against its
        :data:`~asl_eval.cam.engine.FINERCAM_N_COMPARISONS` most similar classes.
    layer
        Dotted path of the target layer in ``learner.model``; default: the last convolutional
        block whose map is at least 3x3 at the model's input size
        (:func:`~asl_eval.cam.layers.find_target_layer`).
    batch_size
        Images per forward pass.

    Returns
    -------
    CamBatch
        The heatmaps, the images they align with, the probabilities, the layer and its map
        size.

    Raises
    ------
    CamError
        Unknown method, class or layer, or a model without a convolutional layer.
    InputError
        An image cannot be read.
    """
    method = check_method(method)
    if batch_size < 1:
        raise CamError(f"batch_size must be at least 1; got {batch_size}.")
    classes = model_classes(learner)
    items = list(images)
    sets = [class_indices(t, len(items), classes) for t in target_sets]
    if not sets:
        raise CamError("target_sets is empty: pass at least one set, e.g. [None].")
    cams, views, logits = [], [], []
    chosen: tuple[str, nn.Module] | None = None
    map_size = (0, 0)
    for start, (batch, view) in zip(
        range(0, len(items), batch_size), learner_batches(learner, items, batch_size), strict=True
    ):
        if chosen is None:  # the layer for the model's input size, as the first batch shows it
            height, width = int(batch.shape[-2]), int(batch.shape[-1])
            chosen = resolve_layer(
                learner.model, layer, input_size=(height, width), channels=int(batch.shape[1])
            )
        batch_sets = [None if s is None else s[start : start + len(view)] for s in sets]
        explained = explain_tensor(learner.model, *chosen, batch, batch_sets, method)
        cams.append(explained.cams)
        views.append(view)
        logits.append(explained.logits)
        map_size = explained.map_size
    if chosen is None:
        return _empty(len(sets), classes, resolve_layer(learner.model, layer)[0], method)
    _warn_if_flat(chosen[0], map_size, tuple(views[0].shape[1:3]))
    return CamBatch(
        cams=np.concatenate(cams, axis=1),
        images=np.concatenate(views),
        y_proba=softmax(np.concatenate(logits).astype(np.float64), axis=1),
        classes=classes,
        layer=chosen[0],
        method=method,
        map_size=map_size,
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
    with, the layer and its map size, or several target sets from one forward pass, use
    :func:`explain_images`.
    """
    result = explain_images(
        learner, images, [targets], method=method, layer=layer, batch_size=batch_size
    )
    return np.asarray(result.cams[0])
