"""The sweep's image changes, made by a kept library: decoded RGB uint8 arrays in, the same
shape and type out.

**Library: albumentations 2.0.8** (MIT; the last release before its AGPL successor
albumentationsx, which this project does not use). Checked on this project's stack (numpy 2,
opencv 5, warnings as errors) against the two other candidates the issue names:

- albumentations 2.0.8 runs every change below at every severity, and each transform draws from
  its own generator seeded through ``Compose(seed=...)`` (never numpy's global state), so a
  change is reproducible per image and safe next to other code using ``np.random``. It also has
  the geometric and colour changes and the flip, so one library makes them all; its new
  dependencies are small (albucore, simsimd, stringzilla; opencv-python-headless, pydantic
  and PyYAML are there already).
- ``imagecorruptions-imaug`` 1.1.5 also runs its 19 ImageNet-C corruptions here, but draws
  from numpy's global ``np.random`` (seeding means changing global state), and it requires
  ``opencv-python`` beside grad-cam's ``opencv-python-headless`` (two packages writing one
  ``cv2``) plus numba and scikit-image.
- torchvision's transforms v2 has no fog, defocus or motion blur.

The ImageNet-C kinds use ImageNet-C's own parameters where albumentations has the same
operation (noise σ, defocus radius, zoom factors, glass blur, JPEG quality, pixelation factor,
brightness and contrast factors); :mod:`asl_eval.stress.catalogue` lists every severity in words.
Background replacement is :mod:`asl_eval.stress.background` (no library does it).

Seeds: :func:`image_seed` derives one seed per image and change from the base seed, the image's
index in the sweep's sample and the change's name (not the severity, so an image gets the same
noise pattern, angle or crop position at every severity and severities differ in strength
only). Severity 0 returns the input array itself.

Layer: part of :mod:`asl_eval.stress`; imports numpy, albumentations (which imports torch when
it is installed: this module is never imported by the report) and the stress catalogue.
"""

from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from asl_eval.errors import InputError
from asl_eval.stress.background import replace_background
from asl_eval.stress.catalogue import MAX_SEVERITY, corruption_info

if TYPE_CHECKING:
    import albumentations

__all__ = ["corrupt", "image_seed"]

# albumentations checks PyPI for a newer release when it is imported unless this is set; an
# evaluation tool must not reach the network.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

_LOCK = threading.Lock()

# Per severity 1..5. ImageNet-C's tables where the operation is the same.
_GAUSSIAN_NOISE = (0.08, 0.12, 0.18, 0.26, 0.38)
_IMPULSE_NOISE = (0.03, 0.06, 0.09, 0.17, 0.27)
_DEFOCUS = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))
_MOTION_KERNEL = (7, 11, 15, 19, 23)
_ZOOM = ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03))
_GLASS = ((0.7, 1, 2), (0.9, 2, 1), (1.0, 2, 3), (1.1, 3, 2), (1.5, 4, 2))
_GAUSSIAN_BLUR = (1.0, 2.0, 3.0, 4.0, 6.0)
_FOG = (0.2, 0.35, 0.5, 0.65, 0.8)
_SNOW = (0.1, 0.2, 0.3, 0.4, 0.5)
_BRIGHTNESS = (0.1, 0.2, 0.3, 0.4, 0.5)
_CONTRAST = (0.4, 0.3, 0.2, 0.1, 0.05)
_SATURATE = (1.5, 2.0, 5.0, 10.0, 20.0)
_DESATURATE = (0.7, 0.5, 0.3, 0.1, 0.0)
_HUE = (5, 10, 20, 30, 45)  # OpenCV hue units (2° each) for uint8 images
_JITTER = ((0.1, 0.02), (0.2, 0.04), (0.3, 0.06), (0.4, 0.08), (0.5, 0.1))
_JPEG = (25, 18, 15, 10, 7)
_PIXELATE = (0.6, 0.5, 0.4, 0.3, 0.25)
_ROTATE = (5, 10, 15, 25, 35)
_CROP_AREA = (0.9, 0.8, 0.65, 0.5, 0.35)
_ZOOM_OUT = (0.9, 0.8, 0.7, 0.6, 0.5)


