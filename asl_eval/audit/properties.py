"""Per-image properties that may explain why a model fails on some images: brightness,
contrast, sharpness, colourfulness, background share, and the file's own size and shape.

Each image is decoded as evaluation decodes it (:func:`asl_eval.inputs.load_rgb`, 8-bit RGB),
its original width and height noted, and then shrunk so that its longer side is at most
``max_side`` pixels (default :data:`DEFAULT_MAX_SIDE`, Pillow's bilinear filter with
antialiasing; smaller images are kept as they are). All pixel properties are measured on that
copy: it makes them fast, and makes sharpness comparable between a 200×200 and a 400×400 set.

The properties (:func:`image_properties`), with luma ``Y = 0.299 R + 0.587 G + 0.114 B`` on
0–255 (ITU-R BT.601, the weights of Pillow's ``convert("L")``):

- ``brightness``: the mean of ``Y``;
- ``contrast``: the standard deviation of ``Y`` (RMS contrast, population, ``ddof=0``);
- ``sharpness``: the variance of the Laplacian of ``Y`` (:func:`scipy.ndimage.laplace`, the
  5-point kernel, reflected edges); blur lowers it;
- ``colourfulness``: Hasler and Süsstrunk's (2003) metric ``σ + 0.3 μ``, where ``rg = R − G``,
  ``yb = (R + G) / 2 − B``, ``σ = √(σ_rg² + σ_yb²)`` and ``μ = √(μ_rg² + μ_yb²)``; 0 for a grey
  image;
- ``background_share``: the share of pixels outside the foreground estimate
  (:func:`asl_eval.audit.foreground.background_share`), on a further copy at most
  :data:`FOREGROUND_MAX_SIDE` (128) pixels a side, as the estimate is coarse anyway and costs
  most of the time;
- ``width``, ``height``: the file's pixel size, before any resizing;
- ``aspect_ratio``: ``width / height``.

:func:`property_table` measures many files in a thread pool (decoding releases the GIL); at most
a few images are held in memory at a time, and a file that cannot be decoded gets a row with
status ``"excluded"`` and its ledger reason, never a silent drop.

Imports numpy, scipy, pandas, Pillow, :mod:`asl_eval.inputs` and :mod:`asl_eval.progress`;
never torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from PIL import Image
from scipy import ndimage

from asl_eval.audit.foreground import background_share
from asl_eval.errors import InputError, UnreadableImage
from asl_eval.inputs import load_rgb
from asl_eval.progress import Progress, notify

__all__ = [
    "DEFAULT_MAX_SIDE",
    "FOREGROUND_MAX_SIDE",
    "LUMA_WEIGHTS",
    "PIXEL_PROPERTIES",
    "PROPERTIES",
    "PROPERTY_LABELS",
    "brightness",
    "colourfulness",
    "contrast",
    "downscale",
    "image_properties",
    "luma",
    "measure_file",
    "property_table",
    "sharpness",
]

DEFAULT_MAX_SIDE = 256
"""Longest side, in pixels, of the copy the pixel properties are measured on."""

FOREGROUND_MAX_SIDE = 128
"""Longest side, in pixels, of the copy the background share is estimated on."""

LUMA_WEIGHTS = (0.299, 0.587, 0.114)
"""ITU-R BT.601 luma weights of R, G and B."""

PIXEL_PROPERTIES = ("brightness", "contrast", "sharpness", "colourfulness", "background_share")
"""Properties measured on the pixels (of the downscaled copy)."""

PROPERTIES = (*PIXEL_PROPERTIES, "width", "height", "aspect_ratio")
"""Every property, in the order tables list them."""

PROPERTY_LABELS = {
    "brightness": "brightness (mean luma, 0–255)",
    "contrast": "contrast (luma SD)",
    "sharpness": "sharpness (Laplacian variance)",
    "colourfulness": "colourfulness (Hasler–Süsstrunk)",
    "background_share": "background share",
    "width": "width (px)",
    "height": "height (px)",
    "aspect_ratio": "aspect ratio (w/h)",
}
"""A short human label of each property, with its unit."""

_PROGRESS_EVERY = 64


def _as_float(rgb: NDArray[np.uint8]) -> NDArray[np.float64]:
    array = np.asarray(rgb)
    if array.ndim != 3 or array.shape[2] != 3 or array.size == 0:
        raise InputError(f"expected an H×W×3 RGB image, got an array of shape {array.shape}.")
    return array.astype(np.float64)


def luma(rgb: NDArray[np.uint8]) -> NDArray[np.float64]:
    """BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` of an RGB image, 0–255, H×W float64.

    >>> luma(np.array([[[255, 0, 0], [255, 255, 255]]], dtype=np.uint8)).round(3).tolist()
    [[76.245, 255.0]]
    """
    pixels = _as_float(rgb)
    result: NDArray[np.float64] = pixels @ np.array(LUMA_WEIGHTS)
    return result


def brightness(rgb: NDArray[np.uint8]) -> float:
    """Mean luma, 0 (black) to 255 (white).

    >>> brightness(np.full((2, 2, 3), 100, dtype=np.uint8))
    100.0
    """
    return float(luma(rgb).mean())


def contrast(rgb: NDArray[np.uint8]) -> float:
    """Standard deviation of luma (population), 0 for a flat image.

    >>> contrast(np.array([[[0, 0, 0], [200, 200, 200]]], dtype=np.uint8))
    100.0
    """
    return float(luma(rgb).std())


def sharpness(rgb: NDArray[np.uint8]) -> float:
    """Variance of the Laplacian of luma (:func:`scipy.ndimage.laplace`, reflected edges).

    >>> sharpness(np.full((4, 4, 3), 7, dtype=np.uint8))
    0.0
    """
    return float(ndimage.laplace(luma(rgb)).var())


def colourfulness(rgb: NDArray[np.uint8]) -> float:
    """Hasler and Süsstrunk's colourfulness ``σ_rgyb + 0.3 μ_rgyb`` (0 for a grey image).

    >>> colourfulness(np.full((3, 3, 3), 90, dtype=np.uint8))
    0.0
    >>> round(colourfulness(np.full((1, 1, 3), (255, 0, 0), dtype=np.uint8)), 3)
    85.5
    """
    pixels = _as_float(rgb)
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    rg = red - green
    yb = (red + green) / 2 - blue
    spread = np.hypot(rg.std(), yb.std())
    mean = np.hypot(rg.mean(), yb.mean())
    return float(spread + 0.3 * mean)


def downscale(image: Image.Image, *, max_side: int = DEFAULT_MAX_SIDE) -> NDArray[np.uint8]:
    """An RGB image as an array whose longer side is at most ``max_side`` (aspect kept).

    >>> downscale(Image.new("RGB", (400, 100)), max_side=200).shape
    (50, 200, 3)
    """
    if max_side < 1:
        raise InputError(f"max_side must be a positive number of pixels; got {max_side}.")
    width, height = image.size
    scale = max_side / max(width, height)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = image.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _shrink(rgb: NDArray[np.uint8], max_side: int) -> NDArray[np.uint8]:
    if max(rgb.shape[:2]) <= max_side:
        return rgb
    return downscale(Image.fromarray(np.ascontiguousarray(rgb)), max_side=max_side)


def image_properties(rgb: NDArray[np.uint8], *, original_size: tuple[int, int]) -> dict[str, float]:
    """Every property of one image (see the module's docstring), as a dict keyed by
    :data:`PROPERTIES`.

    Parameters
    ----------
    rgb
        H×W×3 uint8 RGB pixels to measure (usually :func:`downscale`'s copy).
    original_size
        ``(width, height)`` of the file, before any resizing.

    Examples
    --------
    >>> values = image_properties(np.full((8, 8, 3), 128, dtype=np.uint8), original_size=(16, 8))
    >>> values["brightness"], values["contrast"], values["aspect_ratio"]
    (128.0, 0.0, 2.0)
    """
    width, height = (int(v) for v in original_size)
    if width <= 0 or height <= 0:
        raise InputError(f"original_size must be a positive (width, height); got {original_size}.")
    gray = luma(rgb)
    return {
        "brightness": float(gray.mean()),
        "contrast": float(gray.std()),
        "sharpness": float(ndimage.laplace(gray).var()),
        "colourfulness": colourfulness(rgb),
        "background_share": background_share(_shrink(rgb, FOREGROUND_MAX_SIDE)),
        "width": float(width),
        "height": float(height),
        "aspect_ratio": width / height,
    }


def measure_file(path: str | Path, *, max_side: int = DEFAULT_MAX_SIDE) -> dict[str, float]:
    """Decode one file (:func:`asl_eval.inputs.load_rgb`) and measure it.

    Raises
    ------
    UnreadableImage
        When the file cannot be decoded (its ``reason`` is the ledger wording).
    """
    image = load_rgb(path)
    return image_properties(downscale(image, max_side=max_side), original_size=image.size)


def _bounded_map(
    function: Callable[[str], dict[str, object]], paths: Sequence[str], workers: int
) -> Iterator[dict[str, object]]:
    """``map(function, paths)`` in a thread pool, in order, with at most ``2 × workers``
    files in flight, so memory does not grow with the number of paths."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: list[Future[dict[str, object]]] = []
        for path in paths:
            pending.append(pool.submit(function, path))
            if len(pending) >= 2 * workers:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()


def property_table(
    paths: Sequence[str | Path],
    *,
    name: str = "set",
    max_side: int = DEFAULT_MAX_SIDE,
    workers: int | None = None,
    progress: Progress = None,
) -> pd.DataFrame:
    """Measure every file: one row per path, in order.

    Parameters
    ----------
    paths
        The image files.
    name
        The set's name, for progress events (``"measure"`` events named ``name``).
    max_side
        Longest side of the copy the pixel properties are measured on.
    workers
        Decoding threads (default: the number of CPUs, at most 8).
    progress
        Progress callback.

    Returns
    -------
    pandas.DataFrame
        Columns ``path``, ``status`` (``"measured"`` or ``"excluded"``), ``reason`` (the ledger
        reason of an excluded file, ``""`` otherwise) and one float column per property in
        :data:`PROPERTIES` (NaN for excluded files).
    """
    if workers is not None and workers < 1:
        raise InputError(f"workers must be at least 1; got {workers}.")
    if max_side < 1:
        raise InputError(f"max_side must be a positive number of pixels; got {max_side}.")
    texts = [str(p) for p in paths]
    n_workers = workers or min(8, os.cpu_count() or 1)

    def measure(path: str) -> dict[str, object]:
        try:
            values: dict[str, object] = dict(measure_file(path, max_side=max_side))
        except UnreadableImage as error:
            return {"path": path, "status": "excluded", "reason": error.reason}
        return {"path": path, "status": "measured", "reason": "", **values}

    rows: list[dict[str, object]] = []
    total = len(texts)
    for done, row in enumerate(_bounded_map(measure, texts, n_workers), start=1):
        rows.append(row)
        if done % _PROGRESS_EVERY == 0 or done == total:
            notify(progress, "measure", name, done, total)
    frame = pd.DataFrame(rows, columns=["path", "status", "reason", *PROPERTIES])
    frame[list(PROPERTIES)] = frame[list(PROPERTIES)].astype(np.float64)
    return frame
