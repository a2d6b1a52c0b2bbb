"""Progress reporting: a callback the library calls, and nothing else.

The library never prints. A long step (decoding and predicting a set, hashing or measuring its
images, Grad-CAM images, training epochs) takes an optional ``progress`` callback and calls it
with a :class:`ProgressEvent` as work gets done; without one it stays silent. The command line
renders the events with ``rich`` on stderr (:mod:`asl_eval.console`); a notebook or a test can
pass any callable, for example ``events.append``.

Layer: the bottom, beside :mod:`asl_eval.errors`; imports only the standard library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

__all__ = ["Progress", "ProgressEvent", "Step", "notify"]

Step = Literal["decode", "predict", "cam", "train", "hash", "measure", "features"]
"""The kinds of long step that report progress."""


@dataclass(frozen=True)
class ProgressEvent:
    """``done`` of ``total`` units of one step are finished.

    Attributes
    ----------
    step
        What kind of work: ``"decode"`` and ``"predict"`` count images of one set, as do
        ``"hash"`` (the leakage audit's perceptual hashes), ``"measure"`` (the domains
        analysis' image properties) and ``"features"`` (the embedding audit's penultimate
        features); ``"cam"`` counts Grad-CAM images, ``"train"`` counts epochs.
    name
        What the work is on: a set's name, or ``"epochs"``.
    done
        Units finished so far, from 0 to ``total``; never decreases for one ``(step, name)``.
    total
        Units in all.

    Examples
    --------
    >>> ProgressEvent("predict", "test", 512, 870).fraction
    0.5885057471264368
    """

    step: Step
    name: str
    done: int
    total: int

    @property
    def fraction(self) -> float:
        """``done / total`` (1.0 for an empty step)."""
        return self.done / self.total if self.total else 1.0


Progress: TypeAlias = Callable[[ProgressEvent], object] | None
"""A callback that receives progress events, or None for silence."""


def notify(progress: Progress, step: Step, name: str, done: int, total: int) -> None:
    """Call ``progress`` with one event, or do nothing when it is None.

    >>> events = []
    >>> notify(events.append, "train", "epochs", 1, 4)
    >>> notify(None, "train", "epochs", 2, 4)
    >>> events
    [ProgressEvent(step='train', name='epochs', done=1, total=4)]
    """
    if progress is not None:
        progress(ProgressEvent(step, name, done, total))
