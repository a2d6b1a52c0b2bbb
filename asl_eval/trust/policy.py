"""What a pickled model file may name, and how a refusal is worded.

:func:`import_policy` decides whether a pickle may name ``module.name``: only the exact
``(module, qualified name)`` pairs of :mod:`asl_eval.trust.allowlist` (generated from real fastai
exports by ``scripts/generate_allowlist.py``, plus a few hand-listed entries), and names in
``__main__``, which load as inert placeholders (:mod:`asl_eval.trust.placeholders`). Everything
else is refused by name; there are no package-wide rules. How an allowed name may be *called*
is checked while loading (:mod:`asl_eval.trust.unpickler`).

:func:`refused_imports` applies the policy to every global a model file's pickles name
(:mod:`asl_eval.trust.scan`), without unpickling anything; :func:`unsafe_model_error`,
:func:`own_code_message` and :func:`format_error` word the resulting errors. See
``docs/trust.md``.

Imports only the standard library, :mod:`asl_eval.errors`, :mod:`asl_eval.trust.allowlist` and
:mod:`asl_eval.trust.scan`: no torch, no fastai (an import-linter contract keeps it so).
"""

from __future__ import annotations

import sys
from pathlib import Path

from asl_eval.errors import ModelLoadError, PickleFormatError, UnsafeModelError, first_few
from asl_eval.trust.allowlist import key, load_allowlist
from asl_eval.trust.scan import PickleGlobal, pickle_streams, scan_pickle_bytes

__all__ = [
    "KNOWN_PACKAGES",
    "TRUST_HINT",
    "format_error",
    "import_policy",
    "own_code_message",
    "refused_imports",
    "unsafe_model_error",
]

KNOWN_PACKAGES: tuple[str, ...] = (
    "fastai",
    "fastcore",
    "fasttransform",
    "plum",
    "torch",
    "torchvision",
    "timm",
    "numpy",
    "PIL",
    "asl_eval",
)
"""Packages real exports name. Used only to word refusals (a refused name outside them and the
standard library is probably the user's own code); whether a name is allowed is the
allowlist's business alone."""


def import_policy(module: str, name: str) -> str | None:
    """Why a pickle may not name ``module.name``, or None when it may.

    ``name`` may be dotted (a qualified name such as ``PILBase.create``).

    >>> import_policy("fastai.data.transforms", "parent_label") is None
    True
    >>> import_policy("torch._utils", "_rebuild_tensor_v2") is None
    True
    >>> import_policy("posix", "system")
    "posix.system is not among the names real fastai exports contain (asl-eval's allowlist)"
    >>> import_policy("fastcore.basics", "nested_attr") is not None
    True
    >>> import_policy("__main__", "label_func") is None  # loads as an inert placeholder
    True
    """
    if module == "__main__" and name and "." not in name and not name.startswith("__"):
        return None
    if key(module, name) in load_allowlist().entries:
        return None
    return (
        f"{module}.{name} is not among the names real fastai exports contain (asl-eval's allowlist)"
    )


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
    known = top in sys.stdlib_module_names or top in KNOWN_PACKAGES or top == "__builtin__"
    return not (known or top.startswith("<"))


OWN_CODE_HINT = (
    " These look like your own code (for example a label function); inference does not "
    "need them, but unpickling would import and run them."
)


def own_code_message(dotted: str) -> str:
    """The refusal for a class of the user's own code that loading would have to create."""
    return (
        f"The model file needs {dotted}, a class defined in the notebook or script that trained "
        f"the model; asl-eval does not run code from model files.{OWN_CODE_HINT}"
    )


def unsafe_model_error(path: Path, refused: list[tuple[PickleGlobal, str]]) -> UnsafeModelError:
    """The error naming what a pickle would import, and how to proceed."""
    names = [f"{item.dotted} ({reason})" for item, reason in refused]
    own_code = [item.dotted for item, _ in refused if _looks_like_own_code(item.module)]
    hint = ""
    if own_code and len(own_code) == len(refused):
        hint = OWN_CODE_HINT
    return UnsafeModelError(
        f"Refused to load {path}: its pickle names {len(refused)} import"
        f"{'s' if len(refused) != 1 else ''} outside asl-eval's allowlist: "
        f"{first_few(names, 5)}. Loading it could run that code.{hint} {TRUST_HINT}"
    )
