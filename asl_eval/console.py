"""Progress bars for the command line: :mod:`asl_eval.progress` events drawn with ``rich``.

Everything here writes to stderr, never stdout, so what a command prints as its result (and
what scripts parse) is the same with or without progress. In a terminal the bars are live; when
stderr is not a terminal and progress was asked for (``--progress``), the bars' final state is
printed once, when the step ends.

Layer: just under :mod:`asl_eval.cli`, its only user; imports ``rich`` and
:mod:`asl_eval.progress` and :mod:`asl_eval.errors`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from asl_eval.errors import printable
from asl_eval.progress import Progress as ProgressCallback
from asl_eval.progress import ProgressEvent

__all__ = ["progress_bars", "progress_enabled"]

_VERBS = {"decode": "decoding", "predict": "predicting", "cam": "Grad-CAM on", "train": "training"}


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
