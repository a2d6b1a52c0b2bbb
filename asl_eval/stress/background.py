"""Background replacement: the hand kept pixel for pixel, everything else replaced by a
generated background.

The foreground is the audit's estimate (:func:`asl_eval.audit.foreground.foreground_mask`,
colour distance to the image border). Backgrounds are generated here from the per-image seed,
nothing is downloaded; severity says how much structure the new background has:

1. a plain colour;
2. a linear gradient between two colours, at a random angle;
3. smooth colour blobs (Gaussian-filtered noise, a few tens of pixels across);
4. stripes of two colours, at a random angle and period;
5. fine coloured noise (lightly smoothed per-pixel colours).

Colours are drawn uniformly in HSV (hue any, saturation 0.2–0.9, value 0.25–0.95) so that they
are seldom skin-like and never pure black or white.

Hand-written, not from a library: neither albumentations nor torchvision replaces a background
outside a given mask with generated textures (albumentations' mask-aware transforms change the
whole image or only the masked part, not "keep the mask, regenerate the rest").

Layer: part of :mod:`asl_eval.stress`; imports numpy, scipy and :mod:`asl_eval.audit` (torch-free).
"""

from __future__ import annotations

import colorsys

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from asl_eval.audit.foreground import foreground_mask
from asl_eval.errors import InputError

__all__ = ["generate_background", "replace_background"]


def _colour(rng: np.random.Generator) -> NDArray[np.float64]:
    hue = rng.uniform(0.0, 1.0)
    saturation = rng.uniform(0.2, 0.9)
    value = rng.uniform(0.25, 0.95)
    return np.array(colorsys.hsv_to_rgb(hue, saturation, value), dtype=np.float64) * 255.0


def _angle_coordinate(height: int, width: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """Each pixel's position along a random direction, 0 at one corner, 1 at the opposite."""
    angle = rng.uniform(0.0, np.pi)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    along = x * np.cos(angle) + y * np.sin(angle)
    span = along.max() - along.min()
    return (along - along.min()) / (span if span > 0 else 1.0)


def generate_background(
    height: int, width: int, severity: int, rng: np.random.Generator
) -> NDArray[np.uint8]:
    """A generated ``height × width × 3`` RGB background of the kind ``severity`` (1 to 5) names.

    >>> generate_background(4, 6, 1, np.random.default_rng(0)).shape
    (4, 6, 3)
    """
    if not 1 <= severity <= 5:
        raise InputError(f"background severity must be 1 to 5, got {severity}")
    first, second = _colour(rng), _colour(rng)
    if severity == 1:
        image = np.broadcast_to(first, (height, width, 3)).astype(np.float64)
    elif severity == 2:
        t = _angle_coordinate(height, width, rng)[..., None]
        image = first * (1 - t) + second * t
    elif severity == 3:
        sigma = max(2.0, min(height, width) / 8)
        field = ndimage.gaussian_filter(rng.standard_normal((height, width, 3)), (sigma, sigma, 0))
        field = (field - field.min()) / max(float(np.ptp(field)), 1e-12)
        image = first * (1 - field) + second * field
    elif severity == 4:
        period = rng.uniform(0.08, 0.2)
        t = _angle_coordinate(height, width, rng)
        stripes = ((t / period) % 1.0 < 0.5)[..., None]
        image = np.where(stripes, first, second)
    else:
        noise = rng.uniform(0.0, 255.0, (height, width, 3))
        image = ndimage.gaussian_filter(noise, (0.7, 0.7, 0))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def replace_background(
    rgb: NDArray[np.uint8],
    severity: int,
    *,
    seed: int,
    mask: NDArray[np.bool_] | None = None,
) -> NDArray[np.uint8]:
    """``rgb`` with its background replaced and its foreground pixels kept exactly.

    Parameters
    ----------
    rgb
        An ``H × W × 3`` uint8 RGB image.
    severity
        0 returns ``rgb`` itself, unchanged; 1 to 5 pick the background kind (module docstring).
    seed
        The per-image seed (:func:`asl_eval.stress.corruptions.image_seed`): the background's
        colours and pattern.
    mask
        The foreground (True = hand), when already computed; default
        :func:`~asl_eval.audit.foreground.foreground_mask` of ``rgb``.

    Examples
    --------
    >>> image = np.zeros((40, 40, 3), np.uint8); image[10:30, 10:30] = 200
    >>> hand = np.zeros((40, 40), bool); hand[10:30, 10:30] = True
    >>> out = replace_background(image, 4, seed=1, mask=hand)
    >>> bool((out[hand] == image[hand]).all()), bool((out[~hand] != 0).any())
    (True, True)
    """
    if severity == 0:
        return rgb
    array = np.asarray(rgb)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise InputError(
            f"background replacement takes H×W×3 uint8 RGB images, got {array.dtype} {array.shape}"
        )
    foreground = foreground_mask(array) if mask is None else np.asarray(mask, dtype=bool)
    if foreground.shape != array.shape[:2]:
        raise InputError(f"the foreground mask is {foreground.shape}, the image {array.shape[:2]}")
    rng = np.random.default_rng(seed)
    background = generate_background(array.shape[0], array.shape[1], severity, rng)
    return np.where(foreground[..., None], array, background)
