"""Lazy public names for a package (PEP 562): a name is imported from its module on first use.

The top-level package and the stage packages whose commands the CLI registers (audit, compare)
use it, so ``import asl_eval`` and ``asl-eval --help`` load neither numpy nor torch.
Standard library only; the bottom layer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(
    package: str, api: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` whose public names ``api`` maps to
    the modules defining them; a name, once imported, is kept in ``namespace`` (the
    package's globals) so it is looked up only once.

    >>> getattr_, dir_ = lazy_names("pkg", {"sqrt": "math"}, namespace := {})
    >>> getattr_("sqrt")(9.0), "sqrt" in namespace, dir_()
    (3.0, True, ['sqrt'])
    """

    def __getattr__(name: str) -> object:
        module = api.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *api} - {n for n in namespace if n.startswith("_")})

    return __getattr__, __dir__
