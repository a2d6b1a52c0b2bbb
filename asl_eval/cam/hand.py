"""How much of a heatmap lies outside the hand: the share of its mass off the foreground
estimate of :func:`asl_eval.audit.foreground.foreground_mask` (colour distance to the image
border, documented there).

For a heatmap ``h`` (values >= 0, the image's size) and the hand mask ``m`` of the image the
model saw, the outside mass is ``sum(h[~m]) / sum(h)``: 0 when the heatmap lies on the hand
only, 1 when it lies on the background only. It is undefined (NaN) when the heatmap is empty
(sums to 0) or no hand is found (the mask is empty, as on an image of one uniform colour).

Imports numpy and the audit's foreground estimate (numpy and scipy); never torch.
"""

from __future__ import annotations

import math

import numpy as np

from asl_eval.errors import CamError

__all__ = ["hand_masks", "outside_mass", "outside_masses"]


def outside_mass(heatmap: np.ndarray, hand: np.ndarray) -> float:
    """The share of ``heatmap``'s mass outside ``hand`` (NaN when either is empty).

    Parameters
    ----------
    heatmap
        H×W non-negative values (a Grad-CAM heatmap at the image's size).
    hand
        H×W bool mask, True on the hand.

    >>> heatmap = np.zeros((4, 4)); heatmap[0, :] = 1.0; heatmap[2, 2] = 2.0
    >>> hand = np.zeros((4, 4), dtype=bool); hand[2:, 2:] = True
    >>> outside_mass(heatmap, hand)
    0.6666666666666666
    """
    values = np.asarray(heatmap, dtype=np.float64)
    mask = np.asarray(hand, dtype=bool)
    if values.shape != mask.shape:
        raise CamError(
            f"a heatmap of shape {values.shape} cannot be compared with a hand mask of shape "
            f"{mask.shape}; both must have the image's size."
        )
    values = np.clip(np.nan_to_num(values, nan=0.0), 0.0, None)
    total = float(values.sum())
    if total <= 0 or not mask.any():
        return math.nan
    return float(values[~mask].sum() / total)


def hand_masks(images: np.ndarray) -> np.ndarray:
    """The hand mask of each ``(n, H, W, 3)`` RGB ``uint8`` image, ``(n, H, W)`` bool."""
    from asl_eval.audit.foreground import foreground_mask

    pictures = np.asarray(images)
    if pictures.ndim != 4 or pictures.shape[-1] != 3:
        raise CamError(f"expected (n, H, W, 3) RGB images; got shape {pictures.shape}.")
    masks = np.zeros(pictures.shape[:3], dtype=bool)
    for i, picture in enumerate(pictures):
        masks[i] = foreground_mask(np.ascontiguousarray(picture, dtype=np.uint8))
    return masks


def outside_masses(heatmaps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """:func:`outside_mass` of each of ``(n, H, W)`` heatmaps against its ``(n, H, W)`` mask."""
    return np.array(
        [outside_mass(heatmap, mask) for heatmap, mask in zip(heatmaps, masks, strict=True)],
        dtype=np.float64,
    )
