"""What a pickled model file may name, and how a refusal is worded.

:func:`import_policy` decides whether a pickle may name ``module.name``;
:func:`refused_imports` applies it to every global a model file's pickles name
(:mod:`asl_eval.trust.scan`), without unpickling anything; :func:`unsafe_model_error` and
:func:`format_error` word the resulting errors. The policy is described in ``docs/trust.md``.

The policy, in order:

1. Exact names that are always allowed (:data:`SAFE_GLOBALS`): containers and scalars from
   ``builtins``, ``collections.OrderedDict``, ``functools.partial``, ``pathlib`` paths, the
   ``inspect``/``typing`` objects fastai stores in transform signatures, asl-eval's own training
   label getter (:class:`asl_eval.training.label_lookup.LabelLookup`), and the cloudpickle
   helpers, which are replaced by inert stand-ins that never build code objects.
2. Names that are always refused: anything outside the allowed packages, any module listed in
   :data:`DENIED_MODULES` (``torch.hub``, ``torch.serialization``, ``fastcore.xtras``,
   ``numpy.testing``, ...), any dotted part that is a dunder, and any part whose words say it
   reads, writes, runs or imports something (:data:`DENIED_WORDS`: ``load``, ``save``, ``open``,
   ``system``, ``run``, ``export``, ...).
3. Everything else defined in an allowed package (:data:`ALLOWED_PACKAGES`: fastai, fastcore,
   fasttransform, plum, torch, torchvision, timm, numpy, PIL).

Imports only the standard library, :mod:`asl_eval.errors` and :mod:`asl_eval.trust.scan`: no
torch, no fastai (an import-linter contract keeps it so).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from asl_eval.errors import ModelLoadError, PickleFormatError, UnsafeModelError, first_few
from asl_eval.trust.scan import PickleGlobal, pickle_streams, scan_pickle_bytes

__all__ = [
    "ALLOWED_PACKAGES",
    "CLOUDPICKLE_MODULES",
    "DENIED_MODULES",
    "DENIED_PARTS",
    "DENIED_SUBSTRINGS",
    "DENIED_WORDS",
    "SAFE_GLOBALS",
    "TRUST_HINT",
    "format_error",
    "import_policy",
    "refused_imports",
    "unsafe_model_error",
]

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
        ("asl_eval.training.label_lookup", "LabelLookup"),
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


# --------------------------------------------------------------------------- a file's refusals

TRUST_HINT = (
    "If you trust whoever made the file, pass --trust-model (trust_model=True in Python) to load "
    "it with plain fastai, which runs any code the file names; better, ask them for the safe "
    "format (asl-eval export-safe writes model.safetensors and model.json, which load without "
    "running code). See docs/trust.md."
)
"""The sentence every refusal ends with: the two ways forward."""


def refused_imports(path: str | Path) -> list[tuple[PickleGlobal, str]]:
    """The imports in a model file's pickles that the allowlist refuses, with the reasons.

    Nothing is unpickled. An empty list means the file may be loaded with the restricted
    unpickler (which checks again while loading).

    Raises
    ------
    ModelLoadError
        If the file is not a pickle or a torch zip archive, or is truncated.
    """
    path = Path(path)
    refused: dict[str, tuple[PickleGlobal, str]] = {}
    try:
        for _, data in pickle_streams(path.read_bytes()):
            found, _ = scan_pickle_bytes(data)
            for item in found:
                reason = import_policy(item.module, item.name)
                if reason:
                    refused.setdefault(item.dotted, (item, reason))
    except PickleFormatError as error:
        raise format_error(path, error) from error
    return list(refused.values())


def format_error(path: Path, error: PickleFormatError) -> ModelLoadError:
    """The one-paragraph error for a file that is not a complete model file."""
    if error.truncated:
        return ModelLoadError(
            f"{path} is truncated or corrupt: {error}. The file probably did not finish "
            "downloading or copying; fetch or export it again."
        )
    return ModelLoadError(
        f"{path} is not a fastai model file: {error}. Expected a learner written by fastai's "
        "learn.export() (a .pkl) or the safe format written by asl-eval export-safe "
        "(a .safetensors file with its .json sidecar)."
    )


def _looks_like_own_code(module: str) -> bool:
    """Whether a refused import comes from the user's code: ``__main__`` or a package that is
    neither the standard library nor one the allowlist knows (so not ``os.system`` nor a refused
    name in an allowed package, such as ``torch.hub.load``)."""
    top = module.split(".", 1)[0]
    if module == "__main__":
        return True
    known = top in sys.stdlib_module_names or top in ALLOWED_PACKAGES or top == "__builtin__"
    return not (known or top.startswith("<"))


def unsafe_model_error(path: Path, refused: list[tuple[PickleGlobal, str]]) -> UnsafeModelError:
    """The error naming what a pickle would import, and how to proceed."""
    names = [f"{item.dotted} ({reason})" for item, reason in refused]
    own_code = [item.dotted for item, _ in refused if _looks_like_own_code(item.module)]
    hint = ""
    if own_code and len(own_code) == len(refused):
        hint = (
            " These look like your own code (for example a label function); inference does not "
            "need them, but unpickling would import and run them."
        )
    return UnsafeModelError(
        f"Refused to load {path}: its pickle names {len(refused)} import"
        f"{'s' if len(refused) != 1 else ''} outside asl-eval's allowlist: "
        f"{first_few(names, 5)}. Loading it could run that code.{hint} {TRUST_HINT}"
    )