def image_seed(seed: int, index: int, corruption: str) -> int:
    """The seed of one image under one change: a hash of ``(seed, index, crc32(corruption))``
    by numpy's :class:`~numpy.random.SeedSequence`, as an unsigned 32-bit integer.

    The same base seed, image index and change always give the same seed, in any process
    (CRC-32 of the name, not Python's salted ``hash``).

    >>> image_seed(0, 3, "rotate") == image_seed(0, 3, "rotate") != image_seed(1, 3, "rotate")
    True
    """
    if seed < 0 or index < 0:
        raise InputError(f"seeds and image indexes must be 0 or more, got {seed} and {index}")
    key = zlib.crc32(corruption.encode("utf-8"))
    return int(np.random.SeedSequence([seed, index, key]).generate_state(1)[0])


def _signed(make: Callable[[float], Any], value: float) -> Any:
    """Either sign of ``value``, chosen at random (with the transform's seed)."""
    import albumentations as A

    return A.OneOf([make(value), make(-value)], p=1.0)


def _transform(name: str, level: int, height: int, width: int) -> albumentations.BasicTransform:
    """The albumentations transform of ``name`` at severity ``level`` (1..5), always applied."""
    import albumentations as A
    import cv2

    i = level - 1
    if name == "gaussian_noise":
        return A.GaussNoise(std_range=(_GAUSSIAN_NOISE[i],) * 2, mean_range=(0.0, 0.0), p=1.0)
    if name == "impulse_noise":
        return A.SaltAndPepper(amount=(_IMPULSE_NOISE[i],) * 2, salt_vs_pepper=(0.5, 0.5), p=1.0)
    if name == "defocus_blur":
        radius, alias = _DEFOCUS[i]
        return A.Defocus(radius=(radius, radius), alias_blur=(alias, alias), p=1.0)
    if name == "motion_blur":
        return A.MotionBlur(blur_limit=(_MOTION_KERNEL[i],) * 2, p=1.0)
    if name == "zoom_blur":
        factor, step = _ZOOM[i]
        return A.ZoomBlur(max_factor=(factor, factor), step_factor=(step, step), p=1.0)
    if name == "glass_blur":
        sigma, delta, iterations = _GLASS[i]
        return A.GlassBlur(sigma=sigma, max_delta=delta, iterations=iterations, p=1.0)
    if name == "gaussian_blur":
        return A.GaussianBlur(sigma_limit=(_GAUSSIAN_BLUR[i],) * 2, blur_limit=0, p=1.0)
    if name == "fog":
        return A.RandomFog(fog_coef_range=(_FOG[i],) * 2, alpha_coef=0.08, p=1.0)
    if name == "snow":
        return A.RandomSnow(
            snow_point_range=(_SNOW[i],) * 2, brightness_coeff=2.5, method="texture", p=1.0
        )
    if name in ("brightness", "darkness"):
        shift = 255.0 * _BRIGHTNESS[i] * (1 if name == "brightness" else -1)
        return A.HueSaturationValue(
            hue_shift_limit=(0, 0), sat_shift_limit=(0, 0), val_shift_limit=(shift, shift), p=1.0
        )
    if name in ("contrast", "saturate", "desaturate"):
        contrast = _CONTRAST[i] if name == "contrast" else 1.0
        saturation = {"saturate": _SATURATE, "desaturate": _DESATURATE}.get(name, (1.0,) * 5)[i]
        return A.ColorJitter(
            brightness=(1.0, 1.0),
            contrast=(contrast, contrast),
            saturation=(saturation, saturation),
            hue=(0.0, 0.0),
            p=1.0,
        )
    if name == "hue_shift":
        return _signed(
            lambda h: A.HueSaturationValue(
                hue_shift_limit=(h, h), sat_shift_limit=(0, 0), val_shift_limit=(0, 0), p=1.0
            ),
            _HUE[i],
        )
    if name == "color_jitter":
        amount, hue = _JITTER[i]
        return A.ColorJitter(
            brightness=(1 - amount, 1 + amount),
            contrast=(1 - amount, 1 + amount),
            saturation=(1 - amount, 1 + amount),
            hue=(-hue, hue),
            p=1.0,
        )
    if name == "jpeg_compression":
        return A.ImageCompression(compression_type="jpeg", quality_range=(_JPEG[i],) * 2, p=1.0)
    if name == "pixelate":
        return A.Downscale(
            scale_range=(_PIXELATE[i],) * 2,
            interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_NEAREST},
            p=1.0,
        )
    if name == "rotate":
        return _signed(
            lambda a: A.Rotate(limit=(a, a), border_mode=cv2.BORDER_REFLECT_101, p=1.0),
            _ROTATE[i],
        )
    if name == "scale_crop":
        ratio = width / height
        return A.RandomResizedCrop(
            size=(height, width), scale=(_CROP_AREA[i],) * 2, ratio=(ratio, ratio), p=1.0
        )
    if name == "zoom_out":
        return A.Affine(scale=(_ZOOM_OUT[i],) * 2, border_mode=cv2.BORDER_REPLICATE, p=1.0)
    if name == "horizontal_flip":
        return A.HorizontalFlip(p=1.0)
    raise InputError(f"corruption {name!r} is not made with albumentations")


