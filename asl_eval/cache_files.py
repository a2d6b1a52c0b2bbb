"""Where asl-eval keeps its caches and how their files are written: the lowest layer, shared by
the predictions cache (:mod:`asl_eval.inference.cache`), the image-hash cache
(:mod:`asl_eval.audit.hash_cache`) and the ONNX exports.

Imports only the standard library.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["CACHE_ENV", "default_cache_dir", "installed_versions", "write_atomic"]

CACHE_ENV = "ASL_EVAL_CACHE_DIR"
"""The environment variable that moves every cache (tests point it at a temporary folder)."""


def default_cache_dir() -> Path:
    """``$ASL_EVAL_CACHE_DIR``, else ``$XDG_CACHE_HOME/asl-eval``, else ``~/.cache/asl-eval``.

    >>> import os
    >>> os.environ[CACHE_ENV] = "/tmp/x"; str(default_cache_dir())
    '/tmp/x'
    >>> del os.environ[CACHE_ENV]
    """
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "asl-eval"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: all or nothing (a
    killed run leaves the old file or none, never half of one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def installed_versions(packages: Iterable[str]) -> dict[str, str]:
    """Each package's installed version from its metadata (nothing is imported), or
    ``"not installed"``: part of a cache key, so an upgrade that can change the numbers
    invalidates what was cached."""
    found = {}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found
