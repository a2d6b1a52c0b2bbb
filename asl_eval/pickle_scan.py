"""Checking what a pickled model would import, before and while it is unpickled.

A fastai ``export.pkl`` is a ``torch.save`` zip archive whose ``data.pkl`` is a Python pickle
(protocol 2, written by cloudpickle). Unpickling calls whatever functions the pickle names, so a
model file can run any code. This module decides which names a model file may use
(:func:`import_policy`), lists the names a file uses without unpickling it
(:func:`scan_pickle_bytes`, :func:`pickle_streams`), and provides an unpickler that enforces the
same policy while loading (:class:`RestrictedUnpickler`, :data:`restricted_pickle_module` for
``torch.load(pickle_module=...)``). The policy is described in ``docs/trust.md``.

The policy, in order:

1. Exact names that are always allowed (:data:`SAFE_GLOBALS`): containers and scalars from
   ``builtins``, ``collections.OrderedDict``, ``functools.partial``, ``pathlib`` paths, the
   ``inspect``/``typing`` objects fastai stores in transform signatures, asl-eval's own training
   label getter (:class:`asl_eval.training_labels.LabelLookup`), and the cloudpickle
   helpers, which are replaced by inert stand-ins that never build code objects.
2. Names that are always refused: anything outside the allowed packages, any module listed in
   :data:`DENIED_MODULES` (``torch.hub``, ``torch.serialization``, ``fastcore.xtras``,
   ``numpy.testing``, ...), any dotted part that is a dunder, and any part whose words say it
   reads, writes, runs or imports something (:data:`DENIED_WORDS`: ``load``, ``save``, ``open``,
   ``system``, ``run``, ``export``, ...).
3. Everything else defined in an allowed package (:data:`ALLOWED_PACKAGES`: fastai, fastcore,
   fasttransform, plum, torch, torchvision, timm, numpy, PIL).

While loading, the object a name resolves to is checked too: modules are refused, and a class
or function must pass the policy under the module and name it was *defined* in, so
``fastai.imports.os`` or ``fastai.torch_core.subprocess`` (re-exports) cannot smuggle ``os`` in.
"""

from __future__ import annotations

import inspect
import io
import pickle
import pickletools
import re
import types
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from asl_eval.errors import PickleFormatError, UnsafeModelError

ALLOWED_PACKAGES: tuple[str, ...] = (
    "fastai",
    "fastcore",
    "fasttransform",
    "plum",
    "torch",
    "torchvision",
    "timm",
    "numpy",
    "PIL",
)
"""Top-level packages whose classes and functions a learner may name (subject to the denials).

pandas is not among them: an exported learner does not need it, and its objects evaluate
strings (``DataFrame.eval``, ``DataFrame.query``)."""

CLOUDPICKLE_MODULES: tuple[str, ...] = ("cloudpickle.cloudpickle", "cloudpickle.cloudpickle_fast")

SAFE_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        *(
            ("builtins", name)
            for name in (
                "bool",
                "bytearray",
                "bytes",
                "complex",
                "dict",
                "float",
                "frozenset",
                "getattr",  # replaced by a guarded stand-in, see RestrictedUnpickler
                "int",
                "list",
                "object",
                "print",
                "range",
                "set",
                "slice",
                "str",
                "tuple",
            )
        ),
        ("collections", "OrderedDict"),
        ("collections", "defaultdict"),
        ("collections", "deque"),
        ("collections", "Counter"),
        ("functools", "partial"),
        ("functools", "reduce"),
        ("_functools", "reduce"),
        ("operator", "or_"),
        ("_operator", "or_"),
        ("_codecs", "encode"),
        ("copyreg", "_reconstructor"),
        ("copyreg", "__newobj__"),
        ("copyreg", "__newobj_ex__"),
        *(
            ("pathlib", name)
            for name in (
                "Path",
                "PosixPath",
                "WindowsPath",
                "PurePath",
                "PurePosixPath",
                "PureWindowsPath",
            )
        ),
        ("random", "Random"),
        # the label getter asl-eval's own training uses when labels do not come from folders
        ("asl_eval.training_labels", "LabelLookup"),
        ("inspect", "Signature"),
        ("inspect", "Parameter"),
        ("inspect", "_ParameterKind"),
        ("inspect", "_empty"),
        *(
            ("typing", name)
            for name in ("Any", "Union", "Optional", "List", "Dict", "Tuple", "Callable")
        ),
        *(
            (module, name)
            for module in CLOUDPICKLE_MODULES
            for name in (
                "_builtin_type",
                "_make_function",
                "_function_setstate",
                "subimport",
                "_make_empty_cell",
                "_make_cell",
            )
        ),
        # Reads an image file by path; needed by PILBase.create, allowed despite "load".
        ("fastai.vision.core", "load_image"),
    }
)
"""Exact ``(module, name)`` pairs that are allowed whatever the other rules say."""

