"""Preprocessing for heatmaps: images through the learner's own transforms, exactly as in
prediction, plus the same images decoded back to the pixels the model saw.

Imports numpy, PIL, :mod:`asl_eval.inputs` and :mod:`asl_eval.errors`; torch inside functions.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from asl_eval.errors import InputError

if TYPE_CHECKING:
    import torch
    from fastai.learner import Learner
    from PIL import Image

__all__ = ["learner_batches", "learner_input_size", "open_images", "preprocess"]

# Two blank images of different shapes: if the learner resizes, both come out at its input size.
_PROBE_SHAPES: tuple[tuple[int, int], ...] = ((48, 80), (96, 40))


def open_images(items: Sequence[object]) -> list[Image.Image]:
    """``items`` as RGB PIL images: paths through :func:`asl_eval.inputs.load_rgb`, PIL images
    converted, ``uint8`` arrays ``(H, W)`` or ``(H, W, 3)`` wrapped.

    Raises
    ------
    InputError
        An item of another type or dtype, or a file that cannot be read
        (:class:`asl_eval.errors.UnreadableImage`).
    """
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


def learner_batches(
    learner: Learner, items: Sequence[object], batch_size: int
) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
    """Yield ``(model input, model view)`` per batch: the tensor after the learner's item and
    batch transforms, and the same images decoded to RGB ``uint8`` ``(n, H, W, 3)``."""
    import torch

    for start in range(0, len(items), batch_size):
        images = open_images(items[start : start + batch_size])
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

    Raises
    ------
    InputError
        No images, or an image that cannot be read.
    """
    batches = list(learner_batches(learner, list(images), max(len(images), 1)))
    if not batches:
        raise InputError("No images given: expected at least one image path or array.")
    return batches[0]


def learner_input_size(learner: Learner) -> tuple[int, int, int] | None:
    """``(channels, height, width)`` of the model input, or ``None`` if it varies with the image.

    Found by sending two small blank images of different shapes through the learner's
    ``test_dl``: when its item transforms resize (or crop) to a fixed size, both come out at
    that size.
    """
    shapes = set()
    for height, width in _PROBE_SHAPES:
        blank = np.full((height, width, 3), 128, dtype=np.uint8)
        batch, _ = preprocess(learner, [blank])
        shapes.add(tuple(int(v) for v in batch.shape[1:]))
    if len(shapes) != 1:
        return None
    channels, height, width = shapes.pop()
    return channels, height, width
