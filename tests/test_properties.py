"""Per-image properties (asl_eval.audit.properties) on hand-made images with known values."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from asl_eval.audit.foreground import background_share
from asl_eval.audit.properties import (
    PROPERTIES,
    brightness,
    colourfulness,
    contrast,
    downscale,
    image_properties,
    luma,
    measure_file,
    property_table,
    sharpness,
)
from asl_eval.errors import InputError
from asl_eval.inputs import NOT_AN_IMAGE, ZERO_BYTE
from asl_eval.progress import ProgressEvent


def _constant(value: tuple[int, int, int], shape: tuple[int, int] = (6, 9)) -> np.ndarray:
    return np.broadcast_to(np.array(value, dtype=np.uint8), (*shape, 3)).copy()


def test_constant_image() -> None:
    image = _constant((10, 200, 50))
    expected = 0.299 * 10 + 0.587 * 200 + 0.114 * 50
    assert brightness(image) == pytest.approx(expected)
    assert contrast(image) == pytest.approx(0.0, abs=1e-9)
    assert sharpness(image) == pytest.approx(0.0, abs=1e-9)


def test_luma_matches_pillow_grey() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    pillow = np.asarray(Image.fromarray(image).convert("L"), dtype=np.float64)
    # Pillow rounds to integers; the luma here is exact.
    assert np.abs(luma(image) - pillow).max() <= 0.5 + 1e-9


def test_contrast_of_two_levels() -> None:
    # Half the pixels at grey 40, half at grey 160: SD = (160 - 40) / 2.
    image = _constant((40, 40, 40), (4, 4))
    image[:, :2] = 160
    assert contrast(image) == pytest.approx(60.0)
    assert brightness(image) == pytest.approx(100.0)


def test_checkerboard_laplacian_variance_by_hand() -> None:
    # An 8×8 board of single black and white (0/255) pixels. The 5-point Laplacian at a pixel is
    # the sum over its 4 neighbours of (neighbour − pixel); with reflected edges a missing
    # neighbour is the pixel itself (contributes 0), so the Laplacian is ±255 × the number of
    # in-image neighbours: 4 inside (36 pixels), 3 on an edge (24), 2 at a corner (4).
    rows, cols = np.mgrid[0:8, 0:8]
    board = np.where((rows + cols) % 2 == 0, 255, 0).astype(np.uint8)
    image = np.repeat(board[..., None], 3, axis=2)
    squares = 36 * (4 * 255) ** 2 + 24 * (3 * 255) ** 2 + 4 * (2 * 255) ** 2
    expected = squares / 64  # the mean is 0: as many +s as −s at each kind of position
    assert sharpness(image) == pytest.approx(expected)
    blurred = np.full_like(image, 128)
    assert sharpness(blurred) < sharpness(image)


def test_colourfulness_of_grey_is_zero() -> None:
    rng = np.random.default_rng(1)
    grey = np.repeat(rng.integers(0, 256, (5, 5, 1), dtype=np.uint8), 3, axis=2)
    assert colourfulness(grey) == pytest.approx(0.0, abs=1e-9)


def test_colourfulness_of_two_colours_by_hand() -> None:
    # Half pure red, half pure blue. rg = R − G: 255 and 0 (mean 127.5, SD 127.5);
    # yb = (R + G)/2 − B: 127.5 and −255 (mean −63.75, SD 191.25).
    image = _constant((255, 0, 0), (2, 2))
    image[1] = (0, 0, 255)
    sigma = math.sqrt(127.5**2 + 191.25**2)
    mu = math.sqrt(127.5**2 + 63.75**2)
    assert colourfulness(image) == pytest.approx(sigma + 0.3 * mu)


def test_image_properties_fields() -> None:
    image = _constant((128, 128, 128), (10, 20))
    values = image_properties(image, original_size=(300, 120))
    assert tuple(values) == PROPERTIES
    assert values["width"] == 300 and values["height"] == 120
    assert values["aspect_ratio"] == pytest.approx(2.5)
    assert values["background_share"] == background_share(image) == 1.0
    with pytest.raises(InputError, match="original_size"):
        image_properties(image, original_size=(0, 10))
    with pytest.raises(InputError, match="H×W×3"):
        image_properties(image[..., 0], original_size=(20, 10))


def test_downscale_keeps_the_shape() -> None:
    assert downscale(Image.new("RGB", (100, 400)), max_side=64).shape == (64, 16, 3)
    assert downscale(Image.new("RGB", (30, 20)), max_side=64).shape == (20, 30, 3)
    with pytest.raises(InputError, match="max_side"):
        downscale(Image.new("RGB", (3, 3)), max_side=0)


def _write(path: Path, image: np.ndarray) -> Path:
    Image.fromarray(image).save(path)
    return path


def test_measure_file_uses_the_original_size(tmp_path: Path) -> None:
    image = _constant((90, 90, 90), (120, 300))
    image[40:80, 100:200] = (220, 170, 140)
    path = _write(tmp_path / "a.png", image)
    values = measure_file(path, max_side=100)
    assert (values["width"], values["height"]) == (300, 120)
    assert values["aspect_ratio"] == pytest.approx(2.5)
    # The foreground is 40×100 of 120×300 pixels, measured on a 40×100 copy.
    assert values["background_share"] == pytest.approx(1 - (40 * 100) / (120 * 300), abs=0.03)
    # By default: pixel properties on a 256×102 copy, the background share on a 128×51 one.
    default = measure_file(path)
    assert default["background_share"] == pytest.approx(values["background_share"], abs=0.03)
    assert default["brightness"] == pytest.approx(values["brightness"], abs=1.0)


def test_property_table_counts_every_file(tmp_path: Path) -> None:
    paths = [_write(tmp_path / f"{i}.png", _constant((i * 20, 0, 0), (8, 8))) for i in range(9)]
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "text.png"
    text.write_text("not an image")
    files = [*paths[:4], empty, *paths[4:], text]
    events: list[ProgressEvent] = []
    table = property_table(files, name="odd", workers=2, progress=events.append)
    assert table["path"].tolist() == [str(p) for p in files]
    assert table["status"].tolist().count("measured") == 9
    excluded = table[table["status"] == "excluded"].set_index("path")["reason"]
    assert excluded.to_dict() == {str(empty): ZERO_BYTE, str(text): NOT_AN_IMAGE}
    assert table.loc[table["status"] == "excluded", list(PROPERTIES)].isna().all().all()
    measured = table[table["status"] == "measured"]
    expected = [0.299 * i * 20 for i in range(9)]
    assert measured["brightness"].to_numpy() == pytest.approx(expected)
    assert events[-1] == ProgressEvent("measure", "odd", 11, 11)


def test_property_table_of_nothing() -> None:
    table = property_table([])
    assert table.empty and list(table.columns) == ["path", "status", "reason", *PROPERTIES]
    assert isinstance(table, pd.DataFrame)
    with pytest.raises(InputError, match="workers"):
        property_table([], workers=0)
