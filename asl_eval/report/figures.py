"""Figures and thumbnails for the report, as ``data:`` URIs (the report is one file)."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from asl_eval.inputs import UnreadableImage, load_rgb

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def data_uri(payload: bytes, mime: str) -> str:
    """A base64 ``data:`` URI.

    >>> data_uri(b"hi", "text/plain")
    'data:text/plain;base64,aGk='
    """
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def figure_data_uri(figure: Figure, *, dpi: int = 80) -> str:
    """Render a matplotlib figure to PNG (no timestamp or software metadata)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return data_uri(buffer.getvalue(), "image/png")


def draw(plot: Callable[[Axes], object], *, size: tuple[float, float], dpi: int = 80) -> str:
    """Make a fresh figure (no pyplot state), let ``plot`` draw on its axes, return the URI."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, layout="constrained")
    plot(figure.add_subplot())
    return figure_data_uri(figure, dpi=dpi)


def thumbnail_data_uri(path: str | Path, *, size: int = 96, quality: int = 70) -> str | None:
    """A small JPEG of an image file, or None when the file cannot be read any more."""
    try:
        image = load_rgb(path)
    except (UnreadableImage, OSError):
        return None
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=True)
    return data_uri(buffer.getvalue(), "image/jpeg")
