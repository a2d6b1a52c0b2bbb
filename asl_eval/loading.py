"""Loading a model file, safely by default, with one clear error for each way it can fail.

:func:`load_learner_file` is the single entry point. It takes either

- a fastai export (``learn.export()``, a ``torch.save`` zip whose ``data.pkl`` is a pickle):
  the pickle is scanned first (:mod:`asl_eval.pickle_scan`) and any import outside the
  allowlist is refused with :class:`~asl_eval.errors.UnsafeModelError` before anything is
  unpickled; loading then goes through an unpickler that enforces the same allowlist; or
- the safe format (``model.safetensors`` plus ``model.json``, :mod:`asl_eval.safe_format`),
  which is rebuilt without unpickling anything.

``trust_model=True`` skips the scan and loads a pickle with plain fastai ``load_learner``;
use it only for files whose author you trust. See ``docs/trust.md``.
"""

from __future__ import annotations

import logging
import pickle
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from asl_eval.errors import ModelLoadError, UnsafeModelError, first_few
from asl_eval.pickle_scan import (
    ALLOWED_PACKAGES,
    PickleFormatError,
    PickleGlobal,
    import_policy,
    pickle_streams,
    restricted_loads,
    restricted_pickle_module,
    scan_pickle_bytes,
)
from asl_eval.safe_format import input_size, is_safe_format, load_safe

if TYPE_CHECKING:
    from fastai.learner import Learner

logger = logging.getLogger(__name__)

TRUST_HINT = (
    "If you trust whoever made the file, pass --trust-model (trust_model=True in Python) to load "
    "it with plain fastai, which runs any code the file names; better, ask them for the safe "
    "format (asl-eval export-safe writes model.safetensors and model.json, which load without "
    "running code). See docs/trust.md."
)

_TORCH_MAGIC = 0x1950A86A20F9469CFC6C


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
        raise _format_error(path, error) from error
    return list(refused.values())


def _format_error(path: Path, error: PickleFormatError) -> ModelLoadError:
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


def _unsafe_error(path: Path, refused: list[tuple[PickleGlobal, str]]) -> UnsafeModelError:
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


def _check_path(path: Path) -> None:
    """Missing files and folders get their own message."""
    if not path.exists():
        raise ModelLoadError(
            f"Model file {path} does not exist. Pass the .pkl written by learn.export() or the "
            ".safetensors file written by asl-eval export-safe."
        )
    if path.is_dir():
        raise ModelLoadError(
            f"{path} is a folder, not a model file. Pass the exported .pkl (for example "
            f"{path / 'export.pkl'}) or a .safetensors file."
        )


def _missing_code_error(path: Path, error: Exception) -> ModelLoadError:
    """The fastai classic: the pickle names a function this process cannot import."""
    text = str(error)
    match = re.search(r"Can't get attribute '([^']+)' on <module '([^']+)'", text)
    if match:
        name, module = match.groups()
        if module.endswith(".__main__"):  # under a runner such as pytest, __main__ is renamed
            module = "__main__"
        where = (
            "the notebook or script that trained it (its __main__)"
            if module == "__main__"
            else f"the module {module}"
        )
        fix = (
            f"define {name} (or import it: from your_module import {name}) in the script or "
            "notebook that loads the model, before loading"
            if module == "__main__"
            else f"make sure {module} defines {name} (the version used for training)"
        )
        return ModelLoadError(
            f"{path} was exported with a function or class {name} defined in {where}, and this "
            f"Python process has no {name} there. To load it, {fix}. Inference does not use "
            "label functions, so a cleaner fix is to keep such functions in an importable module "
            "and re-export, or to write the safe format (asl-eval export-safe) once."
        )
    module_match = re.search(r"No module named '([^']+)'", text)
    if module_match:
        module = module_match.group(1)
        return ModelLoadError(
            f"{path} needs the module {module} (for example for a label function it was "
            f"trained with), which cannot be imported here. Install {module} or put the folder "
            "that contains it on PYTHONPATH before loading; or re-export the model from the "
            "safe format (asl-eval export-safe), which needs no such code."
        )
    return ModelLoadError(f"Could not load {path}: {type(error).__name__}: {error}")


def _torch_load(path: Path, *, trusted: bool) -> object:
    """``torch.load`` on the CPU with the plain or the restricted pickle module."""
    import torch

    module = pickle if trusted else restricted_pickle_module
    return torch.load(path, map_location="cpu", pickle_module=module, weights_only=False)


def _is_torch_file(path: Path, raw_head: bytes) -> bool:
    """A zip archive or torch's legacy format (whose first pickle is torch's magic number)."""
    if raw_head[:2] == b"PK":
        return True
    try:
        first = next(iter(pickle_streams(path.read_bytes())))[1]
        return bool(restricted_loads(first) == _TORCH_MAGIC)
    except (PickleFormatError, pickle.UnpicklingError, UnsafeModelError, EOFError, StopIteration):
        return False


