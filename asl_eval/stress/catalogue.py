"""What each image change of the robustness sweep is, in words: its name, family, whether it
keeps the sign's meaning, whether it draws random numbers, and what each severity does.

This is the data the report, the findings and ``--help`` read; the changes themselves are made
by :mod:`asl_eval.stress.corruptions` (albumentations) and :mod:`asl_eval.stress.background`.
Severity ``0`` is the identity for every change; ``1`` to ``5`` grow in strength. The parameters
of the ImageNet-C kinds are ImageNet-C's own (Hendrycks & Dietterich, 2019, at 224 pixels),
applied at the image's own resolution (200 pixels for the ASL photos).

Layer: part of :mod:`asl_eval.stress`; standard library only (torch-free: the report imports it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from asl_eval.errors import InputError

__all__ = [
    "CATALOGUE",
    "CLEAN",
    "DEFAULT_CORRUPTIONS",
    "DEFAULT_SEVERITIES",
    "FULL_SEVERITIES",
    "MAX_SEVERITY",
    "CorruptionInfo",
    "Family",
    "check_corruptions",
    "check_severities",
    "corruption_info",
]

Family = Literal["noise", "blur", "weather", "digital", "lighting", "colour", "geometry", "scene"]

MAX_SEVERITY = 5
"""Severities run from 1 (mild) to 5 (strong); 0 is the unchanged image."""

FULL_SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
"""Every severity."""

CLEAN = "clean"
"""The name of the unchanged images' condition in the sweep's tables (severity 0)."""


@dataclass(frozen=True)
class CorruptionInfo:
    """One image change of the sweep.

    Attributes
    ----------
    name
        Its key (``"motion_blur"``), as ``--corruptions`` takes it.
    family
        What kind of change: noise, blur, weather, digital (compression, pixels), lighting,
        colour, geometry or scene (the background).
    label_preserving
        False when the change can turn one sign into another (a mirrored hand signs with the
        other hand): such a change is offered and tabled but never enters a summary score.
    random
        Whether it draws random numbers (from the per-image seed,
        :func:`asl_eval.stress.corruptions.image_seed`); False: the same image always gives the
        same result, whatever the seed.
    description
        One line: what it does and where its parameters come from.
    levels
        What severities 1 to 5 do, in words.
    """

    name: str
    family: Family
    label_preserving: bool
    random: bool
    description: str
    levels: tuple[str, str, str, str, str]


_ENTRIES = (
    CorruptionInfo(
        "gaussian_noise",
        "noise",
        True,
        True,
        "Gaussian noise added to every channel (ImageNet-C).",
        ("σ 0.08", "σ 0.12", "σ 0.18", "σ 0.26", "σ 0.38"),
    ),
    CorruptionInfo(
        "impulse_noise",
        "noise",
        True,
        True,
        "Salt-and-pepper noise, half white, half black (ImageNet-C).",
        ("3% of pixels", "6%", "9%", "17%", "27%"),
    ),
    CorruptionInfo(
        "defocus_blur",
        "blur",
        True,
        False,
        "Disc blur of a lens out of focus (ImageNet-C).",
        ("radius 3 px", "radius 4 px", "radius 6 px", "radius 8 px", "radius 10 px"),
    ),
    CorruptionInfo(
        "motion_blur",
        "blur",
        True,
        True,
        "Blur along a line at a random angle, as when the hand moves (kernel sizes chosen to "
        "match ImageNet-C's motion blur lengths).",
        ("7 px", "11 px", "15 px", "19 px", "23 px"),
    ),
    CorruptionInfo(
        "zoom_blur",
        "blur",
        True,
        False,
        "Blur of a camera zooming during the exposure (ImageNet-C).",
        ("up to 1.11×", "1.16×", "1.21×", "1.26×", "1.31×"),
    ),
    CorruptionInfo(
        "glass_blur",
        "blur",
        True,
        True,
        "Frosted-glass blur: Gaussian blur and local pixel shuffling (ImageNet-C).",
        (
            "σ 0.7, 1 px, 2×",
            "σ 0.9, 2 px, 1×",
            "σ 1, 2 px, 3×",
            "σ 1.1, 3 px, 2×",
            "σ 1.5, 4 px, 2×",
        ),
    ),
    CorruptionInfo(
        "gaussian_blur",
        "blur",
        True,
        False,
        "Gaussian blur (ImageNet-C's extra corruption).",
        ("σ 1 px", "σ 2 px", "σ 3 px", "σ 4 px", "σ 6 px"),
    ),
    CorruptionInfo(
        "fog",
        "weather",
        True,
        True,
        "Fog patches over the image (albumentations' RandomFog).",
        ("fog 0.2", "fog 0.35", "fog 0.5", "fog 0.65", "fog 0.8"),
    ),
    CorruptionInfo(
        "snow",
        "weather",
        True,
        True,
        "Snow: bright flecks over the lighter parts (albumentations' RandomSnow).",
        ("10% of points", "20%", "30%", "40%", "50%"),
    ),
    CorruptionInfo(
        "brightness",
        "lighting",
        True,
        False,
        "Brighter: the HSV value channel raised (ImageNet-C).",
        ("+0.1", "+0.2", "+0.3", "+0.4", "+0.5"),
    ),
    CorruptionInfo(
        "darkness",
        "lighting",
        True,
        False,
        "Darker: the HSV value channel lowered (ImageNet-C's brightness, the other way).",
        ("−0.1", "−0.2", "−0.3", "−0.4", "−0.5"),
    ),
    CorruptionInfo(
        "contrast",
        "lighting",
        True,
        False,
        "Lower contrast: each pixel pulled towards the mean grey (ImageNet-C).",
        ("×0.4", "×0.3", "×0.2", "×0.1", "×0.05"),
    ),
    CorruptionInfo(
        "saturate",
        "colour",
        True,
        False,
        "Stronger colours: saturation multiplied (ImageNet-C's saturate, upward only).",
        ("×1.5", "×2", "×5", "×10", "×20"),
    ),
    CorruptionInfo(
        "desaturate",
        "colour",
        True,
        False,
        "Weaker colours, towards grey (ImageNet-C's saturate, downward only).",
        ("×0.7", "×0.5", "×0.3", "×0.1", "×0 (grey)"),
    ),
    CorruptionInfo(
        "hue_shift",
        "colour",
        True,
        True,
        "Every hue turned by a fixed angle, up or down at random (skin looks another colour).",
        ("±10°", "±20°", "±40°", "±60°", "±90°"),
    ),
    CorruptionInfo(
        "color_jitter",
        "colour",
        True,
        True,
        "Random brightness, contrast, saturation and hue together (torchvision's ColorJitter).",
        ("±10%, hue ±0.02", "±20%, ±0.04", "±30%, ±0.06", "±40%, ±0.08", "±50%, ±0.1"),
    ),
    CorruptionInfo(
        "jpeg_compression",
        "digital",
        True,
        False,
        "JPEG compression artefacts (ImageNet-C).",
        ("quality 25", "quality 18", "quality 15", "quality 10", "quality 7"),
    ),
    CorruptionInfo(
        "pixelate",
        "digital",
        True,
        False,
        "Shrunk (area average) and blown up again (nearest pixel) (ImageNet-C).",
        ("×0.6", "×0.5", "×0.4", "×0.3", "×0.25"),
    ),
    CorruptionInfo(
        "rotate",
        "geometry",
        True,
        True,
        "Rotated by a fixed angle, clockwise or anticlockwise at random; borders reflected.",
        ("±5°", "±10°", "±15°", "±25°", "±35°"),
    ),
    CorruptionInfo(
        "scale_crop",
        "geometry",
        True,
        True,
        "Closer: a crop of part of the image at a random place, aspect kept, resized back.",
        ("90% of the area", "80%", "65%", "50%", "35%"),
    ),
    CorruptionInfo(
        "zoom_out",
        "geometry",
        True,
        False,
        "Farther: the image shrunk about its centre, the edges' pixels extended outwards.",
        ("×0.9", "×0.8", "×0.7", "×0.6", "×0.5"),
    ),
    CorruptionInfo(
        "background",
        "scene",
        True,
        True,
        "The background (outside the audit's foreground estimate) replaced by a generated one; "
        "the foreground pixels are kept exactly.",
        (
            "a plain colour",
            "a two-colour gradient",
            "smooth colour blobs",
            "stripes",
            "fine coloured noise",
        ),
    ),
    CorruptionInfo(
        "horizontal_flip",
        "geometry",
        False,
        False,
        "Mirrored left to right. NOT label-preserving: it swaps the signing hand, so it is "
        "shown apart and never enters the summary score. Every severity is the same flip.",
        ("mirrored", "mirrored", "mirrored", "mirrored", "mirrored"),
    ),
)

CATALOGUE: dict[str, CorruptionInfo] = {entry.name: entry for entry in _ENTRIES}
"""Every change the sweep offers, by name, in the tables' order."""

