"""Progress bars for the command line: :mod:`asl_eval.progress` events drawn with ``rich``.

Everything here writes to stderr, never stdout, so what a command prints as its result (and
what scripts parse) is the same with or without progress. In a terminal the bars are live; when
stderr is not a terminal and progress was asked for (``--progress``), the bars' final state is
printed once, when the step ends.

Every command shows progress the same way: :data:`ShowProgress` is its ``--progress/--quiet``
option, :func:`progress_enabled` reads it and :func:`progress_bars` draws.

Layer: just above :mod:`asl_eval.progress` and :mod:`asl_eval.errors`, so every command module
can use it (:mod:`asl_eval.cli`, :mod:`asl_eval.audit_cli`, :mod:`asl_eval.stress.command`);
no stage calls it. Imports Typer (the option), :mod:`asl_eval.progress` and
:mod:`asl_eval.errors`; ``rich`` only when bars are drawn, so ``asl-eval --help`` stays light.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from asl_eval.errors import printable
from asl_eval.progress import Progress as ProgressCallback
from asl_eval.progress import ProgressEvent

if TYPE_CHECKING:
    from rich.progress import TaskID

__all__ = ["ShowProgress", "progress_bars", "progress_enabled"]

ShowProgress = Annotated[
    bool | None,
    typer.Option(
        "--progress/--quiet",
        help="Progress bars on stderr (default: only when stderr is a terminal).",
        show_default=False,
    ),
]
"""A command's ``--progress/--quiet`` option: True, False, or None (decide by the terminal)."""

_VERBS = {
    "decode": "decoding",
    "predict": "predicting",
    "cam": "Grad-CAM on",
    "train": "training",
    "hash": "hashing",
    "measure": "measuring",
    "features": "features of",
}


def progress_enabled(requested: bool | None) -> bool:
    """``--progress`` (True) or ``--quiet`` (False) as given; by default, on when stderr is a
    terminal."""
    if requested is not None:
        return requested
    return sys.stderr.isatty()


@contextmanager
def progress_bars(enabled: bool) -> Iterator[ProgressCallback]:
    """A progress callback that draws one bar per step and set on stderr, or None (silence)
    when not ``enabled``. The bars are closed when the block ends."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        redirect_stdout=False,
        redirect_stderr=False,
    )
    tasks: dict[tuple[str, str], TaskID] = {}

    def update(event: ProgressEvent) -> None:
        key = (event.step, event.name)
        if key not in tasks:
            subject = escape(printable(event.name))  # a set's name is the user's text
            description = f"{_VERBS.get(event.step, event.step)} {subject}"
            tasks[key] = bars.add_task(description, total=event.total)
        bars.update(tasks[key], completed=event.done, total=event.total)

    with bars:
        yield update
