"""The restricted unpickler: a model file is unpickled under the policy, name by name.

:class:`RestrictedUnpickler` is a :class:`pickle.Unpickler` whose ``find_class`` resolves only
the globals :func:`asl_eval.trust.policy.import_policy` allows, and checks the object a name
resolves to as well: modules are refused, and a class or function must pass the policy under
the module and name it was *defined* in, so ``fastai.imports.os`` or
``fastai.torch_core.subprocess`` (re-exports) cannot smuggle ``os`` in. ``builtins.getattr`` and
cloudpickle's helpers resolve to guarded or inert stand-ins that never build code objects.
:class:`PickleModule` wraps an unpickler class as the ``pickle_module`` that ``torch.load`` and
fastai's ``load_learner`` accept; :data:`restricted_pickle_module` is the restricted one.

Imports the standard library, :mod:`asl_eval.errors` and :mod:`asl_eval.trust.policy`; the
packages a model file names (torch, fastai, ...) are imported only when the policy allows
them, by ``find_class``.
"""

from __future__ import annotations

import importlib
import inspect
import io
import pickle
import types
from collections.abc import Callable
from typing import IO, Any

from asl_eval.errors import UnsafeModelError
from asl_eval.trust.policy import CLOUDPICKLE_MODULES, SAFE_GLOBALS, import_policy
from asl_eval.trust.scan import normalize_global

__all__ = [
    "PickleModule",
    "RestrictedUnpickler",
    "restricted_load",
    "restricted_loads",
    "restricted_pickle_module",
]


class _CodeRecord:
    """What ``types.CodeType(*args)`` would have built; the code is never compiled."""

    def __init__(self, *args: object) -> None:
        self.qualname = args[12] if len(args) == 18 and isinstance(args[12], str) else None


class _Placeholder:
    """Stands in for a module or closure cell in the state of an embedded function; inert."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __repr__(self) -> str:
        return f"<not loaded: {self.label}>"


def _resolve_dotted(module_name: str, qualname: str, *, unwrap: bool = False) -> object:
    """``module.qualname`` from installed code, as pickle resolves it.

    With ``unwrap``, class attributes are read from the class ``__dict__`` and class- and
    static methods give their underlying function (what cloudpickle saw when it embedded one).
    """
    value: object = importlib.import_module(module_name)
    for part in qualname.split("."):
        if unwrap and isinstance(value, type) and part in vars(value):
            value = vars(value)[part]
            if isinstance(value, classmethod | staticmethod):
                value = value.__func__
        else:
            value = getattr(value, part)
    return value


def _checked_object(module: str, name: str, value: object) -> object:
    """Refuse modules and objects defined outside the policy, whatever name found them."""
    if isinstance(value, types.ModuleType):
        raise UnsafeModelError(
            f"The model file names {module}.{name}, which is the module {value.__name__}; "
            "model files may not name modules."
        )
    if (module, name) in SAFE_GLOBALS:
        return value
    if inspect.isclass(value) or inspect.isroutine(value):
        own_module = getattr(value, "__module__", None)
        own_name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
        if (
            isinstance(own_module, str)
            and isinstance(own_name, str)
            and (own_module, own_name) != (module, name)
        ):
            reason = import_policy(own_module, own_name)
            if reason:
                raise UnsafeModelError(
                    f"The model file names {module}.{name}, which is "
                    f"{own_module}.{own_name}: {reason}."
                )
    else:
        kind = type(value)
        reason = import_policy(kind.__module__, kind.__qualname__)
        if reason and kind.__module__ != "builtins":
            raise UnsafeModelError(
                f"The model file names {module}.{name}, an object of type "
                f"{kind.__module__}.{kind.__qualname__}: {reason}."
            )
    return value


def _guarded_getattr(owner: object, name: object) -> object:
    """``getattr`` as protocol-2 pickles use it: a named attribute of an allowed class."""
    if not inspect.isclass(owner) or not isinstance(name, str):
        raise UnsafeModelError(
            "The model file calls getattr on something other than a class "
            f"({type(owner).__name__}, {name!r}); asl-eval only allows getattr for "
            "class attributes (how protocol-2 pickles name methods)."
        )
    module, qualname = owner.__module__, f"{owner.__qualname__}.{name}"
    reason = import_policy(module, qualname)
    if reason:
        raise UnsafeModelError(f"The model file names {module}.{qualname}: {reason}.")
    return _checked_object(module, qualname, getattr(owner, name))


def _builtin_type(name: object) -> object:
    """cloudpickle's ``_builtin_type``: only bound methods and (inert) code records."""
    if name == "MethodType":
        return types.MethodType
    if name == "CodeType":
        return _CodeRecord
    raise UnsafeModelError(
        f"The model file asks cloudpickle for the type {name!r}; only MethodType and CodeType "
        "(which asl-eval never compiles) are allowed."
    )


