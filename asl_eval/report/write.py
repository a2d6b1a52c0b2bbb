"""Writing the report files: everything is rendered before the first file is touched, and the
three files (HTML, JSON, CSV) are written all or nothing.

Each file is first written in full to a temporary file next to its target; only then are the
three moved into place. If a move fails, the files already moved are rolled back (their
previous versions restored, or removed where there were none) and every temporary file is
removed, so a report folder never holds a new HTML with an old JSON, or a JSON without its HTML.

Imports pandas, the report's dataclasses and its HTML and JSON renderers.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from asl_eval.errors import ReportError, printable
from asl_eval.report.data import ReportContext
from asl_eval.report.render import render_html
from asl_eval.report.serialize import render_json

__all__ = [
    "FORMULA_START",
    "ReportFiles",
    "atomic_write_text",
    "check_report_name",
    "neutralize_formula",
    "predictions_frame",
    "report_paths",
    "write_report",
    "write_together",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportFiles:
    """Where one report went; ``findings`` is what it found, in a few lines for a terminal
    (empty unless the pipeline ran the findings stage)."""

    html: Path
    json: Path
    predictions_csv: Path
    findings: str = ""


def _unique_sibling(path: Path, suffix: str, make: Callable[[Path], object]) -> Path:
    """Call ``make`` on a fresh hidden name next to ``path`` (``.NAME.<random>.SUFFIX``),
    retrying while the name exists; ``make`` must refuse an existing name."""
    for _ in range(100):
        candidate = path.parent / f".{path.name}.{secrets.token_hex(6)}.{suffix}"
        try:
            make(candidate)
        except FileExistsError:
            continue
        return candidate
    raise ReportError(f"Could not create a temporary file next to {path}; clean up its folder.")


def _write_temporary(path: Path, text: str) -> Path:
    """``text`` in a new temporary file next to ``path`` (removed again if writing fails).

    Created with mode 0o666 so that the operating system applies the process's umask, as for
    any file the user writes (``tempfile.mkstemp`` makes 0o600 files, and reading the umask
    means setting it, which is not thread-safe). ``O_EXCL`` never follows or reuses an
    existing name.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    handles: list[int] = []
    temporary = _unique_sibling(
        path, "tmp", lambda name: handles.append(os.open(name, flags, 0o666))
    )
    try:
        with os.fdopen(handles[0], "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def atomic_write_text(path: Path, text: str) -> Path:
    """Write to a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _write_temporary(path, text)
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def _keep_copy(path: Path) -> Path | None:
    """A second name for the current file at ``path`` (a hard link, or a copy where links are
    not supported), so it can be put back; None when there is no file."""
    if not path.is_file():
        return None

    def make(name: Path) -> None:
        try:
            os.link(path, name)
        except FileExistsError:
            raise
        except OSError:  # no hard links on this file system
            shutil.copy2(path, name)

    return _unique_sibling(path, "bak", make)


def _remove(path: Path) -> None:
    """Remove a file of ours; a failure is logged, never raised over the original error."""
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        logger.error("could not remove %s: %s", path, error)


def _restore(backup: Path, target: Path) -> bool:
    """Put a kept previous version back; a failure is logged with where the copy is."""
    try:
        os.replace(backup, target)
    except OSError as error:
        logger.error("could not restore %s (its previous version is %s): %s", target, backup, error)
        return False
    return True


def _swap_in(pairs: Sequence[tuple[Path, Path]]) -> None:
    """Move each temporary file over its target; on any failure put every target back."""
    done: list[tuple[Path, Path | None]] = []
    kept: list[Path] = []
    try:
        for target, temporary in pairs:
            backup = _keep_copy(target)
            if backup is not None:
                kept.append(backup)
            os.replace(temporary, target)
            done.append((target, backup))
    except BaseException:
        for target, backup in reversed(done):
            if backup is None:
                _remove(target)
            elif not _restore(backup, target):
                kept.remove(backup)  # the only copy of the previous version: leave it
        for name in [*kept, *(temporary for _, temporary in pairs)]:
            _remove(name)
        raise
    for name in kept:
        _remove(name)


def write_together(files: Sequence[tuple[Path, str]]) -> None:
    """Write ``(path, text)`` pairs all or nothing.

    Every text goes to a temporary file next to its target first; then the temporaries are
    moved into place. If anything fails, every target is left as it was (a previous version
    restored, a new file removed) and no temporary file remains.

    Raises
    ------
    ReportError
        A target is a folder, or the operating system refused a write or a move.
    """
    folders = [path for path, _ in files if path.is_dir()]
    if folders:
        raise ReportError(
            f"{printable(folders[0])} is a folder, so the report cannot be written there; "
            "remove it, or pass another --name or --out. Nothing was written."
        )
    temporaries: list[Path] = []
    try:
        for path, text in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporaries.append(_write_temporary(path, text))
        _swap_in(
            [(path, temporary) for (path, _), temporary in zip(files, temporaries, strict=True)]
        )
    except OSError as error:
        for temporary in temporaries:
            _remove(temporary)
        raise ReportError(
            f"Could not write the report ({printable(error)}); no file was changed: "
            "previous versions, if any, are as they were."
        ) from error
    except BaseException:
        for temporary in temporaries:
            _remove(temporary)
        raise


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""How text a spreadsheet would run as a formula begins."""


def neutralize_formula(value: object) -> object:
    """Prefix a quote to text a spreadsheet would run as a formula (``=HYPERLINK(...)``), and to
    text that already begins with a quote, so that dropping one leading quote
    (:func:`asl_eval.compare.reading.restore_formula`) gives back every name exactly.

    >>> neutralize_formula("=cmd|' /C calc'!A0.jpg"), neutralize_formula("A")
    ("'=cmd|' /C calc'!A0.jpg", 'A')
    >>> neutralize_formula("'=x.jpg")
    "''=x.jpg"
    """
    if isinstance(value, str) and value.startswith((*FORMULA_START, "'")):
        return "'" + value
    return value


def predictions_frame(context: ReportContext) -> pd.DataFrame:
    """Every evaluated image of every set: set, path, path relative to the set's folder and
    SHA-256 (empty when unknown), true and predicted class, correct, confidence, loss."""
    frames = []
    for predictions in context.predictions:
        frame = predictions.to_frame()[
            ["path", "relpath", "sha256", "y_true", "y_pred", "correct", "confidence", "loss"]
        ]
        frame.insert(0, "set", predictions.name)
        frames.append(frame)
    combined = pd.concat(frames, ignore_index=True)
    for column in ("set", "path", "relpath", "y_true", "y_pred"):
        combined[column] = combined[column].map(neutralize_formula)
    return combined


_SEPARATORS = ("/", "\\", os.sep, os.altsep or "/")


def check_report_name(name: str) -> str:
    """``name`` if it is a plain file name for the report (``--name``), else a
    :class:`ReportError`: a name with a path separator, an absolute path, ``.``, ``..`` or an
    empty name would put the files somewhere other than ``--out``.

    >>> check_report_name("kaggle-run")
    'kaggle-run'
    """
    problem = ""
    if not name.strip():
        problem = "is empty"
    elif name in {".", ".."}:
        problem = "is a reference to a folder"
    elif any(sep in name for sep in _SEPARATORS) or Path(name).is_absolute():
        problem = "contains a path separator"
    elif "\x00" in name:
        problem = "contains a NUL character"
    if problem:
        raise ReportError(
            f"The report name {printable(repr(name))} {problem}; pass a plain file name such as "
            "--name kaggle-run, and choose the folder with --out."
        )
    return name


def report_paths(out: str | Path, name: str) -> ReportFiles:
    """``out`` is a folder (files ``<name>.html`` ...) or an ``.html`` path (siblings share its
    stem). ``name`` must be a plain file name (:func:`check_report_name`)."""
    check_report_name(name)
    out = Path(out)
    if out.suffix.lower() in {".html", ".htm"}:
        folder, stem = out.parent, out.stem
    else:
        folder, stem = out, name
    if folder.exists() and not folder.is_dir():
        raise ReportError(
            f"{printable(folder)} is a file; pass a folder or an .html path as --out."
        )
    return ReportFiles(
        html=folder / f"{stem}.html",
        json=folder / f"{stem}.json",
        predictions_csv=folder / f"{stem}.predictions.csv",
    )


def write_report(context: ReportContext, out: str | Path, *, name: str = "report") -> ReportFiles:
    """Render everything first, then write the three files all or nothing
    (:func:`write_together`).

    Rendering happens before any file is touched, so an error while building the page leaves
    no output behind; a failure while writing leaves the previous report, if any, as it was.
    """
    files = report_paths(out, name)
    html = render_html(context)
    json_text = render_json(context)
    csv_text = predictions_frame(context).to_csv(index=False, lineterminator="\n")
    write_together([(files.json, json_text), (files.predictions_csv, csv_text), (files.html, html)])
    return files