DENIED_MODULES: tuple[str, ...] = (
    "torch.hub",
    "torch.serialization",
    "torch.package",
    "torch.jit",
    "torch.fx",
    "torch.utils.cpp_extension",
    "torch.utils.tensorboard",
    "torch.utils.benchmark",
    "torch.utils.bottleneck",
    "torch.utils.model_zoo",
    "torch.utils.data.datapipes",
    "torch.distributed",
    "torch.multiprocessing",
    "torch.testing",
    "torch._dynamo",
    "torch._inductor",
    "torch.compiler",
    "torch.export",
    "torch._export",
    "torch.onnx",
    "torch.ops",
    "torch._ops",
    "torch.library",
    "torch._library",
    "torch.backends",
    "torch._C._jit",
    "torchvision.datasets",
    "torchvision.io",
    "torchvision.utils",
    "torchvision._internally_replaced_utils",
    "numpy.testing",
    "numpy.f2py",
    "numpy.distutils",
    "numpy.ctypeslib",
    "numpy.lib.npyio",
    "numpy.lib._npyio_impl",
    "numpy.lib.format",
    "numpy.lib._datasource",
    "numpy._pytesttester",
    "PIL.ImageShow",
    "PIL.ImageMath",
    "PIL.ImageGrab",
    "fastcore.xtras",
    "fastcore.net",
    "fastcore.script",
    "fastcore.parallel",
    "fastcore.test",
    "fastcore.shutil",
    "fastcore.imports",
    "fastai.data.external",
    "fastai.data.download_checks",
    "fastai.distributed",
    "fastai.launch",
    "fastai.test_utils",
    "fastai.vision.utils",
    "fastai.vision.widgets",
    "fastai.callback.tensorboard",
    "fastai.callback.wandb",
    "fastai.callback.comet",
    "fastai.callback.neptune",
    "fastai.callback.azureml",
    "fastai.callback.captum",
    "timm.models._hub",
    "timm.models._helpers",
    "timm.models._builder",
    "timm.models._factory",
)
"""Modules (and their submodules) inside the allowed packages that read or write files, reach
the network, compile or run code, or start processes."""

DENIED_WORDS: frozenset[str] = frozenset(
    {
        "load",
        "loads",
        "save",
        "saves",
        "dump",
        "dumps",
        "open",
        "exec",
        "system",
        "popen",
        "spawn",
        "fork",
        "run",
        "call",
        "download",
        "extract",
        "pickle",
        "unpickle",
        "write",
        "unlink",
        "remove",
        "rmdir",
        "mkdir",
        "rename",
        "import",
        "compile",
        "subprocess",
        "shell",
        "export",
        "setattr",
        "delattr",
        "globals",
        "builtins",
        "breakpoint",
        "kill",
        "signal",
        "chmod",
        "chown",
        "symlink",
    }
)
"""Words (split at underscores and case changes) that refuse a name part."""

DENIED_SUBSTRINGS: tuple[str, ...] = (
    "fromfile",
    "tofile",
    "loadtxt",
    "savetxt",
    "genfromtxt",
    "fromregex",
    "memmap",
    "datasource",
    "urlopen",
    "urlretrieve",
    "urlsave",
    "untar",
    "unzip",
    "rmtree",
    "makedirs",
)
"""Substrings of a name part, lower-cased with underscores removed, that refuse it."""