def _make_function(code: object, base_globals: object, name: object, *rest: object) -> object:
    """cloudpickle's ``_make_function``, without the embedded code.

    The function is looked up by module and qualified name in the installed packages, under
    the same policy as any other global. Functions defined in ``__main__`` (a notebook or a
    script) or in modules outside the policy are refused.
    """
    module = base_globals.get("__name__") if isinstance(base_globals, dict) else None
    qualname = code.qualname if isinstance(code, _CodeRecord) else None
    qualname = qualname or (name if isinstance(name, str) else None)
    if not isinstance(module, str) or not qualname:
        raise UnsafeModelError(
            "The model file embeds the code of a function whose module is unknown; asl-eval "
            "does not run code embedded in model files."
        )
    reason = import_policy(module, qualname)
    if reason or "<locals>" in qualname or "<lambda>" in qualname:
        raise UnsafeModelError(_embedded_code_message(module, qualname, reason))
    try:
        value = _resolve_dotted(module, qualname, unwrap=True)
    except (ImportError, AttributeError) as error:
        raise UnsafeModelError(
            _embedded_code_message(module, qualname, f"it cannot be found ({error})")
        ) from error
    if not inspect.isroutine(value):
        raise UnsafeModelError(
            _embedded_code_message(module, qualname, "the installed object is not a function")
        )
    return _checked_object(module, qualname, value)


def _embedded_code_message(module: str, qualname: str, reason: str | None) -> str:
    """The error for a function whose code is embedded in the file and cannot be replaced."""
    if module == "__main__":
        where = (
            f"{qualname}, a function defined in the notebook or script that trained the model "
            "(its __main__), whose code cloudpickle embedded in the file"
        )
        fix = (
            f"Move {qualname} into an importable module, retrain or rebuild the learner "
            "with it, and export again; or write the safe format on a machine where you trust "
            "the file (asl-eval export-safe); or pass --trust-model (trust_model=True) to run "
            "the embedded code if you trust whoever made the file."
        )
    else:
        where = f"{module}.{qualname}, a function whose code cloudpickle embedded in the file"
        fix = (
            "Pass --trust-model (trust_model=True) only if you trust whoever made the file, "
            "or ask them for the safe format (asl-eval export-safe)."
        )
    why = f" ({reason})" if reason else ""
    return (
        f"The model file needs {where}{why}. asl-eval does not run code embedded in model "
        f"files. {fix}"
    )


def _function_setstate(function: object, state: object) -> None:
    """cloudpickle's ``_function_setstate``: the installed function is left untouched."""


_STAND_INS: dict[tuple[str, str], Callable[..., object]] = {
    ("builtins", "getattr"): _guarded_getattr,
    **{
        (module, name): value
        for module in CLOUDPICKLE_MODULES
        for name, value in (
            ("_builtin_type", _builtin_type),
            ("_make_function", _make_function),
            ("_function_setstate", _function_setstate),
            ("subimport", lambda name: _Placeholder(f"module {name}")),
            ("_make_empty_cell", lambda: _Placeholder("closure cell")),
            ("_make_cell", lambda value=None: _Placeholder("closure cell")),
        )
    },
}


class RestrictedUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` that only resolves globals :func:`import_policy` allows.

    ``builtins.getattr`` and cloudpickle's helpers resolve to inert or guarded stand-ins; every
    other allowed name is imported from installed code and checked again after resolution.
    """

    def find_class(self, module: str, name: str) -> Any:
        """Resolve ``module.name`` under the policy or raise :class:`UnsafeModelError`."""
        module, name = normalize_global(module, name)
        reason = import_policy(module, name)
        if reason:
            raise UnsafeModelError(f"The model file names {module}.{name}: {reason}.")
        stand_in = _STAND_INS.get((module, name))
        if stand_in is not None:
            return stand_in
        try:
            value = _resolve_dotted(module, name)
        except (ImportError, AttributeError) as error:
            raise pickle.UnpicklingError(f"cannot find {module}.{name}: {error}") from error
        return _checked_object(module, name, value)


def restricted_load(file: IO[bytes], **kwargs: Any) -> Any:
    """``pickle.load`` through :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(file, **kwargs).load()


def restricted_loads(data: bytes, **kwargs: Any) -> Any:
    """``pickle.loads`` through :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(io.BytesIO(data), **kwargs).load()


class PickleModule:
    """A stand-in for the :mod:`pickle` module that unpickles with ``unpickler``.

    ``torch.load(..., pickle_module=...)`` (and so fastai's ``load_learner``) uses a pickle
    module's ``Unpickler`` for the main object, ``load`` for the small pickles around it in
    torch's legacy format, ``UnpicklingError``, and ``__name__``; nothing else.
    """

    UnpicklingError = pickle.UnpicklingError

    def __init__(self, unpickler: type[pickle.Unpickler], *, name: str) -> None:
        self.Unpickler = unpickler
        self.__name__ = name

    def load(self, file: IO[bytes], **kwargs: Any) -> Any:
        """``pickle.load`` through this module's unpickler."""
        return self.Unpickler(file, **kwargs).load()

    def loads(self, data: bytes, **kwargs: Any) -> Any:
        """``pickle.loads`` through this module's unpickler."""
        return self.load(io.BytesIO(data), **kwargs)

    def __repr__(self) -> str:
        return f"<pickle module {self.__name__} ({self.Unpickler.__qualname__})>"


restricted_pickle_module = PickleModule(
    RestrictedUnpickler, name="asl_eval.trust.restricted_pickle_module"
)
"""A stand-in for the ``pickle`` module, for ``torch.load(..., pickle_module=...)``."""
