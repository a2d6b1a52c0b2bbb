"""The restricted unpickler: names, calls and state of a model file, each checked when it runs.

:class:`RestrictedUnpickler` is a :class:`~asl_eval.trust.guards.GuardedUnpickler` whose

- ``find_class`` resolves only names on the exact allowlist (:func:`import_policy`), refuses
  modules, grants what it returns (tracked by identity), and gives inert or guarded stand-ins for
  ``builtins.getattr`` and cloudpickle's helpers; a ``__main__`` name resolves to a
  :class:`~asl_eval.trust.placeholders.FunctionPlaceholder`, which may be stored but never
  called or instantiated;
- calls (``REDUCE``, ``NEWOBJ``, ``INST``, ``OBJ``) go only to granted objects whose entry has an
  argument schema matching the arguments, plus the entry's validator (:data:`VALIDATORS`: tensor
  extents within their storage, the nested call of ``_rebuild_from_type_v2``, the items of
  ``functools.reduce``, the exact attribute of ``getattr``);
- ``BUILD`` only sets plain-keyed, non-dunder state on instances (never classes, modules or
  functions, never granted objects) of classes whose exports were seen receiving state;
- items are only added to lists, dicts, sets and the classes seen receiving them.

:class:`PickleModule` wraps an unpickler class as the ``pickle_module`` that ``torch.load`` and
fastai's ``load_learner`` accept.

Imports the standard library, :mod:`asl_eval.errors` and the other ``asl_eval.trust`` modules
except the loader; installed packages only when the allowlist names them, in ``find_class``.
"""

from __future__ import annotations

import importlib
import inspect
import io
import logging
import types
from collections.abc import Callable
from typing import IO, Any

from asl_eval.errors import UnsafeModelError
from asl_eval.trust.allowlist import Entry, Signature, key, load_allowlist, value_token
from asl_eval.trust.caps import ResourceLimitError, check_tensor_extent
from asl_eval.trust.guards import GuardedUnpickler
from asl_eval.trust.placeholders import CodeRecord, FunctionPlaceholder, Placeholder
from asl_eval.trust.policy import import_policy, own_code_message
from asl_eval.trust.scan import normalize_global

__all__ = [
    "MAIN_PLACEHOLDER",
    "PickleModule",
    "RestrictedUnpickler",
    "restricted_load",
    "restricted_loads",
    "restricted_pickle_module",
]

logger = logging.getLogger(__name__)

MAIN_PLACEHOLDER = "__main__:*"
"""The granted name of every ``__main__`` placeholder (its shape token in the allowlist)."""

_CLOUDPICKLE = ("cloudpickle.cloudpickle", "cloudpickle.cloudpickle_fast")
_COLLECTIONS = ("OrderedDict", "defaultdict")


def _resolve(module_name: str, qualname: str, *, unwrap: bool = False) -> object:
    """``module.qualname`` from installed code; with ``unwrap``, class attributes come from the
    class ``__dict__`` and class/static methods give their function (what cloudpickle saw)."""
    value: object = importlib.import_module(module_name)
    for part in qualname.split("."):
        if unwrap and isinstance(value, type) and part in vars(value):
            value = vars(value)[part]
            if isinstance(value, classmethod | staticmethod):
                value = value.__func__
        else:
            value = getattr(value, part)
    if isinstance(value, types.ModuleType):
        raise UnsafeModelError(
            f"The model file names {module_name}.{qualname}, which is the module "
            f"{value.__name__}; model files may not name modules."
        )
    return value


def _plain_keys(state: object, what: str, dunders: frozenset[str] = frozenset()) -> None:
    """Refuse state that is not a dict of plain string keys (dunders only from ``dunders``:
    the few real exports keep in instance state, such as ``__signature__``)."""
    if state is None:
        return
    if type(state) is not dict:
        raise UnsafeModelError(f"The model file sets {what} from a {type(state).__qualname__}.")
    for name in state:
        if type(name) is not str or (name.startswith("__") and name not in dunders):
            raise UnsafeModelError(f"The model file sets the attribute {name!r} of {what}.")


