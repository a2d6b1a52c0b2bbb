"""The foreground estimate (asl_eval.audit.foreground) on synthetic images with a known shape."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from asl_eval.audit.foreground import (
    background_distance,
    background_share,
    foreground_mask,
    otsu_threshold,
)
from asl_eval.errors import InputError

SKIN = (224, 172, 138)
SIZE = 200

# A hand-like polygon: a palm, four fingers and a thumb, on an arm that reaches the bottom edge.
HAND = [
    (80, 199), (80, 150), (55, 120), (45, 95), (60, 90), (75, 110), (75, 60), (85, 60), (88, 100),
    (92, 45), (102, 45), (104, 100), (108, 50), (118, 50), (119, 102), (124, 62), (133, 62),
    (132, 120), (120, 150), (120, 199),
]  # fmt: skip


def _shape(polygon: list[tuple[int, int]]) -> NDArray[np.bool_]:
    canvas = Image.new("1", (SIZE, SIZE), 0)
    ImageDraw.Draw(canvas).polygon(polygon, fill=1)
    return np.asarray(canvas, dtype=bool)


def _iou(a: NDArray[np.bool_], b: NDArray[np.bool_]) -> float:
    return float((a & b).sum() / (a | b).sum())


def _compose(
    background: NDArray[np.float64], truth: NDArray[np.bool_], noise: float, seed: int
) -> NDArray[np.uint8]:
    rng = np.random.default_rng(seed)
    image = background.copy()
    image[truth] = SKIN
    image += rng.normal(0.0, noise, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _uniform() -> NDArray[np.float64]:
    return np.broadcast_to(np.array([52.0, 70.0, 160.0]), (SIZE, SIZE, 3)).copy()


def _gradient() -> NDArray[np.float64]:
    # A lighting falloff: dark grey-green at the top left to a light grey at the bottom right.
    ramp = (np.add.outer(np.arange(SIZE), np.arange(SIZE)) / (2 * (SIZE - 1)))[..., None]
    return np.array([40.0, 60.0, 50.0]) + ramp * np.array([110.0, 110.0, 120.0])


def _two_tone() -> NDArray[np.float64]:
    # A wall and a door: the left 60% blue-grey, the right 40% dark brown.
    background = _uniform()
    background[:, 120:] = (70.0, 45.0, 30.0)
    return background


@pytest.mark.parametrize(
    ("background", "noise"),
    [(_uniform, 0.0), (_uniform, 12.0), (_gradient, 0.0), (_gradient, 10.0), (_two_tone, 8.0)],
    ids=["uniform", "uniform-noisy", "gradient", "gradient-noisy", "two-tone-noisy"],
)
@pytest.mark.parametrize("polygon", ["hand", "blob"])
def test_known_shape_is_found(background: object, noise: float, polygon: str) -> None:
    if polygon == "hand":
        truth = _shape(HAND)
    else:
        rows, cols = np.mgrid[0:SIZE, 0:SIZE]
        truth = ((rows - 90) / 45) ** 2 + ((cols - 105) / 35) ** 2 <= 1
    image = _compose(background(), truth, noise, seed=len(polygon))  # type: ignore[operator]
    mask = foreground_mask(image)
    assert mask.shape == truth.shape and mask.dtype == bool
    assert _iou(mask, truth) >= 0.9
    assert background_share(image) == pytest.approx(1 - mask.mean())


def test_uniform_image_has_no_foreground() -> None:
    image = np.full((64, 48, 3), (200, 190, 180), dtype=np.uint8)
    assert not foreground_mask(image).any()
    assert background_share(image) == 1.0
    assert not background_distance(image).any()


def test_noise_alone_is_not_foreground() -> None:
    image = _compose(_uniform(), np.zeros((SIZE, SIZE), dtype=bool), 12.0, seed=3)
    assert background_share(image) >= 0.99


def test_tiny_image_does_not_crash() -> None:
    image = np.zeros((2, 3, 3), dtype=np.uint8)
    image[1, 1] = 255
    assert foreground_mask(image).shape == (2, 3)


def test_distance_is_euclidean_rgb() -> None:
    image = np.full((30, 30, 3), 10, dtype=np.uint8)
    image[12:18, 12:18] = (13, 14, 22)
    distance = background_distance(image)
    assert distance[15, 15] == pytest.approx(np.sqrt(3**2 + 4**2 + 12**2))
    assert distance[0, 0] == 0.0


def test_otsu_matches_brute_force() -> None:
    rng = np.random.default_rng(7)
    values = np.concatenate([rng.normal(20, 5, 800), rng.normal(120, 20, 200)])
    threshold = otsu_threshold(values, bins=64)
    counts, edges = np.histogram(values, bins=64)
    centres = (edges[:-1] + edges[1:]) / 2

    def between(cut: int) -> float:
        low, high = counts[: cut + 1], counts[cut + 1 :]
        mean_low = np.dot(low, centres[: cut + 1]) / low.sum()
        mean_high = np.dot(high, centres[cut + 1 :]) / high.sum()
        return float(low.sum() * high.sum() * (mean_low - mean_high) ** 2)

    best = max(range(63), key=between)
    assert threshold == pytest.approx(edges[best + 1])
    assert otsu_threshold(np.full(5, 3.0)) == 3.0


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((10, 10), dtype=np.uint8), "H×W×3"),
        (np.zeros((10, 10, 4), dtype=np.uint8), "H×W×3"),
        (np.zeros((0, 10, 3), dtype=np.uint8), "H×W×3"),
        (np.zeros((10, 10, 3), dtype=np.float32), "uint8"),
    ],
)
def test_bad_arrays_are_refused(image: NDArray[np.generic], match: str) -> None:
    with pytest.raises(InputError, match=match):
        foreground_mask(image)  # type: ignore[arg-type]


def test_bad_options_are_refused() -> None:
    with pytest.raises(InputError, match="border"):
        foreground_mask(np.zeros((10, 10, 3), dtype=np.uint8), border=0.0)
