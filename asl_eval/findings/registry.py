"""The registry of checks: each check is a small function from :class:`FindingsData` to zero
or more :class:`~asl_eval.findings.model.Finding`, registered with :func:`register_check`.

New checks plug in here; the report's findings section lists whatever the checks return, so
no template changes. A check that needs an optional section names it in ``requires`` and is
skipped with its ``missing`` note when the report lacks it; a check that finds the section
without the numbers it needs raises :class:`~asl_eval.findings.data.SkipCheck`.

Imports the findings' data and model modules only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from asl_eval.errors import MetricError
from asl_eval.findings.data import FindingsData
from asl_eval.findings.model import Finding

__all__ = ["Check", "register_check", "registered_checks", "unregister_check"]


@dataclass(frozen=True)
class Check:
    """One registered check.

    Attributes
    ----------
    key
        Stable name, the first part of its findings' ids (``"confusion"``).
    title
        What it looks for, in a few words (shown with skipped checks).
    run
        The check itself.
    order
        Registry order: ties in the ranking keep it (smaller first).
    requires
        Optional sections (analysis names) it reads; without them it is skipped.
    missing
        The note shown when it is skipped for lack of those sections.
    """

    key: str
    title: str
    run: Callable[[FindingsData], Sequence[Finding]]
    order: int = 100
    requires: tuple[str, ...] = ()
    missing: str = ""


_CHECKS: dict[str, Check] = {}


def register_check(check: Check, *, replace: bool = False) -> Check:
    """Register ``check`` under its key; a second check for one key is an error unless
    ``replace`` or it comes from the same module (a module imported again)."""
    known = _CHECKS.get(check.key)
    same_module = known is not None and known.run.__module__ == check.run.__module__
    if known is not None and not (replace or same_module):
        raise MetricError(f"a findings check is already registered as {check.key!r}.")
    _CHECKS[check.key] = check
    return check


def unregister_check(key: str) -> Check | None:
    """Remove the check registered as ``key`` (tests, plugins); return it, or None."""
    return _CHECKS.pop(key, None)


def registered_checks() -> tuple[Check, ...]:
    """Every registered check in registry order."""
    return tuple(sorted(_CHECKS.values(), key=lambda check: (check.order, check.key)))
