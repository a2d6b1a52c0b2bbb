"""Input discovery and image loading: every file found is accounted for.

:func:`discover_images` walks a folder and returns the candidate image files (and counts of
what it skipped, and why); :func:`load_rgb` opens one file and converts it to 8-bit RGB the way
the model expects, or raises :class:`UnreadableImage` with a short reason from
:data:`EXCLUSION_REASONS` that goes into the ledger.

Conversion rules (see ``docs/labels.md``):

- transparency (RGBA, LA, palette images with a transparent colour) is composited onto an opaque
  background, white ``(255, 255, 255)`` by default;
- 16-bit greyscale (``I;16``, and 32-bit ``I``, read as the 16-bit range) is scaled linearly to
  8 bits with ``round(v * 255 / 65535)``, never clipped; 16-bit RGB(A) PNGs are reduced to
  8 bits by Pillow itself (high byte);
- greyscale and bilevel images are replicated to three channels; CMYK and other colour spaces go
  through Pillow's conversion (embedded ICC profiles are not applied); 32-bit float images are
  excluded as an unsupported pixel format;
- the first frame of an animated GIF/WebP/TIFF is used; EXIF orientation is not applied, as in
  fastai's own ``PILImage.create``, so evaluation sees pixels exactly as training did;
- an image with more pixels than ``max_pixels`` (default: Pillow's ``Image.MAX_IMAGE_PIXELS``) is
  excluded from its header alone, before any pixel is decoded.

Layer: below :mod:`asl_eval.labels` and everything that reads images. Imports numpy, Pillow,
:mod:`asl_eval.errors` and :mod:`asl_eval.predictions` (for ledger entries); no torch, no fastai.
"""

from __future__ import annotations

import io
import logging
import struct
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from asl_eval.errors import InputError, UnreadableImage
from asl_eval.predictions import LedgerEntry

__all__ = [
    "BROKEN_LINK",
    "CORRUPT",
    "DEFAULT_BACKGROUND",
    "EXCLUSION_REASONS",
    "IMAGE_EXTENSIONS",
    "LINK_OUTSIDE",
    "NOT_AN_IMAGE",
    "TOO_LARGE",
    "TRUNCATED",
    "UNREADABLE_FILE",
    "UNSUPPORTED_MODE",
    "ZERO_BYTE",
    "Discovery",
    "decode_rgb",
    "discover_images",
    "has_image_extension",
    "load_rgb",
    "path_under",
    "read_image_bytes",
]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
"""File extensions taken as images, compared case-insensitively."""

DEFAULT_BACKGROUND: tuple[int, int, int] = (255, 255, 255)
"""Colour that transparent pixels are composited onto: white."""

ZERO_BYTE = "zero-byte file"
NOT_AN_IMAGE = "not an image"
TRUNCATED = "truncated image"
CORRUPT = "corrupt image"
TOO_LARGE = "exceeds the decompression-bomb limit"
UNSUPPORTED_MODE = "unsupported pixel format"
UNREADABLE_FILE = "unreadable file"
BROKEN_LINK = "broken symbolic link"
LINK_OUTSIDE = "link outside the folder"

EXCLUSION_REASONS: tuple[str, ...] = (
    ZERO_BYTE,
    NOT_AN_IMAGE,
    TRUNCATED,
    CORRUPT,
    TOO_LARGE,
    UNSUPPORTED_MODE,
    UNREADABLE_FILE,
    BROKEN_LINK,
    LINK_OUTSIDE,
)
"""Every ``reason`` an excluded file can have in the ledger (a fixed vocabulary, so the report
can count exclusions by reason)."""

# Pillow's decoders signal a bad file with a variety of exceptions; one bad file must never stop
# a run, so all of these become an exclusion with a reason.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    struct.error,
    MemoryError,
)


@dataclass(frozen=True)
class Discovery:
    """Result of walking one input folder.

    Attributes
    ----------
    root
        The folder labels are read relative to (the parent folder when a single file was given).
    images
        Files with an image extension, sorted by path.
    entries
        Ledger entries for files found but set aside before labelling (broken symbolic links,
        links outside the folder).
    skipped
        Counts of what the walk passed over, by kind: ``"hidden"`` files and folders,
        ``"not an image extension"`` files, ``"symlink loop or repeat"`` folders reached a second
        time, ``"unreadable folder"``. These are not inputs, so they are not in the ledger.
    """

    root: Path
    images: tuple[Path, ...]
    entries: tuple[LedgerEntry, ...] = ()
    skipped: Mapping[str, int] = field(default_factory=dict)

    @property
    def n_found(self) -> int:
        """Files that go into the ledger: images plus those set aside before labelling."""
        return len(self.images) + len(self.entries)


