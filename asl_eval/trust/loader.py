"""Loading a model file, safely by default, with one clear error for each way it can fail.

:func:`load_learner_file` is the single entry point. It takes either

- a fastai export (``learn.export()``, a ``torch.save`` zip whose ``data.pkl`` is a pickle):
  the pickle is scanned first (:func:`asl_eval.trust.policy.refused_imports`) and any import
  outside the allowlist is refused with :class:`~asl_eval.errors.UnsafeModelError` before
  anything is unpickled; the file is then loaded by fastai's own ``load_learner``, given a
  pickle module whose unpickler enforces the same allowlist
  (:class:`asl_eval.trust.unpickler.RestrictedUnpickler`); or
- the safe format (``model.safetensors`` plus ``model.json``, :mod:`asl_eval.trust.safe_format`),
  which is rebuilt without unpickling anything.

``trust_model=True`` turns the scan's refusals into a logged warning and unpickles with plain
:mod:`pickle`; use it only for files whose author you trust. See ``docs/trust.md``.

Imports :mod:`asl_eval.errors` and the other ``asl_eval.trust`` modules; fastai and torch only
inside the functions that load.
"""

from __future__ import annotations

import io
import logging
import pickle
import re
import struct
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asl_eval.errors import ModelLoadError, PickleFormatError, UnsafeModelError, first_few
from asl_eval.trust.caps import StorageBudget, storage_budget
from asl_eval.trust.policy import TRUST_HINT, refused_imports, unsafe_model_error
from asl_eval.trust.probe import check_input_size
from asl_eval.trust.safe_format import is_safe_format, load_safe
from asl_eval.trust.scan import pickle_streams
from asl_eval.trust.unpickler import PickleModule, RestrictedUnpickler, restricted_loads

if TYPE_CHECKING:
    from fastai.learner import Learner

__all__ = ["load_learner_file"]

logger = logging.getLogger(__name__)

_TORCH_MAGIC = 0x1950A86A20F9469CFC6C

_FASTAI_PICKLE_WARNING = r"load_learner` uses Python's insecure pickle module"
"""fastai 2.8 warns on every ``load_learner`` call that it unpickles with plain pickle."""


class _NotALearner(Exception):
    """The file's main object is not a fastai Learner (raised before fastai touches it)."""

    def __init__(self, loaded: object) -> None:
        super().__init__(type(loaded).__qualname__)
        self.loaded = loaded


class _MissingImport(Exception):
    """Carries an ImportError past fastai's ``load_learner``, which swallows ImportErrors it
    does not recognise (and then fails on an unbound local). Never leaves this module."""

    def __init__(self, error: ImportError) -> None:
        super().__init__(str(error))
        self.error = error


class _LearnerCheck:
    """Unpickles the main object of a model file, which must be a fastai Learner.

    fastai's ``load_learner`` moves what it unpickled to the CPU through ``.dls``, which only
    a Learner has; checking here lets the error say what the file holds instead.
    """

    def load(self) -> Any:
        """Unpickle, then insist on a Learner."""
        from fastai.learner import Learner

        try:
            loaded = super().load()  # type: ignore[misc]
        except ImportError as error:
            raise _MissingImport(error) from error
        if not isinstance(loaded, Learner):
            raise _NotALearner(loaded)
        return loaded


class _LearnerUnpickler(_LearnerCheck, pickle.Unpickler):
    """Plain pickle (``--trust-model``), main object checked."""


class _RestrictedLearnerUnpickler(_LearnerCheck, RestrictedUnpickler):
    """The restricted unpickler, main object checked."""


class _LearnerPickleModule(PickleModule):
    """The pickle module handed to ``load_learner``: the main object must be a Learner; the
    small pickles around it in torch's legacy format (``load``) go through ``header``."""

    def __init__(self, unpickler: type, header: type) -> None:
        super().__init__(unpickler, name=f"{__name__}.{unpickler.__name__}")
        self._header = header

    def load(self, file: Any, **kwargs: Any) -> Any:
        """A header pickle of torch's legacy format (magic number, version, storage keys)."""
        return self._header(file, **kwargs).load()


def _restricted_module(budget: StorageBudget) -> _LearnerPickleModule:
    """The restricted pickle module for one file: its storages are bounded by ``budget``."""
    unpickler = type("_FileUnpickler", (_RestrictedLearnerUnpickler,), {"storage_budget": budget})
    return _LearnerPickleModule(unpickler, RestrictedUnpickler)


_TRUSTED = _LearnerPickleModule(_LearnerUnpickler, pickle.Unpickler)


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