MAX_INSPECTED = 5_000_000
"""The most container items the argument checks walk in one load (a few seconds of Python);
real exports need a few thousand."""


class RestrictedUnpickler(GuardedUnpickler):
    """Unpickles under the exact allowlist, with guarded calls and state (see the module)."""

    def __init__(self, file: Any, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self._allowlist = load_allowlist()
        self._inspected = [MAX_INSPECTED]  # argument items the checks may still walk
        self._main_names: list[str] = []
        self._stand_ins: dict[str, Callable[..., object]] = {
            "builtins:getattr": self._getattr,
            **{key(m, "_builtin_type"): self._builtin_type for m in _CLOUDPICKLE},
            **{key(m, "_make_function"): self._make_function for m in _CLOUDPICKLE},
            **{key(m, "_function_setstate"): self._function_setstate for m in _CLOUDPICKLE},
            **{key(m, "subimport"): self._subimport for m in _CLOUDPICKLE},
            **{key(m, "_make_empty_cell"): self._make_cell for m in _CLOUDPICKLE},
            **{key(m, "_make_cell"): self._make_cell for m in _CLOUDPICKLE},
        }

    # ------------------------------------------------------------------ names

    def name_refusal(self, module: str, name: str) -> str | None:
        """Why ``module.name`` may not be resolved (the policy), or None."""
        return import_policy(module, name)

    def find_class(self, module: str, name: str) -> Any:
        """Resolve an allowed name (granting it) or raise :class:`UnsafeModelError`."""
        module, name = normalize_global(module, name)
        reason = self.name_refusal(module, name)
        if reason:
            raise UnsafeModelError(f"The model file names {module}.{name}: {reason}.")
        if module == "__main__":
            return self._main_placeholder(name)
        stand_in = self._stand_ins.get(key(module, name))
        if stand_in is not None:
            return self.grant(stand_in, key(module, name))
        # An allowed name that is missing here (another version of a package) raises
        # ImportError or AttributeError, which the loader words as a missing dependency.
        return self.grant(_resolve(module, name), key(module, name))

    def _main_placeholder(self, name: str) -> object:
        logger.warning(
            "the model names %s from the notebook or script that trained it (__main__); it is "
            "replaced by an inert placeholder (evaluation does not use it; calling it fails)",
            name,
        )
        self._main_names.append(name)
        return self.grant(FunctionPlaceholder("__main__", name), MAIN_PLACEHOLDER)

    # ------------------------------------------------------------------ calls

    def _entry(self, func: object) -> tuple[str, Entry]:
        name = self.granted.get(id(func))
        if name == MAIN_PLACEHOLDER:
            label = getattr(func, "name", "?")
            raise UnsafeModelError(own_code_message(f"__main__.{label}"))
        entry = self._allowlist.entries.get(name) if name else None
        if name is None or entry is None:
            raise UnsafeModelError(
                f"The model file calls a {type(func).__qualname__} that no allowed name "
                "resolved to; asl-eval only calls what its allowlist names."
            )
        return name, entry

    def check_call(self, kind: str, func: object, args: tuple[object, ...], kwargs: dict) -> None:
        """Refuse a call that is not one real exports make (see the module docstring)."""
        name, entry = self._entry(func)
        schemas = entry.call if kind == "call" else entry.new
        signature = schemas.get(len(args))
        if signature is None and kind == "call" and entry.varargs and len(args) <= 256:
            signature = Signature((entry.varargs,) * len(args))
        if signature is None or kwargs:
            seen = sorted(schemas)
            raise UnsafeModelError(
                f"The model file calls {name.replace(':', '.')} with {len(args)} argument(s)"
                f"{' and keywords' if kwargs else ''}; real exports "
                + (f"pass {' or '.join(map(str, seen))}." if seen else "never call it.")
            )
        self._check_signature(name, signature, args)
        validator = VALIDATORS.get(name)
        if validator is not None:
            validator(self, args)

    def _check_signature(self, name: str, signature: Signature, args: tuple[object, ...]) -> None:
        for index, (position, value) in enumerate(zip(signature.positions, args, strict=True)):
            reason = position.refusal(value, value_token(value, self.granted, self._inspected))
            if self._inspected[0] < 0:
                raise ResourceLimitError(
                    f"The model file makes the checks inspect more than {MAX_INSPECTED:,} "
                    "argument items; refused."
                )
            if reason:
                raise UnsafeModelError(
                    f"The model file calls {name.replace(':', '.')} with {reason} as "
                    f"argument {index + 1}."
                )

    # ------------------------------------------------------------------ state and items

    def check_build(self, instance: object, state: object) -> None:
        """Refuse state on anything but a fresh instance of a class seen receiving it."""
        kind = type(instance)
        what = f"a {kind.__module__}.{kind.__qualname__}"
        if (
            isinstance(instance, type | types.ModuleType | types.FunctionType)
            or callable(getattr(instance, "__code__", None))
            or id(instance) in self.granted
        ):
            raise UnsafeModelError(
                f"The model file sets state on {what} that a name resolved to; only objects "
                "it creates itself may receive state."
            )
        entry = self._allowlist.get(kind.__module__, kind.__qualname__)
        if entry is None or not (entry.build or entry.build_tuple):
            raise UnsafeModelError(f"The model file sets state on {what}; real exports never do.")
        default = getattr(kind, "__setstate__", None) is None
        dunders = self._allowlist.state_dunders
        if type(state) is dict and "dict" in entry.build:
            _plain_keys(state, what, dunders)
            return
        if type(state) is tuple and len(state) in entry.build_tuple:
            self._check_signature(f"{what} state", entry.build_tuple[len(state)], state)
            if default:  # pickle's (dict, slots) pair; slots are set with setattr
                _plain_keys(state[0], what, dunders)
                _plain_keys(state[1], what)
            return
        raise UnsafeModelError(
            f"The model file sets state on {what} from a {type(state).__qualname__} of a shape "
            "real exports never use."
        )

    def check_extend(self, target: object, opcode: str) -> None:
        """Items go only into fresh lists, dicts, sets and classes seen receiving them."""
        kind = type(target)
        if id(target) in self.granted:
            raise UnsafeModelError(f"The model file adds items ({opcode}) to a named object.")
        if kind in (list, dict, set) or (
            kind.__module__ == "collections"
            and kind.__qualname__
            in (
                "OrderedDict",
                "defaultdict",
            )
        ):
            return
        entry = self._allowlist.get(kind.__module__, kind.__qualname__)
        if entry is None or not entry.extend:
            raise UnsafeModelError(
                f"The model file adds items ({opcode}) to a {kind.__module__}."
                f"{kind.__qualname__}; real exports never do."
            )

    # ------------------------------------------------------------------ stand-ins

    def attribute_name(self, owner: object, name: object) -> str:
        """The allowlist key of ``getattr(owner, name)``: ``module:Class.name`` for a named
        class, or for an object of a class (a compiled pattern's ``search``)."""
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("__"):
            raise UnsafeModelError(f"The model file calls getattr with the name {name!r}.")
        owner_name = self.granted.get(id(owner))
        if owner_name is None:
            if isinstance(owner, type | types.ModuleType) or inspect.isroutine(owner):
                raise UnsafeModelError("The model file calls getattr on an unnamed object.")
            kind = type(owner)
            owner_name = key(kind.__module__, kind.__qualname__)
        return f"{owner_name}.{name}"

    def _getattr(self, owner: object, name: object) -> object:
        """``getattr(cls, "method")``, as protocol 2 names methods: exact pairs only."""
        dotted = self.attribute_name(owner, name)
        if dotted not in self._allowlist.entries:
            raise UnsafeModelError(
                f"The model file names {dotted.replace(':', '.')} through getattr, which is "
                "not on asl-eval's allowlist."
            )
        return self.grant(getattr(owner, str(name)), dotted)

    def _builtin_type(self, name: object) -> object:
        """cloudpickle's ``_builtin_type``: bound methods, type aliases (``list[int]`` in a
        signature) and inert code records; never ``FunctionType`` or other builders of code."""
        if name == "CodeType":
            return self.grant(CodeRecord, "types:CodeType")
        if name in ("MethodType", "GenericAlias"):
            return self.grant(getattr(types, str(name)), f"types:{name}")
        raise UnsafeModelError(f"The model file asks cloudpickle for the type {name!r}.")

    def _make_function(self, code: object, base_globals: object, *rest: object) -> object:
        """cloudpickle's ``_make_function`` without the code: the installed function of that
        name, or a placeholder for a ``__main__`` function."""
        module = base_globals.get("__name__") if isinstance(base_globals, dict) else None
        qualname = code.qualname if isinstance(code, CodeRecord) else None
        if not isinstance(module, str) or not isinstance(qualname, str):
            raise UnsafeModelError(
                "The model file embeds the code of a function whose name is unknown; asl-eval "
                "does not run code embedded in model files."
            )
        if module == "__main__" and "<" not in qualname:
            return self._main_placeholder(qualname)
        reason = self.name_refusal(module, qualname)
        if reason:
            raise UnsafeModelError(
                f"The model file embeds the code of {module}.{qualname} ({reason}); asl-eval "
                "does not run code embedded in model files."
            )
        if "<" in qualname:  # a local function real exports embed: never rebuilt
            return self.grant(FunctionPlaceholder(module, qualname), key(module, qualname))
        return self.grant(_resolve(module, qualname, unwrap=True), key(module, qualname))

    def _function_setstate(self, function: object, state: object) -> None:
        """cloudpickle's ``_function_setstate``: the installed function is left untouched."""

    def _subimport(self, name: object) -> object:
        return Placeholder(f"module {name}")

    def _make_cell(self, value: object = None) -> object:
        return Placeholder("closure cell")


# ---------------------------------------------------------------------- validators


def _rebuild_tensor(unpickler: RestrictedUnpickler, args: tuple[object, ...]) -> None:
    check_tensor_extent(*args[:4])


def _rebuild_from_type(unpickler: RestrictedUnpickler, args: tuple[object, ...]) -> None:
    function, _new_type, inner, state = args
    if not isinstance(inner, tuple):
        raise UnsafeModelError("The model file rebuilds a tensor with malformed arguments.")
    unpickler.check_call("call", function, inner, {})
    if isinstance(state, tuple):
        for part in state:
            _plain_keys(part, "a tensor")
    else:
        _plain_keys(state, "a tensor")


def _reduce(unpickler: RestrictedUnpickler, args: tuple[object, ...]) -> None:
    items = args[1]
    if not isinstance(items, tuple) or len(items) > unpickler.caps.max_reduce_items:
        raise ResourceLimitError("The model file reduces over more items than a type union.")
    if not all(isinstance(item, type | types.GenericAlias | types.UnionType) for item in items):
        raise UnsafeModelError("The model file reduces over something other than types.")


VALIDATORS: dict[str, Callable[[RestrictedUnpickler, tuple[object, ...]], None]] = {
    "torch._utils:_rebuild_tensor_v2": _rebuild_tensor,
    "torch._tensor:_rebuild_from_type_v2": _rebuild_from_type,
    "functools:reduce": _reduce,
    "_functools:reduce": _reduce,
}
"""Checks beyond the argument shapes, for the entries whose arguments say how much to allocate
or what else to call."""


# ---------------------------------------------------------------------- pickle module


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

    UnpicklingError = __import__("pickle").UnpicklingError

    def __init__(self, unpickler: type, *, name: str) -> None:
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
"""A stand-in for the ``pickle`` module. Tensor storages load only through
:func:`asl_eval.trust.load_learner_file`, which knows the file they are read from."""
