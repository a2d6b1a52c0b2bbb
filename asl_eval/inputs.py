"""Input discovery and image loading: every file found is accounted for.

:func:`discover_images` walks a folder and returns the candidate image files;
:func:`load_rgb` opens one and converts it to 8-bit RGB, or raises :class:`UnreadableImage`
with a short reason that goes into the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from asl_eval.errors import InputError
from asl_eval.predictions import LedgerEntry

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


class UnreadableImage(InputError):
    """One file cannot be used as an image; ``reason`` is the short ledger wording."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class Discovery:
    """Result of walking one input folder.

    ``images`` are files with an image extension, in sorted order. ``entries`` are ledger
    entries for files found but set aside before labelling.
    """

    root: Path
    images: tuple[Path, ...]
    entries: tuple[LedgerEntry, ...] = ()


def _is_hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _walk(root: Path) -> Iterable[Path]:
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            stat = folder.stat()
        except OSError:
            continue
        key = (stat.st_dev, stat.st_ino)
        if key in seen:  # a symlink loop, or the same folder reached twice
            continue
        seen.add(key)
        try:
            children = sorted(folder.iterdir())
        except OSError:
            continue
        for child in children:
            if child.name.startswith("."):
                continue
            if child.is_dir():
                stack.append(child)
            elif child.is_file():
                yield child


def discover_images(root: str | Path) -> Discovery:
    """Find the image files under ``root`` (recursive, case-insensitive extensions, hidden
    files and folders skipped, symlink loops followed once).

    Raises
    ------
    InputError
        If ``root`` does not exist, or holds no image file.
    """
    root = Path(root)
    if not root.exists():
        raise InputError(f"{root} does not exist.")
    if root.is_file():
        if root.suffix.lower() in IMAGE_EXTENSIONS:
            return Discovery(root=root.parent, images=(root,))
        raise InputError(f"{root} is not an image file or a folder of images.")
    images = sorted(
        (p for p in _walk(root) if p.suffix.lower() in IMAGE_EXTENSIONS),
        key=lambda p: str(p),
    )
    if not images:
        raise InputError(
            f"{root} holds no image files (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})."
        )
    return Discovery(root=root, images=tuple(images))


def load_rgb(path: str | Path) -> Image.Image:
    """Open an image and return it as 8-bit RGB, fully decoded.

    Raises
    ------
    UnreadableImage
        With a short ``reason`` when the file is empty, not an image, or truncated.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise UnreadableImage(path, "zero-byte file")
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except UnreadableImage:
        raise
    except Image.DecompressionBombError:
        raise UnreadableImage(path, "image exceeds the decompression-bomb limit") from None
    except Image.UnidentifiedImageError:
        raise UnreadableImage(path, "not an image") from None
    except OSError as error:
        raise UnreadableImage(path, f"unreadable image ({error})") from None
