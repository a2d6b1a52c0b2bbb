"""The one error hierarchy of asl-eval.

Every error the library raises on purpose derives from :class:`AslEvalError` and from the
builtin that matches its meaning, so ``except ValueError`` in user code keeps working. The CLI
catches :class:`AslEvalError` in one place, prints the message and exits with code 1.
"""

from __future__ import annotations

from collections.abc import Sequence


class AslEvalError(Exception):
    """Base class of every error asl-eval raises deliberately."""


class InputError(AslEvalError, ValueError):
    """Input images or folders are missing, empty or unusable."""


class LabelError(AslEvalError, ValueError):
    """True labels cannot be derived, or disagree with the model's classes."""


class ModelLoadError(AslEvalError, ValueError):
    """A model file cannot be loaded (missing, corrupt, untrusted or incompatible)."""


class UnsafeModelError(ModelLoadError):
    """A pickled model names code outside the allowlist and was refused before loading."""


class TrainingError(AslEvalError, RuntimeError):
    """Training cannot start or cannot finish (for example, pretrained weights are unavailable)."""


class ReportError(AslEvalError, ValueError):
    """A report cannot be built from the given predictions."""


def first_few(items: Sequence[object], limit: int = 3) -> str:
    """Format the first ``limit`` items for an error message, noting how many were left out.

    >>> first_few(["a.png", "b.png", "c.png", "d.png"])
    'a.png, b.png, c.png (and 1 more)'
    """
    shown = ", ".join(str(item) for item in items[:limit])
    rest = len(items) - limit
    return f"{shown} (and {rest} more)" if rest > 0 else shown