def _load_pickle(path: Path, *, trusted: bool) -> object:
    """Unpickle a model file (torch format or a plain pickle), mapping failures to errors."""
    import warnings

    with path.open("rb") as handle:
        head = handle.read(4)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*weights_only.*")
            if _is_torch_file(path, head):
                return _torch_load(path, trusted=trusted)
            if trusted:
                with path.open("rb") as handle:
                    return pickle.load(handle)
            return restricted_loads(path.read_bytes())
    except UnsafeModelError as error:
        raise UnsafeModelError(f"Refused to load {path}: {error} {TRUST_HINT}") from error
    except (AttributeError, ImportError) as error:
        raise _missing_code_error(path, error) from error
    except (pickle.UnpicklingError, EOFError) as error:
        raise ModelLoadError(
            f"{path} is truncated or corrupt ({type(error).__name__}: {error}); fetch or "
            "export it again."
        ) from error
    except RuntimeError as error:
        raise ModelLoadError(
            f"Could not load {path} as a fastai learner: {type(error).__name__}: {error}"
        ) from error


def _as_learner(path: Path, obj: object) -> Learner:
    """The loaded object if it is a learner; otherwise say what it is."""
    import torch
    from fastai.learner import Learner

    if isinstance(obj, Learner):
        return obj
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        keys = [str(k) for k in obj]
        raise ModelLoadError(
            f"{path} holds a bare state dict ({len(keys)} tensors: {first_few(keys)}): weights "
            "without the architecture, classes or transforms needed to evaluate them. Export "
            "the whole learner with learn.export(), or write the safe format with asl-eval "
            "export-safe."
        )
    if isinstance(obj, dict):
        keys = [repr(k) for k in obj]
        raise ModelLoadError(
            f"{path} holds a dict (keys: {first_few(keys) or 'none'}), not a fastai Learner. "
            "Pass the file written by learn.export()."
        )
    raise ModelLoadError(
        f"{path} holds a {type(obj).__module__}.{type(obj).__qualname__}, not a fastai "
        "Learner. Pass the file written by learn.export()."
    )


def check_input_size(learner: Learner, *, path: str | Path = "the model") -> None:
    """Run one blank image of an odd size through the learner's own test pipeline.

    A learner resizes test images with its item transforms (``Resize(200)`` in the tutorial);
    if its model was built for a different input size (a fixed-size head, a ViT), every
    prediction would fail. This finds out at load time, with a clear message.

    Raises
    ------
    ModelLoadError
        If the model cannot process what its item transforms produce.
    """
    from PIL import Image

    size = input_size(learner)
    if size is None:
        logger.info("%s has no resizing item transform; test images keep their size", path)
        return
    probe = Image.new("RGB", (size[1] + 13, size[0] + 7), (127, 127, 127))
    try:
        dl = learner.dls.test_dl([probe], bs=1, num_workers=0)
        with learner.no_bar(), learner.no_logging():
            learner.get_preds(dl=dl)
    except (RuntimeError, ValueError, IndexError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelLoadError(
            f"{path} cannot classify its own test input: its item transforms resize every "
            f"image to {size[0]}x{size[1]} (height x width), but its model fails on that size "
            f"({detail}). The learner's Resize does not match the input size its model was "
            "built for; re-export it with item_tfms=Resize(<the model's input size>)."
        ) from error


def _to_cpu(learner: Learner) -> Learner:
    """What fastai's ``load_learner(cpu=True)`` does after unpickling."""
    learner.dls.cpu()
    if hasattr(learner, "channels_last"):
        return learner.to_contiguous(to_fp32=True)
    if hasattr(learner, "mixed_precision"):
        return learner.to_fp32()
    if hasattr(learner, "non_native_mixed_precision"):
        return learner.to_non_native_fp32()
    return learner


def load_learner_file(path: str | Path, *, trust_model: bool = False) -> Learner:
    """Load a model file onto the CPU: a fastai export (.pkl) or the safe format.

    Parameters
    ----------
    path
        A file written by fastai's ``Learner.export``, or a ``.safetensors`` file (or its
        ``.json`` sidecar) written by :func:`asl_eval.safe_format.export_safe`.
    trust_model
        Skip the scan and load a pickle with plain fastai, running any code it names. Only for
        files whose author you trust. Has no effect on the safe format.

    Raises
    ------
    UnsafeModelError
        If the pickle names imports outside the allowlist (nothing has been unpickled).
    ModelLoadError
        If the file is missing, a folder, not a model file, truncated, holds something other
        than a learner, needs code that cannot be imported, or its model does not fit its own
        input size.
    """
    path = Path(path)
    _check_path(path)
    if is_safe_format(path):
        learner = load_safe(path)
    else:
        # The scan also checks the file's format, so it runs even for a trusted file; trust
        # only turns its refusals into a warning.
        refused = refused_imports(path)
        if refused and not trust_model:
            raise _unsafe_error(path, refused)
        if refused:
            logger.warning(
                "loading %s although it names %d imports outside the allowlist (--trust-model)",
                path,
                len(refused),
            )
        learner = _to_cpu(_as_learner(path, _load_pickle(path, trusted=trust_model)))
    check_input_size(learner, path=path)
    return learner