def has_image_extension(path: str | Path) -> bool:
    """Whether the file name ends in one of :data:`IMAGE_EXTENSIONS`, ignoring case.

    >>> has_image_extension("photos/A0001.JPG"), has_image_extension("notes.txt")
    (True, False)
    """
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def path_under(path: str | Path, root: str | Path) -> str | None:
    """``path`` relative to ``root`` with ``/`` separators, or None when it is not under it.

    Tried as given first, then with both resolved (a root given through a symbolic link, or
    relative against absolute), so the answer does not depend on how the folder was named.

    >>> path_under("data/train/A/A1.jpg", "data/train"), path_under("/elsewhere/B1.jpg", "data")
    ('A/A1.jpg', None)
    """
    path, root = Path(path), Path(root)
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        pass
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except (ValueError, OSError, RuntimeError):  # outside, or a link loop that resolves to nothing
        return None


def _inside(path: Path, real_root: Path) -> bool:
    """Whether ``path``, with every symbolic link resolved, lies under ``real_root``."""
    try:
        return path.resolve().is_relative_to(real_root)
    except (OSError, RuntimeError):  # a link loop resolves to nothing
        return False


def _walk(
    root: Path, skipped: Counter[str], outside: list[Path], *, follow_links: bool
) -> Iterator[Path]:
    """Yield every non-hidden file under ``root``; each real folder is entered once, so a
    symbolic link that points back up the tree cannot loop.

    Unless ``follow_links``, a symbolic link whose target lies outside ``root`` (a file or a
    folder) is not followed: it is appended to ``outside`` instead. A broken link is yielded
    (the caller records it)."""
    real_root = root.resolve()
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            stat = folder.stat()
            children = sorted(folder.iterdir())
        except OSError as error:
            logger.warning("skipping unreadable folder %s: %s", folder, error)
            skipped["unreadable folder"] += 1
            continue
        key = (stat.st_dev, stat.st_ino)
        if key in seen:
            skipped["symlink loop or repeat"] += 1
            continue
        seen.add(key)
        for child in reversed(children):  # the stack pops in sorted order
            if child.name.startswith("."):
                skipped["hidden"] += 1
            elif (
                not follow_links
                and child.is_symlink()
                and child.exists()
                and not _inside(child, real_root)
            ):
                outside.append(child)
            elif child.is_dir():
                stack.append(child)
            else:
                yield child


def discover_images(root: str | Path, *, follow_links: bool = False) -> Discovery:
    """Find the image files under ``root``.

    The walk is recursive, entering each real folder once (so link loops end); file and folder
    names starting with ``.`` are skipped; extensions match :data:`IMAGE_EXTENSIONS` ignoring
    case. A folder whose name looks like an image (``x.jpg/``) is walked like any folder. A
    symbolic link with an image extension whose target is missing is found and recorded as
    excluded (``"broken symbolic link"``).

    Symbolic links that stay inside ``root`` are followed. One that leads outside it is not,
    unless ``follow_links``: a linked file with an image extension, and a linked folder, is
    recorded as excluded (``"link outside the folder"``) and never opened, so nothing from
    elsewhere on disk reaches the model or the report.

    Parameters
    ----------
    root
        A folder, or a single image file (taken as given, even if it is a link).
    follow_links
        Follow symbolic links that lead outside ``root`` too.

    Returns
    -------
    Discovery

    Raises
    ------
    InputError
        If ``root`` does not exist, is a file without an image extension, or holds no image file.
    """
    root = Path(root)
    if not root.exists():
        if root.is_symlink():
            raise InputError(f"{root} is a symbolic link to a path that does not exist.")
        raise InputError(f"{root} does not exist. Pass a folder of images or an image file.")
    if root.is_file():
        if has_image_extension(root):
            return Discovery(root=root.parent, images=(root,))
        raise InputError(
            f"{root} is not an image file or a folder of images "
            f"(expected one of {', '.join(sorted(IMAGE_EXTENSIONS))})."
        )
    skipped: Counter[str] = Counter()
    images: list[Path] = []
    outside: list[Path] = []
    entries: list[LedgerEntry] = []
    for path in _walk(root, skipped, outside, follow_links=follow_links):
        if not has_image_extension(path):
            skipped["not an image extension"] += 1
        elif path.is_symlink() and not path.exists():
            entries.append(LedgerEntry(str(path), "excluded", reason=BROKEN_LINK))
        elif path.is_file():
            images.append(path)
        else:  # a socket, a FIFO or a device with an image name
            entries.append(LedgerEntry(str(path), "excluded", reason=UNREADABLE_FILE))
    entries.extend(_outside_entries(outside, skipped))
    if not images and not entries:
        what = "is empty" if not skipped else f"holds no image files ({_describe(skipped)})"
        raise InputError(
            f"{root} {what}; looked for {', '.join(sorted(IMAGE_EXTENSIONS))} "
            "in it and its subfolders."
        )
    images.sort(key=str)
    entries.sort(key=lambda e: e.path)
    return Discovery(root=root, images=tuple(images), entries=tuple(entries), skipped=dict(skipped))


def _outside_entries(outside: list[Path], skipped: Counter[str]) -> list[LedgerEntry]:
    """Ledger entries for links out of the folder: every linked folder, and every linked file
    with an image extension (others are not inputs: counted as skipped)."""
    entries = []
    for link in outside:
        if link.is_dir() or has_image_extension(link):
            logger.warning("not following %s: a link outside the folder", link)
            entries.append(LedgerEntry(str(link), "excluded", reason=LINK_OUTSIDE))
        else:
            skipped["not an image extension"] += 1
    return entries


