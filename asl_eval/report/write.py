"""Writing the report files: everything is rendered before the first file is touched, and each
file is replaced atomically, so a crash never leaves a half-written file.

Imports pandas, the report's dataclasses and its HTML and JSON renderers.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from asl_eval.errors import ReportError
from asl_eval.report.data import ReportContext
from asl_eval.report.render import render_html
from asl_eval.report.serialize import render_json

__all__ = [
    "ReportFiles",
    "atomic_write_text",
    "neutralize_formula",
    "predictions_frame",
    "report_paths",
    "write_report",
]


@dataclass(frozen=True)
class ReportFiles:
    """Where one report went."""

    html: Path
    json: Path
    predictions_csv: Path


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new, empty file next to ``path``, opened for writing.

    Created with mode 0o666 so that the operating system applies the process's umask, as for
    any file the user writes (``tempfile.mkstemp`` makes 0o600 files, and reading the umask
    means setting it, which is not thread-safe). ``O_EXCL`` never follows or reuses an
    existing name.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temporary = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue
    raise ReportError(f"Could not create a temporary file next to {path}; clean up its folder.")


def atomic_write_text(path: Path, text: str) -> Path:
    """Write to a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = _create_temporary(path)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralize_formula(value: object) -> object:
    """Prefix a quote to text a spreadsheet would run as a formula (``=HYPERLINK(...)``).

    >>> neutralize_formula("=cmd|' /C calc'!A0.jpg"), neutralize_formula("A")
    ("'=cmd|' /C calc'!A0.jpg", 'A')
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def predictions_frame(context: ReportContext) -> pd.DataFrame:
    """Every evaluated image of every set: set, path, true and predicted class, confidence."""
    frames = []
    for predictions in context.predictions:
        frame = predictions.to_frame()[
            ["path", "y_true", "y_pred", "correct", "confidence", "loss"]
        ]
        frame.insert(0, "set", predictions.name)
        frames.append(frame)
    combined = pd.concat(frames, ignore_index=True)
    for column in ("set", "path", "y_true", "y_pred"):
        combined[column] = combined[column].map(neutralize_formula)
    return combined


def report_paths(out: str | Path, name: str) -> ReportFiles:
    """``out`` is a folder (files ``<name>.html`` ...) or an ``.html`` path (siblings share its
    stem)."""
    out = Path(out)
    if out.suffix.lower() in {".html", ".htm"}:
        folder, stem = out.parent, out.stem
    else:
        folder, stem = out, name
    if folder.exists() and not folder.is_dir():
        raise ReportError(f"{folder} is a file; pass a folder or an .html path as --out.")
    return ReportFiles(
        html=folder / f"{stem}.html",
        json=folder / f"{stem}.json",
        predictions_csv=folder / f"{stem}.predictions.csv",
    )


def write_report(context: ReportContext, out: str | Path, *, name: str = "report") -> ReportFiles:
    """Render everything first, then write the three files (each atomically).

    Rendering happens before any file is touched, so an error while building the page leaves
    no partial output behind.
    """
    files = report_paths(out, name)
    html = render_html(context)
    json_text = render_json(context)
    csv_text = predictions_frame(context).to_csv(index=False, lineterminator="\n")
    atomic_write_text(files.json, json_text)
    atomic_write_text(files.predictions_csv, csv_text)
    atomic_write_text(files.html, html)
    return files