@lru_cache(maxsize=256)
def _pipeline(name: str, level: int, height: int, width: int) -> albumentations.Compose:
    import albumentations as A

    return A.Compose([_transform(name, level, height, width)], seed=0)


def corrupt(
    image: NDArray[np.uint8],
    corruption: str,
    severity: int,
    *,
    seed: int = 0,
    mask: NDArray[np.bool_] | None = None,
) -> NDArray[np.uint8]:
    """``image`` changed by ``corruption`` at ``severity``.

    Parameters
    ----------
    image
        A decoded ``H × W × 3`` uint8 RGB array (after decoding, before fastai's resizing).
    corruption
        A name from :data:`asl_eval.stress.catalogue.CATALOGUE`.
    severity
        0 (the input itself, unchanged) to 5.
    seed
        This image's seed for this change (:func:`image_seed`); ignored by changes that draw
        no random numbers.
    mask
        ``background`` only: the foreground mask, when already computed.

    Returns
    -------
    ndarray
        Same shape, uint8 RGB.

    Examples
    --------
    >>> image = np.full((32, 32, 3), 100, np.uint8)
    >>> corrupt(image, "brightness", 0) is image
    True
    >>> int(corrupt(image, "brightness", 2)[0, 0, 0])
    151
    """
    corruption_info(corruption)
    if isinstance(severity, bool) or not isinstance(severity, int | np.integer):
        raise InputError(f"severity must be a whole number, got {severity!r}")
    if not 0 <= severity <= MAX_SEVERITY:
        raise InputError(f"severity must be 0 to {MAX_SEVERITY}, got {severity}")
    if severity == 0:
        return image
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise InputError(
            f"corruptions take H×W×3 uint8 RGB arrays, got {array.dtype} {array.shape}"
        )
    if corruption == "background":
        return replace_background(array, int(severity), seed=seed, mask=mask)
    height, width = int(array.shape[0]), int(array.shape[1])
    pipeline = _pipeline(corruption, int(severity), height, width)
    with _LOCK:  # one cached pipeline: reseeding and applying it must not interleave
        pipeline.set_random_seed(seed)
        result = pipeline(image=np.ascontiguousarray(array))["image"]
    out = np.asarray(result, dtype=np.uint8)
    if out.shape != array.shape:
        raise InputError(f"{corruption} changed the image's shape {array.shape} to {out.shape}")
    return out
