"""A foreground (hand) estimate from the colour distance to the image border.

The ASL photos show a hand in front of a background that also fills the image border. So the
border is a sample of the background: every pixel whose colour is far from every background
colour seen on the border is foreground. The rule, step by step (:func:`foreground_mask`):

1. **Border strip.** The pixels within ``border`` (a share of the shorter side, at least one
   pixel) of any edge.
2. **Background colours.** The border pixels (all of them up to 16,384, else that many taken
   evenly; k-means is sensitive to the sample) are grouped into at most ``clusters`` colours by
   k-means (:func:`scipy.cluster.vq.kmeans`, started from border pixels at evenly spaced
   brightness quantiles, so the result is deterministic). A colour that covers less than
   ``min_border_share`` of the border is dropped: it is taken for a hand or arm that touches the
   edge, not for background. Besides the clusters, a plane ``colour = a + b·x + c·y`` fitted to
   the border colours by least squares (per channel) models a smooth lighting gradient across
   the image.
3. **Distance.** Each pixel's Euclidean distance in RGB (0–255 per channel) to the nearest
   background colour: the nearest kept cluster centre or the plane's colour at that pixel.
4. **Threshold.** Otsu's threshold of the distances (the cut that maximises the between-class
   variance of a 256-bin histogram), but never below ``min_distance`` (default 30, about 12% of
   one channel's range), so an image with no foreground (all distances small) is not split in
   two by its noise.
5. **Clean-up** (:mod:`scipy.ndimage`): a binary opening with a square of side
   ``2·round(min(H, W) / 100) + 1`` (at least 3×3) removes isolated noise pixels, holes are filled,
   and only connected components of at least ``min_component`` times the largest one's area are
   kept (one hand, perhaps with a face or the other hand).

Limits: a hand whose colour is close to the background (skin in front of a beige wall) is
missed in part; a background with an object that covers much of the border (a door frame, a
second person) is taken for background only where it reaches the border; shadows cast by the
hand onto the background can be counted as foreground; a hand that covers most of the border is
taken for the background. On an image of one uniform colour every distance is 0, so the mask is
empty and :func:`background_share` is 1.0.

Layer: part of :mod:`asl_eval.audit`; imports numpy and scipy only (no torch, no Pillow), so the
robustness sweep, the report's figures and the findings reuse it cheaply.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.cluster.vq import kmeans, vq

from asl_eval.errors import InputError

__all__ = [
    "DEFAULT_BORDER",
    "DEFAULT_CLUSTERS",
    "DEFAULT_MIN_BORDER_SHARE",
    "DEFAULT_MIN_COMPONENT",
    "DEFAULT_MIN_DISTANCE",
    "background_distance",
    "background_share",
    "foreground_mask",
    "otsu_threshold",
]

DEFAULT_BORDER = 0.05
"""Width of the border strip, as a share of the image's shorter side."""

DEFAULT_CLUSTERS = 4
"""Most background colours taken from the border (k of k-means)."""

DEFAULT_MIN_BORDER_SHARE = 0.1
"""A border colour cluster below this share of the border pixels is not background."""

DEFAULT_MIN_DISTANCE = 30.0
"""Lowest RGB distance threshold (Euclidean, 0–255 per channel)."""

DEFAULT_MIN_COMPONENT = 0.2
"""Foreground components smaller than this share of the largest one are dropped."""

_MAX_BORDER_SAMPLES = 16384


def _check_rgb(rgb: object) -> NDArray[np.uint8]:
    array = np.asarray(rgb)
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(
            f"expected an H×W×3 RGB image, got an array of shape {array.shape}. "
            "Convert greyscale or RGBA images with asl_eval.inputs.load_rgb first."
        )
    if array.dtype != np.uint8:
        raise InputError(
            f"expected 8-bit RGB (dtype uint8, 0–255), got dtype {array.dtype}. "
            "Scale and convert it with np.clip(x, 0, 255).astype(np.uint8)."
        )
    return array


def _border_width(height: int, width: int, border: float) -> int:
    return max(1, round(border * min(height, width)))


def _border_pixels(rgb: NDArray[np.uint8], width_px: int) -> tuple[NDArray[np.float64], ...]:
    """The border strip's colours and their (row, column) coordinates."""
    height, width = rgb.shape[:2]
    strip = np.zeros((height, width), dtype=bool)
    strip[:width_px] = strip[height - width_px :] = True
    strip[:, :width_px] = strip[:, width - width_px :] = True
    rows, cols = np.nonzero(strip)
    colours = rgb[rows, cols].astype(np.float64)
    return colours, rows.astype(np.float64), cols.astype(np.float64)


