"""Reading, hashing and decoding image files on a thread pool, a chunk ahead of the model.

Each file's bytes are read once: their SHA-256 is computed from them (:mod:`hashlib`) and they
are decoded to RGB by :func:`asl_eval.inputs.decode_rgb`, with every exclusion reason of
:func:`asl_eval.inputs.load_rgb`. Pillow's decoders and ``hashlib`` release the GIL, so a few
threads decode the next chunk while the engine predicts the current one.

Memory stays bounded: :func:`decode_chunks` holds at most the chunk it has handed out and the
one being decoded, provided the caller drops each chunk before asking for the next.

Layer: inside :mod:`asl_eval.inference`; imports the standard library, Pillow (through
:mod:`asl_eval.inputs`) and :mod:`asl_eval.errors`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Container, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from asl_eval.errors import UnreadableImage
from asl_eval.inputs import decode_rgb, read_image_bytes

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["DecodedFile", "decode_chunks", "decode_file", "default_workers"]


@dataclass(frozen=True)
class DecodedFile:
    """One file after reading: its hash, and its image or the reason it was excluded.

    Attributes
    ----------
    path
        The file.
    sha256
        Hex SHA-256 of its bytes, or None when they could not be read.
    image
        The decoded RGB image; None when excluded, or when decoding was skipped because the
        hash is already known (its probabilities are cached).
    error
        Why the file is excluded, or None.
    """

    path: Path
    sha256: str | None
    image: Image.Image | None = None
    error: UnreadableImage | None = None


def decode_file(path: Path, *, known: Container[str] = ()) -> DecodedFile:
    """Read ``path`` once, hash its bytes, and decode them unless the hash is in ``known``."""
    try:
        data = read_image_bytes(path)
    except UnreadableImage as error:
        return DecodedFile(path, None, error=error)
    digest = hashlib.sha256(data).hexdigest()
    if digest in known:
        return DecodedFile(path, digest)
    try:
        return DecodedFile(path, digest, image=decode_rgb(data, path=path))
    except UnreadableImage as error:
        return DecodedFile(path, digest, error=error)


def default_workers() -> int:
    """Decoding threads: the usable CPUs, at most 8."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return max(1, min(8, usable))


def decode_chunks(
    chunks: Sequence[Sequence[Path]],
    *,
    known: Container[str] = (),
    workers: int | None = None,
) -> Generator[list[DecodedFile], None, None]:
    """Yield each chunk's files decoded, in order, decoding the next chunk meanwhile.

    Parameters
    ----------
    chunks
        The files, chunk by chunk.
    known
        Content hashes whose files need no decoding (their images come back as None).
    workers
        Decoding threads (default :func:`default_workers`).
    """
    if not chunks:
        return
    pool = ThreadPoolExecutor(max_workers=workers or default_workers())
    try:
        pending = _submit(pool, chunks[0], known)
        for k in range(len(chunks)):
            current = [future.result() for future in pending]
            pending = _submit(pool, chunks[k + 1], known) if k + 1 < len(chunks) else []
            yield current
            del current
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _submit(
    pool: ThreadPoolExecutor, paths: Sequence[Path], known: Container[str]
) -> list[Future[DecodedFile]]:
    return [pool.submit(decode_file, path, known=known) for path in paths]