def _not_a_learner_error(path: Path, obj: object) -> ModelLoadError:
    """Say what the file holds instead of a learner."""
    import torch

    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        keys = [str(k) for k in obj]
        return ModelLoadError(
            f"{path} holds a bare state dict ({len(keys)} tensors: {first_few(keys)}): weights "
            "without the architecture, classes or transforms needed to evaluate them. Export "
            "the whole learner with learn.export(), or write the safe format with asl-eval "
            "export-safe."
        )
    if isinstance(obj, dict):
        names = [repr(k) for k in obj]
        return ModelLoadError(
            f"{path} holds a dict (keys: {first_few(names) or 'none'}), not a fastai Learner. "
            "Pass the file written by learn.export()."
        )
    return ModelLoadError(
        f"{path} holds a {type(obj).__module__}.{type(obj).__qualname__}, not a fastai "
        "Learner. Pass the file written by learn.export()."
    )


def _is_torch_file(path: Path) -> bool:
    """A zip archive or torch's legacy format (whose first pickle is torch's magic number)."""
    with path.open("rb") as handle:
        if handle.read(2) == b"PK":
            return True
    try:
        first = next(iter(pickle_streams(path.read_bytes())))[1]
        return bool(restricted_loads(first) == _TORCH_MAGIC)
    except (PickleFormatError, pickle.UnpicklingError, UnsafeModelError, EOFError, StopIteration):
        return False


def _load_torch_file(path: Path, *, trusted: bool) -> Learner:
    """fastai's own ``load_learner`` onto the CPU, with the restricted (or plain) unpickler."""
    from fastai.learner import load_learner

    with warnings.catch_warnings():
        # The warning says load_learner unpickles with Python's pickle; here it unpickles with
        # asl-eval's restricted unpickler, or with pickle because trust_model asked for it.
        warnings.filterwarnings("ignore", message=_FASTAI_PICKLE_WARNING, category=UserWarning)
        module = _TRUSTED if trusted else _restricted_module(storage_budget(path))
        learner: Learner = load_learner(path, cpu=True, pickle_module=module)
    return learner


def _load_plain_pickle(path: Path, *, trusted: bool) -> Learner:
    """A learner pickled with plain ``pickle.dump``, moved to the CPU.

    ``torch.load`` (and so ``load_learner``) reads only torch's formats, so this is the one
    path that repeats the CPU step of fastai's ``load_learner``.
    """
    unpickler = _LearnerUnpickler if trusted else _RestrictedLearnerUnpickler
    learner: Learner = unpickler(io.BytesIO(path.read_bytes())).load()
    learner.dls.cpu()
    if hasattr(learner, "channels_last"):
        return learner.to_contiguous(to_fp32=True)
    if hasattr(learner, "mixed_precision"):
        return learner.to_fp32()
    if hasattr(learner, "non_native_mixed_precision"):
        return learner.to_non_native_fp32()
    return learner


def _load_pickle(path: Path, *, trusted: bool) -> Learner:
    """Unpickle a model file (torch format or a plain pickle), mapping failures to errors."""
    try:
        if _is_torch_file(path):
            return _load_torch_file(path, trusted=trusted)
        return _load_plain_pickle(path, trusted=trusted)
    except _NotALearner as error:
        raise _not_a_learner_error(path, error.loaded) from None
    except _MissingImport as error:
        raise _missing_code_error(path, error.error) from error.error
    except UnsafeModelError as error:
        raise UnsafeModelError(f"Refused to load {path}: {error} {TRUST_HINT}") from error
    except (AttributeError, ImportError) as error:
        raise _missing_code_error(path, error) from error
    except (pickle.UnpicklingError, EOFError) as error:
        raise ModelLoadError(
            f"{path} is truncated or corrupt ({type(error).__name__}: {error}); fetch or "
            "export it again."
        ) from error
    except ModelLoadError:
        raise
    except (
        IndexError,
        KeyError,
        TypeError,
        ValueError,
        ArithmeticError,
        struct.error,
        RecursionError,
    ) as error:
        raise ModelLoadError(
            f"{path} is not a well-formed model file ({type(error).__name__}: "
            f"{str(error)[:200]}); fetch or export it again."
        ) from error
    except RuntimeError as error:
        raise ModelLoadError(
            f"Could not load {path} as a fastai learner: {type(error).__name__}: {error}"
        ) from error


def load_learner_file(path: str | Path, *, trust_model: bool = False) -> Learner:
    """Load a model file onto the CPU: a fastai export (.pkl) or the safe format.

    Parameters
    ----------
    path
        A file written by fastai's ``Learner.export``, or a ``.safetensors`` file (or its
        ``.json`` sidecar) written by :func:`asl_eval.trust.export_safe`.
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
            raise unsafe_model_error(path, refused)
        if refused:
            logger.warning(
                "loading %s although it names %d imports outside the allowlist (--trust-model)",
                path,
                len(refused),
            )
        learner = _load_pickle(path, trusted=trust_model)
    check_input_size(learner, path=path)
    return learner