def _cluster_centres(
    colours: NDArray[np.float64], clusters: int, min_border_share: float
) -> NDArray[np.float64]:
    """Border colour clusters covering at least ``min_border_share`` of the border."""
    step = max(1, len(colours) // _MAX_BORDER_SAMPLES)
    sample = colours[::step]
    # Deterministic start: border pixels at evenly spaced brightness quantiles.
    order = np.argsort(sample.sum(axis=1), kind="stable")
    picks = order[((np.arange(clusters) + 0.5) / clusters * len(sample)).astype(int)]
    guess = np.unique(sample[picks], axis=0)
    if len(guess) > 1:
        guess, _ = kmeans(sample, guess, check_finite=False)
    codes, _ = vq(colours, guess, check_finite=False)
    shares = np.bincount(codes, minlength=len(guess)) / len(colours)
    kept = guess[shares >= min_border_share]
    # At least the largest cluster is background: the border is mostly background.
    return kept if len(kept) else guess[[int(np.argmax(shares))]]


def _plane(
    colours: NDArray[np.float64],
    rows: NDArray[np.float64],
    cols: NDArray[np.float64],
    height: int,
    width: int,
) -> NDArray[np.float32]:
    """The least-squares plane ``a + b·col + c·row`` per channel, evaluated on the whole grid."""
    design = np.column_stack([np.ones_like(rows), cols, rows])
    coefficients, *_ = np.linalg.lstsq(design, colours, rcond=None)
    a, b, c = coefficients.astype(np.float32)
    grid_cols = np.arange(width, dtype=np.float32)[None, :, None]
    grid_rows = np.arange(height, dtype=np.float32)[:, None, None]
    plane: NDArray[np.float32] = a + grid_cols * b + grid_rows * c
    return plane


def _squared_distance(
    pixels: NDArray[np.float32], colour: NDArray[np.floating]
) -> NDArray[np.float32]:
    difference = pixels - colour.astype(np.float32)
    result: NDArray[np.float32] = np.einsum("ijk,ijk->ij", difference, difference)
    return result


def background_distance(
    rgb: NDArray[np.uint8],
    *,
    border: float = DEFAULT_BORDER,
    clusters: int = DEFAULT_CLUSTERS,
    min_border_share: float = DEFAULT_MIN_BORDER_SHARE,
) -> NDArray[np.float64]:
    """Each pixel's RGB distance to the nearest background colour (steps 1–3 of the rule).

    Parameters
    ----------
    rgb
        H×W×3 uint8 RGB image.
    border, clusters, min_border_share
        See :func:`foreground_mask`.

    Returns
    -------
    numpy.ndarray
        H×W float64 distances, 0 to about 441.7 (the RGB cube's diagonal); computed in
        float32.

    Examples
    --------
    >>> image = np.full((20, 20, 3), 50, dtype=np.uint8)
    >>> image[8:12, 8:12] = (250, 50, 50)
    >>> distance = background_distance(image)
    >>> float(distance[0, 0]), float(distance[10, 10])
    (0.0, 200.0)
    """
    array = _check_rgb(rgb)
    if not 0 < border <= 0.5 or clusters < 1 or not 0 <= min_border_share <= 1:
        raise InputError(
            f"expected 0 < border <= 0.5, clusters >= 1 and 0 <= min_border_share <= 1, got "
            f"border={border}, clusters={clusters}, min_border_share={min_border_share}."
        )
    height, width = array.shape[:2]
    colours, rows, cols = _border_pixels(array, _border_width(height, width, border))
    centres = _cluster_centres(colours, clusters, min_border_share)
    pixels = array.astype(np.float32)
    squared = _squared_distance(pixels, _plane(colours, rows, cols, height, width))
    for centre in centres:
        np.minimum(squared, _squared_distance(pixels, centre), out=squared)
    return np.sqrt(squared, dtype=np.float64)


def otsu_threshold(values: NDArray[np.floating] | NDArray[np.integer], *, bins: int = 256) -> float:
    """Otsu's threshold of ``values``: the bin edge that maximises the between-class variance.

    Hand-written (a dozen lines) because scikit-image, which has ``threshold_otsu``, is a large
    dependency used for nothing else here. Values ``<=`` the threshold form the lower class.
    Returns the smallest value when all values are equal.

    >>> threshold = otsu_threshold(np.array([1.0, 1.0, 2.0, 9.0, 10.0, 10.0]))
    >>> 2.0 <= threshold < 9.0
    True
    """
    data = np.asarray(values, dtype=np.float64).ravel()
    low, high = float(data.min()), float(data.max())
    if high <= low:
        return low
    counts, edges = np.histogram(data, bins=bins, range=(low, high))
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(counts)[:-1]
    weight_high = len(data) - weight_low
    sum_low = np.cumsum(counts * centres)[:-1]
    mean_low = sum_low / np.maximum(weight_low, 1)
    mean_high = (float(np.dot(counts, centres)) - sum_low) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(edges[1:-1][int(np.argmax(between))])


def _clean(mask: NDArray[np.bool_], min_component: float) -> NDArray[np.bool_]:
    height, width = mask.shape
    radius = max(1, round(min(height, width) / 100))
    square = np.ones((2 * radius + 1, 2 * radius + 1), dtype=bool)
    opened = ndimage.binary_opening(mask, structure=square)
    filled = ndimage.binary_fill_holes(opened)
    labels, count = ndimage.label(filled)
    if count == 0:
        return np.zeros_like(mask)
    areas = np.bincount(labels.ravel())[1:]
    keep = np.flatnonzero(areas >= min_component * areas.max()) + 1
    result: NDArray[np.bool_] = np.isin(labels, keep)
    return result


def foreground_mask(
    rgb: NDArray[np.uint8],
    *,
    border: float = DEFAULT_BORDER,
    clusters: int = DEFAULT_CLUSTERS,
    min_border_share: float = DEFAULT_MIN_BORDER_SHARE,
    min_distance: float = DEFAULT_MIN_DISTANCE,
    min_component: float = DEFAULT_MIN_COMPONENT,
) -> NDArray[np.bool_]:
    """The estimated foreground (hand) of an RGB image: True where a pixel is foreground.

    The rule is in the module's docstring; call it on a downscaled copy (a few hundred pixels a
    side) when speed matters: it costs a few array passes over the image.

    Parameters
    ----------
    rgb
        H×W×3 uint8 RGB image (as :func:`asl_eval.inputs.load_rgb` returns).
    border
        Width of the border strip, as a share of the shorter side (at least one pixel).
    clusters
        Most background colours taken from the border.
    min_border_share
        A border colour below this share of the border is not background (a hand at the edge).
    min_distance
        Lowest distance threshold, in RGB units.
    min_component
        Components smaller than this share of the largest one are dropped.

    Returns
    -------
    numpy.ndarray
        H×W bool mask. Empty (all False) for an image of one uniform colour.

    Raises
    ------
    InputError
        If ``rgb`` is not an H×W×3 uint8 array or an option is out of range.

    Examples
    --------
    >>> image = np.full((40, 40, 3), (40, 60, 200), dtype=np.uint8)
    >>> image[10:30, 12:28] = (225, 172, 140)
    >>> mask = foreground_mask(image)
    >>> int(mask.sum()), bool(mask[20, 20]), bool(mask[0, 0])
    (320, True, False)
    """
    distance = background_distance(
        rgb, border=border, clusters=clusters, min_border_share=min_border_share
    )
    threshold = max(otsu_threshold(distance), float(min_distance))
    return _clean(distance > threshold, min_component)


def background_share(
    rgb: NDArray[np.uint8],
    *,
    border: float = DEFAULT_BORDER,
    clusters: int = DEFAULT_CLUSTERS,
    min_border_share: float = DEFAULT_MIN_BORDER_SHARE,
    min_distance: float = DEFAULT_MIN_DISTANCE,
    min_component: float = DEFAULT_MIN_COMPONENT,
) -> float:
    """The share of pixels that are not foreground (see :func:`foreground_mask`), 0 to 1.

    The options are :func:`foreground_mask`'s. An image of one uniform colour gives 1.0.

    >>> image = np.full((40, 40, 3), (40, 60, 200), dtype=np.uint8)
    >>> image[10:30, 12:28] = (225, 172, 140)
    >>> background_share(image)
    0.8
    """
    mask = foreground_mask(
        rgb,
        border=border,
        clusters=clusters,
        min_border_share=min_border_share,
        min_distance=min_distance,
        min_component=min_component,
    )
    return float(1.0 - mask.mean())