DENIED_PARTS: frozenset[str] = frozenset(
    {
        "eval",
        "eval_type",
        "unsafe_eval",
        "lambda_eval",
        "query",
        "getattr",
        "attrgetter",
        "methodcaller",
        "vars",
        "locals",
        "environ",
        "putenv",
        "get_ipython",
    }
)
"""Whole name parts (lower-cased) that evaluate strings or look attributes up by name. They are
matched whole, not as words, so ``TrainEvalCallback`` stays allowed while ``eval`` and
``fastcore.basics.eval_type`` (which calls the built-in ``eval``) are refused."""

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def _name_part_reason(part: str) -> str | None:
    """Why one dotted part of a name is refused, or None.

    >>> _name_part_reason("parent_label") is None
    True
    >>> _name_part_reason("loadtxt")
    "'loadtxt' contains 'loadtxt'"
    >>> _name_part_reason("TrainEvalCallback") is None
    True
    >>> _name_part_reason("__globals__")
    "'__globals__' is a dunder attribute"
    >>> _name_part_reason("eval_type")
    "'eval_type' evaluates code or looks names up by string"
    """
    if part.startswith("__") and part.endswith("__"):
        return f"{part!r} is a dunder attribute"
    if part.lower() in DENIED_PARTS:
        return f"{part!r} evaluates code or looks names up by string"
    words = {word.lower() for word in _WORD.findall(part)}
    hit = sorted(words & DENIED_WORDS)
    if hit:
        return f"{part!r} names an action that touches files, processes or code ({hit[0]!r})"
    squashed = part.lower().replace("_", "")
    for substring in DENIED_SUBSTRINGS:
        if substring in squashed:
            return f"{part!r} contains {substring!r}"
    return None


def _in_module(module: str, prefixes: tuple[str, ...]) -> str | None:
    """The prefix ``module`` equals or lies under, or None.

    >>> _in_module("torch.hub.foo", ("torch.hub",))
    'torch.hub'
    >>> _in_module("torch.hubble", ("torch.hub",)) is None
    True
    """
    for prefix in prefixes:
        if module == prefix or module.startswith(prefix + "."):
            return prefix
    return None


def import_policy(module: str, name: str) -> str | None:
    """Why a pickle may not name ``module.name``, or None when it may.

    ``name`` may be dotted (a qualified name such as ``TensorImage.lighting``). The rules are
    described in the module docstring and in ``docs/trust.md``.

    >>> import_policy("fastai.data.transforms", "parent_label") is None
    True
    >>> import_policy("torch._utils", "_rebuild_tensor_v2") is None
    True
    >>> import_policy("posix", "system")
    'module posix is not one asl-eval trusts'
    >>> import_policy("torch.hub", "load")
    'torch.hub is a module that touches files, the network, processes or code'
    >>> import_policy("torch", "load")
    "'load' names an action that touches files, processes or code ('load')"
    >>> import_policy("fastcore.xtras", "run")
    'fastcore.xtras is a module that touches files, the network, processes or code'
    >>> import_policy("builtins", "exec")
    'builtins.exec is not one of the built-ins asl-eval allows'
    """
    if (module, name) in SAFE_GLOBALS:
        return None
    if module in ("builtins", "__builtin__"):
        return f"builtins.{name} is not one of the built-ins asl-eval allows"
    top = module.split(".", 1)[0]
    if top not in ALLOWED_PACKAGES:
        return f"module {module} is not one asl-eval trusts"
    denied = _in_module(module, DENIED_MODULES)
    if denied:
        return f"{denied} is a module that touches files, the network, processes or code"
    for part in name.split("."):
        reason = _name_part_reason(part)
        if reason:
            return reason
    return None


@dataclass(frozen=True)
class PickleGlobal:
    """One global a pickle stream names: the module, the (possibly dotted) name, and the opcode."""

    module: str
    name: str
    opcode: str

    @property
    def dotted(self) -> str:
        """``module.name``."""
        return f"{self.module}.{self.name}"


