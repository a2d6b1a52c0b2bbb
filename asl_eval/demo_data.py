"""A deterministic stand-in for the three Kaggle ASL folders, for the offline demo and tests.

Real hand photographs cannot ship with the package, so the demo renders glyphs instead, laid
out exactly like the folders the fastai tutorial uses:

- ``asl_alphabet_train/<class>/<class><n>.jpg``: "video frames" of one style (one font, a plain
  background), consecutive frames drifting slightly, so a random split leaks near-duplicates
  into validation just as the real data set does;
- ``asl_alphabet_test/<class>_test.jpg``: 28 files in the training style, no ``del``;
- ``test/<class>/<class><nnnn>_test.jpg``: an out-of-domain set in other fonts, on textured,
  coloured backgrounds, rotated and noisy, so that a real domain gap appears.

Only numpy and Pillow are needed (no other asl-eval stage is imported); fonts are the ones that
ship with matplotlib.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

__all__ = ["ASL_CLASSES", "DemoDataset", "make_demo_dataset"]

ASL_CLASSES: tuple[str, ...] = (
    *(chr(c) for c in range(ord("A"), ord("Z") + 1)),
    "del",
    "nothing",
    "space",
)
"""The 29 classes of the Kaggle ASL Alphabet data set, in fastai's sorted vocab order."""

_GLYPHS = {"del": "\u2190", "space": "\u2423", "nothing": ""}
_TRAIN_FONT = "DejaVuSans-Bold.ttf"
_OOD_FONTS = (
    _TRAIN_FONT,
    "DejaVuSans.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSerif-Bold.ttf",
    "STIXGeneralBol.ttf",
)


@dataclass(frozen=True)
class DemoDataset:
    """Where the generated folders are."""

    root: Path
    train: Path
    kaggle_test: Path
    ood_test: Path


def _font_path(name: str) -> str:
    import matplotlib

    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name)


def _glyph(label: str) -> str:
    return _GLYPHS.get(label, label)


def _render(
    label: str,
    *,
    size: int,
    font_name: str,
    background: tuple[int, int, int],
    foreground: tuple[int, int, int],
    dx: float,
    dy: float,
    scale: float,
    angle: float,
) -> Image.Image:
    """Draw one glyph on a 2x canvas, then rotate, shift and downsample (for anti-aliasing)."""
    big = size * 2
    canvas = Image.new("RGB", (big, big), background)
    text = _glyph(label)
    if text:
        font = ImageFont.truetype(_font_path(font_name), max(8, int(big * 0.6 * scale)))
        draw = ImageDraw.Draw(canvas)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        x = (big - (right - left)) / 2 - left + dx * big
        y = (big - (bottom - top)) / 2 - top + dy * big
        draw.text((x, y), text, font=font, fill=foreground)
    if angle:
        canvas = canvas.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=background)
    return canvas.resize((size, size), Image.Resampling.LANCZOS)


def _add_noise(image: Image.Image, rng: np.random.Generator, sigma: float) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float32)
    pixels += rng.normal(0.0, sigma, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _textured_background(size: int, rng: np.random.Generator, base: np.ndarray) -> Image.Image:
    yy, xx = np.mgrid[0:size, 0:size] / size
    phase = rng.uniform(0, 2 * math.pi)
    wave = 25 * np.sin(2 * math.pi * (2 * xx + yy) + phase)
    pixels = np.clip(base[None, None, :] + wave[..., None], 0, 255).astype(np.uint8)
    return Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(1))


def _write_jpeg(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="JPEG", quality=90)


def _training_style(label: str, frame: int, size: int, rng: np.random.Generator) -> Image.Image:
    # A slow random walk: consecutive frames are nearly identical, like video frames.
    # Lighting drifts slowly too, as it does over a recording session.
    t = frame / 6.0
    dx = 0.07 * math.sin(t + rng.uniform(-0.05, 0.05))
    dy = 0.07 * math.cos(0.7 * t)
    light = 0.8 + 0.2 * math.sin(0.15 * t)
    tint = 25 * math.sin(0.11 * t)
    image = _render(
        label,
        size=size,
        font_name=_TRAIN_FONT,
        background=(int(205 * light + tint), int(200 * light), int(190 * light - tint)),
        foreground=(int(120 * light - tint), int(70 * light), int(50 * light + tint)),
        dx=dx,
        dy=dy,
        scale=1.0 + 0.06 * math.sin(0.5 * t),
        angle=8 * math.sin(0.3 * t),
    )
    return _add_noise(image, rng, 3.0)


def _ood_style(label: str, size: int, rng: np.random.Generator) -> Image.Image:
    # Another "signer": other fonts, rotation, textured backgrounds and noise, in a palette
    # near the training one (a model trained on one palette fails on any other at once).
    font_name = _OOD_FONTS[int(rng.integers(len(_OOD_FONTS)))]
    light = float(rng.uniform(0.6, 1.1))
    base = np.clip(np.array([205, 200, 190]) * light + rng.integers(-25, 25, 3), 0, 255)
    background = _textured_background(size * 2, rng, base)
    ink = np.array([120, 70, 50]) * float(rng.uniform(0.5, 1.2)) + rng.integers(-30, 30, 3)
    red, green, blue = (int(v) for v in np.clip(ink, 0, 255))
    glyph = _render(
        label,
        size=size * 2,
        font_name=font_name,
        background=(0, 0, 0),
        foreground=(255, 255, 255),
        dx=float(rng.uniform(-0.06, 0.06)),
        dy=float(rng.uniform(-0.06, 0.06)),
        scale=float(rng.uniform(0.85, 1.05)),
        angle=float(rng.uniform(-15, 15)),
    )
    background.paste(
        Image.new("RGB", background.size, (red, green, blue)), (0, 0), glyph.convert("L")
    )
    image = background.resize((size, size), Image.Resampling.LANCZOS)
    return _add_noise(image, rng, float(rng.uniform(3, 12)))


def make_demo_dataset(
    root: str | Path,
    *,
    n_train_per_class: int = 40,
    n_ood_per_class: int = 10,
    size: int = 64,
    classes: tuple[str, ...] = ASL_CLASSES,
    seed: int = 0,
) -> DemoDataset:
    """Generate the three folders under ``root`` and return where they are.

    The same arguments always give the same files (all randomness comes from ``seed``).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     data = make_demo_dataset(tmp, n_train_per_class=2, n_ood_per_class=1, size=32)
    ...     (len(list(data.train.rglob("*.jpg"))), len(list(data.kaggle_test.glob("*.jpg"))))
    (58, 28)
    """
    root = Path(root)
    data = DemoDataset(
        root=root,
        train=root / "asl_alphabet_train",
        kaggle_test=root / "asl_alphabet_test",
        ood_test=root / "test",
    )
    for class_index, label in enumerate(classes):
        rng = np.random.default_rng([seed, class_index])
        start = int(rng.integers(0, 1000))
        for n in range(n_train_per_class):
            image = _training_style(label, start + n, size, rng)
            _write_jpeg(image, data.train / label / f"{label}{n + 1}.jpg")
        if label != "del":
            image = _training_style(label, start + n_train_per_class + 7, size, rng)
            _write_jpeg(image, data.kaggle_test / f"{label}_test.jpg")
        for n in range(n_ood_per_class):
            image = _ood_style(label, size, rng)
            _write_jpeg(image, data.ood_test / label / f"{label}{n + 1:04d}_test.jpg")
    return data