def _describe(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} skipped as {kind}" for kind, n in sorted(counts.items()))


def _to_rgb(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Convert a decoded image of any supported mode to 8-bit RGB (rules in the module doc)."""
    mode = image.mode
    if mode == "RGB":
        return image.copy()
    if mode.startswith("I"):  # I;16, I;16B, I;16L, I;16N, and 32-bit I
        values = np.asarray(image, dtype=np.float64)
        scaled = np.rint(np.clip(values, 0, 65535) * (255 / 65535)).astype(np.uint8)
        return Image.fromarray(scaled, mode="L").convert("RGB")
    if mode == "F":
        raise ValueError("32-bit floating-point pixels")
    if mode == "P":
        palette_mode = image.palette.mode if image.palette is not None else "RGB"
        has_alpha = "transparency" in image.info or palette_mode == "RGBA"
        image = image.convert("RGBA" if has_alpha else "RGB")
        if not has_alpha:
            return image
        mode = "RGBA"
    if mode in {"LA", "La", "PA", "RGBa", "RGBA"}:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if mode in {"L", "1", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"}:
        return image.convert("RGB")
    raise ValueError(f"pixel mode {mode}")


def load_rgb(
    path: str | Path,
    *,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
    max_pixels: int | None = None,
) -> Image.Image:
    """Open an image and return it fully decoded as 8-bit RGB.

    Parameters
    ----------
    path
        The image file.
    background
        RGB colour that transparent pixels are composited onto (default white).
    max_pixels
        Largest width x height accepted; larger images are excluded from their header alone.
        Default: Pillow's ``Image.MAX_IMAGE_PIXELS`` at call time (no limit if that is None).

    Returns
    -------
    PIL.Image.Image
        A new image in mode ``"RGB"``, detached from the file.

    Raises
    ------
    UnreadableImage
        With ``reason`` one of :data:`EXCLUSION_REASONS` when the file is empty, not an image,
        truncated, corrupt, too large or in an unsupported pixel format.
    """
    path = Path(path)
    return decode_rgb(
        read_image_bytes(path), path=path, background=background, max_pixels=max_pixels
    )


def read_image_bytes(path: str | Path) -> bytes:
    """The bytes of an image file, read once (to hash them and to decode them).

    Raises
    ------
    UnreadableImage
        ``"broken symbolic link"`` or ``"unreadable file"`` when the file cannot be read,
        ``"zero-byte file"`` when it is empty.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        reason = BROKEN_LINK if path.is_symlink() and not path.exists() else UNREADABLE_FILE
        raise UnreadableImage(path, reason, str(error)) from None
    if not data:
        raise UnreadableImage(path, ZERO_BYTE)
    return data


def decode_rgb(
    data: bytes,
    *,
    path: str | Path,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
    max_pixels: int | None = None,
) -> Image.Image:
    """Decode an image file's bytes to 8-bit RGB, by the same rules as :func:`load_rgb`.

    ``path`` only names the file in an :class:`UnreadableImage`; nothing is read from it.

    >>> import io
    >>> buffer = io.BytesIO()
    >>> Image.new("LA", (2, 1), (0, 0)).save(buffer, format="PNG")
    >>> decode_rgb(buffer.getvalue(), path="clear.png").getpixel((0, 0))
    (255, 255, 255)
    """
    path = Path(path)
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    if not data:
        raise UnreadableImage(path, ZERO_BYTE)
    try:
        return _decode(io.BytesIO(data), path, background, limit)
    except UnreadableImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise UnreadableImage(path, TOO_LARGE, str(error)) from None
    except Image.UnidentifiedImageError:
        raise UnreadableImage(path, NOT_AN_IMAGE, "Pillow recognises no image format") from None
    except _DECODE_ERRORS as error:
        detail = f"{type(error).__name__}: {error}"
        reason = TRUNCATED if "truncated" in str(error).lower() else CORRUPT
        raise UnreadableImage(path, reason, detail) from None


def _decode(
    source: io.BytesIO, path: Path, background: tuple[int, int, int], limit: int | None
) -> Image.Image:
    """Open, check the size from the header, decode and convert to RGB.

    Pillow's own exceptions propagate; :func:`decode_rgb` turns them into exclusions.
    """
    # No warnings.catch_warnings() here to hush Pillow's DecompressionBombWarning: this runs in
    # the decoding threads, and catch_warnings saves and restores the process-wide filters, so
    # a thread leaving it undoes filters another thread has set meanwhile (the model loader's).
    # The size is checked below anyway; where warnings are errors, decode_rgb catches it.
    with Image.open(source) as image:
        width, height = image.size
        if limit is not None and width * height > limit:
            raise UnreadableImage(path, TOO_LARGE, f"{width}x{height} pixels, limit {limit}")
        image.load()
        try:
            return _to_rgb(image, background)
        except ValueError as error:
            raise UnreadableImage(path, UNSUPPORTED_MODE, str(error)) from None
