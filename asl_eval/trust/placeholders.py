"""Inert stand-ins for what a model file names but asl-eval never runs.

:class:`FunctionPlaceholder` takes the place of a function defined in the notebook or
script that trained the model (its ``__main__``), typically the label function of the
DataBlock, or of a local function of fastai's own code that a file embeds: evaluation derives
its own labels, so the learner loads without it, and calling it raises
:class:`~asl_eval.errors.ModelLoadError`. :class:`Placeholder` stands in for modules and
closure cells of functions cloudpickle embedded; :class:`CodeRecord` for their code objects,
which are never compiled.

Imports the standard library and :mod:`asl_eval.errors` only.
"""

from __future__ import annotations

from asl_eval.errors import ModelLoadError

__all__ = ["CodeRecord", "FunctionPlaceholder", "Placeholder"]


class CodeRecord:
    """What ``types.CodeType(*args)`` would have built; the code is never compiled."""

    def __init__(self, *args: object) -> None:
        self.qualname = args[12] if len(args) == 18 and isinstance(args[12], str) else None


class Placeholder:
    """Stands in for a module or closure cell in the state of an embedded function; inert."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __repr__(self) -> str:
        return f"<not loaded: {self.label}>"


class FunctionPlaceholder:
    """In place of a function whose code a model file embeds and asl-eval never runs: one
    defined in the notebook or script that trained the model (``__main__``), or a local
    function of fastai's own code (fasttransform's wrapper of a label function without a
    ``__name__``). Holds nothing of that code; calling it raises :class:`ModelLoadError`."""

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name

    def __call__(self, *args: object, **kwargs: object) -> object:
        where = (
            "the notebook or script that trained it (its __main__)"
            if self.module == "__main__"
            else f"{self.module}, as a local function whose code the file embeds"
        )
        raise ModelLoadError(
            f"The model's {self.name} was defined in {where} and was not loaded: asl-eval "
            "never runs code from a model file. Evaluation does not need it (asl-eval derives "
            "labels itself, e.g. with --label-regex or --labels-from); to use the learner's own "
            f"labelling, define {self.name.rsplit('.', 1)[-1]} in an importable module, rebuild "
            "the learner with it and export again."
        )

    def __repr__(self) -> str:
        return f"<{self.module}.{self.name}: not loaded>"

    def __reduce__(self) -> tuple[object, ...]:
        return (FunctionPlaceholder, (self.module, self.name))