_STRING_OPS = frozenset(
    {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING"}
)
_MEMO_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_MEMO_PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_UNKNOWN = object()


def normalize_global(module: str, name: str) -> tuple[str, str]:
    """Map Python 2 names (protocol 2 pickles say ``__builtin__``) to Python 3 ones.

    This is the mapping ``pickle.Unpickler`` applies with ``fix_imports=True``.

    >>> normalize_global("__builtin__", "getattr")
    ('builtins', 'getattr')
    >>> normalize_global("__builtin__", "reduce")
    ('functools', 'reduce')
    >>> normalize_global("fastai.learner", "Learner")
    ('fastai.learner', 'Learner')
    """
    import _compat_pickle

    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def scan_pickle_bytes(data: bytes) -> tuple[list[PickleGlobal], int]:
    """The globals one pickle stream names, without unpickling it, and where the stream ended.

    ``GLOBAL`` and ``INST`` carry their names; for ``STACK_GLOBAL`` the two preceding pushes
    must be literal strings (or memo references to them), as every pickler writes them;
    anything else is reported as the global ``<computed>.<computed>``, which no policy allows.
    Extension-registry opcodes are reported the same way.

    Raises
    ------
    PickleFormatError
        If ``data`` does not start with a pickle opcode, or ends before ``STOP``.

    >>> import pickle, collections
    >>> found, end = scan_pickle_bytes(pickle.dumps(collections.OrderedDict(a=1), protocol=4))
    >>> [g.dotted for g in found]
    ['collections.OrderedDict']
    """
    found: list[PickleGlobal] = []
    stack: list[object] = []
    memo: dict[int, object] = {}
    end = 0
    n_ops = 0
    try:
        for opcode, arg, position in pickletools.genops(io.BytesIO(data)):
            n_ops += 1
            name = opcode.name
            end = (position or 0) + 1
            if name in _STRING_OPS:
                stack.append(arg)
            elif name in _MEMO_GET_OPS:
                stack.append(memo.get(int(arg), _UNKNOWN))  # type: ignore[arg-type]
            elif name in _MEMO_PUT_OPS:
                memo[int(arg)] = stack[-1] if stack else _UNKNOWN  # type: ignore[arg-type]
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1] if stack else _UNKNOWN
            elif name in ("GLOBAL", "INST"):
                module, _, attribute = str(arg).partition(" ")
                found.append(PickleGlobal(*normalize_global(module, attribute), name))
                stack.append(_UNKNOWN)
            elif name == "STACK_GLOBAL":
                top = stack.pop() if stack else _UNKNOWN
                below = stack.pop() if stack else _UNKNOWN
                if isinstance(below, str) and isinstance(top, str):
                    found.append(PickleGlobal(*normalize_global(below, top), name))
                else:
                    found.append(PickleGlobal("<computed>", "<computed>", name))
                stack.append(_UNKNOWN)
            elif name in ("EXT1", "EXT2", "EXT4"):
                found.append(PickleGlobal("<extension registry>", str(arg), name))
                stack.append(_UNKNOWN)
            elif name == "STOP":
                break
            else:
                # Any other opcode: what it leaves on the stack is not a literal string.
                stack.append(_UNKNOWN)
    except ValueError as error:
        if n_ops <= 1:
            raise PickleFormatError(f"not a pickle ({error})", truncated=False) from error
        raise PickleFormatError(f"pickle ends early ({error})", truncated=True) from error
    if n_ops == 0:
        raise PickleFormatError("empty file", truncated=False)
    return found, end


def pickle_streams(raw: bytes) -> Iterator[tuple[str, bytes]]:
    """The pickle streams inside a model file's bytes, named by where they come from.

    A zip archive (``torch.save``'s format, which fastai's ``Learner.export`` uses) yields every
    member whose name ends in ``.pkl``. Anything else is treated as back-to-back pickles (a plain
    pickle, or torch's legacy format, whose raw tensor bytes after the last pickle are skipped).

    Raises
    ------
    PickleFormatError
        If a zip archive is corrupt or truncated, or the bytes are not a pickle.
    """
    if raw[:2] == b"PK":
        try:
            archive = zipfile.ZipFile(io.BytesIO(raw))
            names = [n for n in archive.namelist() if n.endswith(".pkl")]
            if not names:
                raise PickleFormatError("a zip archive with no pickle in it", truncated=False)
            for member in names:
                yield member, archive.read(member)
        except (zipfile.BadZipFile, EOFError, OSError) as error:
            raise PickleFormatError(
                f"a zip archive that is truncated or corrupt ({error})", truncated=True
            ) from error
        return
    if raw[:1] != b"\x80":
        raise PickleFormatError(
            "neither a zip archive (torch.save's format) nor a pickle of protocol 2 or later",
            truncated=False,
        )
    offset = 0
    index = 0
    # torch's legacy format: magic number, protocol, sys info, object, storage keys; raw bytes.
    while offset < len(raw) and index < 5:
        _, length = scan_pickle_bytes(raw[offset:])
        yield f"pickle #{index + 1}", raw[offset : offset + length]
        offset += length
        index += 1
        if offset >= len(raw) or raw[offset : offset + 1] != b"\x80":
            break


# --------------------------------------------------------------------------- loading


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
    import importlib

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


restricted_pickle_module = types.SimpleNamespace(
    __name__="asl_eval.pickle_scan.restricted_pickle_module",
    Unpickler=RestrictedUnpickler,
    load=restricted_load,
    loads=restricted_loads,
    UnpicklingError=pickle.UnpicklingError,
)
"""A stand-in for the ``pickle`` module, for ``torch.load(..., pickle_module=...)``."""
