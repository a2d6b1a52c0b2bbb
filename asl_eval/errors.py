"""The one error hierarchy of asl-eval.

Every error the library raises on purpose derives from :class:`AslEvalError` and from the
builtin that matches its meaning, so ``except ValueError`` in user code keeps working. The CLI
catches :class:`AslEvalError` in one place, prints the message and exits with code 1.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "AslEvalError",
    "CamError",
    "InputError",
    "LabelError",
    "LedgerError",
    "MetricError",
    "ModelLoadError",
    "PickleFormatError",
    "ReportError",
    "TrainingError",
    "UnreadableImage",
    "UnsafeModelError",
    "first_few",
    "printable",
]


class AslEvalError(Exception):
    """Base class of every error asl-eval raises deliberately."""


class InputError(AslEvalError, ValueError):
    """Input images or folders are missing, empty or unusable."""


class UnreadableImage(InputError):
    """One file cannot be used as an image.

    ``reason`` is the short ledger wording (one of :data:`asl_eval.inputs.EXCLUSION_REASONS`);
    ``detail`` is what Pillow or the operating system said, for logs and error messages.
    """

    def __init__(self, path: Path, reason: str, detail: str = "") -> None:
        message = f"{path}: {reason}" + (f" ({detail})" if detail else "")
        super().__init__(message)
        self.path = path
        self.reason = reason
        self.detail = detail


class LedgerError(AslEvalError, ValueError):
    """A ledger of evaluated and excluded files is inconsistent (a file twice, an unknown
    status): a bug in the caller, since every input file must be counted exactly once."""


class LabelError(AslEvalError, ValueError):
    """True labels cannot be derived, or disagree with the model's classes."""


class ModelLoadError(AslEvalError, ValueError):
    """A model file cannot be loaded (missing, corrupt, untrusted or incompatible)."""


class UnsafeModelError(ModelLoadError):
    """A pickled model names code outside the allowlist and was refused before loading."""


class PickleFormatError(ModelLoadError):
    """A byte stream is not a complete pickle; ``truncated`` tells an incomplete one apart."""

    def __init__(self, message: str, *, truncated: bool) -> None:
        super().__init__(message)
        self.truncated = truncated


class CamError(AslEvalError, ValueError):
    """A heatmap cannot be computed: no usable target layer, an unknown method or class."""


class TrainingError(AslEvalError, RuntimeError):
    """Training cannot start or cannot finish (for example, pretrained weights are unavailable)."""


class ReportError(AslEvalError, ValueError):
    """A report cannot be built, read or written from what was given."""


class MetricError(AslEvalError, ValueError):
    """Data given to a metric or to a :class:`~asl_eval.predictions.Predictions` table does not
    fit together (different lengths, probabilities of the wrong shape or range), or an option is
    out of its range."""


# C0 controls (ESC starts terminal escape sequences; CR and backspace overwrite what was
# printed), DEL, C1 controls (0x9b is a one-byte CSI), and the Unicode line separators and
# bidirectional overrides that reorder what a reader sees.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, *, keep: str = "") -> str:
    """``text`` safe to print on a terminal: control characters (terminal escape sequences,
    carriage returns, bidirectional overrides) written as visible ``\\xNN`` escapes, except those
    in ``keep`` (``keep="\\n"`` for a multi-line message asl-eval wrote itself).

    File names and labels come from the user's disk and reach the terminal through messages and
    the labels dry run; nothing in them may move the cursor, recolour or rewrite the screen.

    >>> printable("A\\x1b[2J")
    'A\\\\x1b[2J'
    >>> printable("two\\nlines", keep="\\n")
    'two\\nlines'
    """
    return _CONTROL.sub(lambda m: m.group() if m.group() in keep else _escape(m), str(text))


def first_few(items: Sequence[object], limit: int = 3) -> str:
    """Format the first ``limit`` items for an error message, noting how many were left out.

    >>> first_few(["a.png", "b.png", "c.png", "d.png"])
    'a.png, b.png, c.png (and 1 more)'
    """
    shown = ", ".join(printable(item) for item in items[:limit])
    rest = len(items) - limit
    return f"{shown} (and {rest} more)" if rest > 0 else shown
