"""What input a loaded learner expects, and the load-time check that its model accepts it.

:func:`input_size` reads the size a learner's item transforms resize every image to;
:func:`check_input_size` runs one blank image through the learner's own test pipeline, so a
learner whose model was built for another size fails at load time with a clear message
instead of on every prediction.

Imports :mod:`asl_eval.errors`; Pillow and fastai (through the learner) only inside
:func:`check_input_size`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from asl_eval.errors import ModelLoadError

if TYPE_CHECKING:
    from fastai.learner import Learner

__all__ = ["RESIZING_TRANSFORMS", "check_input_size", "input_size"]

logger = logging.getLogger(__name__)

RESIZING_TRANSFORMS: tuple[str, ...] = ("Resize", "RandomResizedCrop", "CropPad")
"""Item transforms that give every image one size."""


def input_size(learner: Learner) -> tuple[int, int] | None:
    """The (height, width) the learner's item transforms resize every image to, if any."""
    for transform in getattr(learner.dls.after_item, "fs", []):
        if type(transform).__name__ in RESIZING_TRANSFORMS:
            size = getattr(transform, "size", None)
            if isinstance(size, int):
                return size, size
            if isinstance(size, tuple | list) and len(size) == 2:
                return int(size[0]), int(size[1])
    return None


def check_input_size(learner: Learner, *, path: str | Path = "the model") -> None:
    """Run one blank image of an odd size through the learner's own test pipeline.

    A learner resizes test images with its item transforms (``Resize(200)`` in the tutorial);
    if its model was built for a different input size (a fixed-size head, a ViT), every
    prediction would fail. This finds out at load time, with a clear message.

    Raises
    ------
    ModelLoadError
        If the model cannot process what its item transforms produce.
    """
    from PIL import Image

    size = input_size(learner)
    if size is None:
        logger.info("%s has no resizing item transform; test images keep their size", path)
        return
    probe = Image.new("RGB", (size[1] + 13, size[0] + 7), (127, 127, 127))
    try:
        dl = learner.dls.test_dl([probe], bs=1, num_workers=0)
        with learner.no_bar(), learner.no_logging():
            learner.get_preds(dl=dl)
    except (RuntimeError, ValueError, IndexError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelLoadError(
            f"{path} cannot classify its own test input: its item transforms resize every "
            f"image to {size[0]}x{size[1]} (height x width), but its model fails on that size "
            f"({detail}). The learner's Resize does not match the input size its model was "
            "built for; re-export it with item_tfms=Resize(<the model's input size>)."
        ) from error
