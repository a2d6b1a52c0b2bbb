"""Heatmap overlays: a heatmap colored and blended over the image it explains, and PNG bytes
for the report.

Contract: images are RGB (never BGR) ``uint8`` ``(H, W, 3)`` (grayscale ``(H, W)`` and PIL
images are accepted); heatmaps are 2-D float arrays with finite values in ``[0, 1]``; results
are RGB ``uint8`` ``(H, W, 3)``. Floats are refused as images, never guessed at.

Imports numpy, PIL, matplotlib's colormaps and :mod:`asl_eval.errors` only (no torch).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

from asl_eval.errors import CamError, InputError

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["colorize", "overlay", "png_bytes"]


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


def _resize_float(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a 2-D float array to ``size`` = (H, W)."""
    from PIL import Image

    picture = Image.fromarray(values.astype(np.float32))  # a 2-D float32 array: mode "F"
    resized = picture.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float64)


def colorize(cam: np.ndarray, *, colormap: str = "jet") -> np.ndarray:
    """A heatmap in ``[0, 1]`` as an RGB ``uint8`` image through a matplotlib colormap.

    Parameters
    ----------
    cam
        2-D float array with finite values in ``[0, 1]``.
    colormap
        A matplotlib colormap name (``"jet"``: blue is 0, red is 1).

    Returns
    -------
    numpy.ndarray
        RGB ``uint8`` ``(H, W, 3)``.

    Raises
    ------
    CamError
        If ``cam`` is not 2-D or not finite in ``[0, 1]``.

    Examples
    --------
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

    Parameters
    ----------
    image
        RGB ``uint8`` ``(H, W, 3)``, grayscale ``uint8`` ``(H, W)``, or a PIL image.
    cam
        2-D float array in ``[0, 1]``; resized bilinearly to ``(H, W)`` when its shape
        differs.
    alpha
        Weight of the colored heatmap: ``0`` returns the image unchanged, ``1`` the colored
        heatmap.
    colormap
        A matplotlib colormap name (``"jet"``: blue is 0, red is 1).

    Returns
    -------
    numpy.ndarray
        RGB ``uint8`` ``(H, W, 3)``: ``round((1 - alpha) * image + alpha * colormap(cam))``.
        Channels are RGB, never BGR.

    Raises
    ------
    InputError
        If ``image`` is not ``uint8`` or has another shape.
    CamError
        If ``cam`` is not 2-D and finite in ``[0, 1]``, or ``alpha`` is outside ``[0, 1]``.

    Examples
    --------
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


def png_bytes(image: Image.Image | np.ndarray, *, size: int | None = None) -> bytes:
    """Encode an RGB ``uint8`` image as PNG, optionally resized so its longer side is ``size``.

    Examples
    --------
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