DEFAULT_CORRUPTIONS: tuple[str, ...] = (
    "background",
    "brightness",
    "darkness",
    "defocus_blur",
    "hue_shift",
    "rotate",
    "scale_crop",
)
"""The default subset: the changes most common between one signer's room and other photos
(background, lighting both ways, focus, skin colour, hand angle, framing). With
:data:`DEFAULT_SEVERITIES` and 30 images per class it runs within about 5 minutes for 29 classes
on two CPU cores at 200 pixels (``benchmarks/bench_stress.py``, docs/benchmarks.md)."""

DEFAULT_SEVERITIES: tuple[int, ...] = (3,)
"""The default severity: the middle one (``--severities 1..5`` draws the full curves)."""


def corruption_info(name: str) -> CorruptionInfo:
    """The catalogue entry of ``name``.

    >>> corruption_info("horizontal_flip").label_preserving
    False
    """
    try:
        return CATALOGUE[name]
    except KeyError:
        raise InputError(
            f"unknown corruption {name!r}; choose from {', '.join(CATALOGUE)}"
        ) from None


def check_corruptions(names: Sequence[str]) -> tuple[str, ...]:
    """``names`` validated: known, none twice, at least one.

    >>> check_corruptions(["rotate", "background"])
    ('rotate', 'background')
    """
    chosen = tuple(names)
    if not chosen:
        raise InputError("give at least one corruption (see asl-eval stress --help)")
    unknown = [name for name in chosen if name not in CATALOGUE]
    if unknown:
        raise InputError(
            f"{len(unknown)} unknown corruption(s): {', '.join(unknown[:5])}; "
            f"choose from {', '.join(CATALOGUE)}"
        )
    repeated = sorted({name for name in chosen if chosen.count(name) > 1})
    if repeated:
        raise InputError(f"corruptions given twice: {', '.join(repeated)}")
    return chosen


def check_severities(severities: Sequence[int]) -> tuple[int, ...]:
    """``severities`` validated: integers from 0 to :data:`MAX_SEVERITY`, sorted, no repeats.

    >>> check_severities([5, 1, 3])
    (1, 3, 5)
    """
    values = tuple(severities)
    bad = [s for s in values if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= 5]
    if not values or bad:
        raise InputError(
            f"severities must be whole numbers from 0 to {MAX_SEVERITY} (at least one); "
            f"got {list(values)}"
        )
    if len(set(values)) != len(values):
        raise InputError(f"severities given twice: {list(values)}")
    return tuple(sorted(values))
