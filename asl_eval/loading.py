"""Loading an exported fastai learner, with clear errors instead of tracebacks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from asl_eval.errors import ModelLoadError

if TYPE_CHECKING:
    from fastai.learner import Learner


def load_learner_file(path: str | Path, *, trust_model: bool = False) -> Learner:
    """Load a learner written by fastai's ``Learner.export`` onto the CPU.

    Raises
    ------
    ModelLoadError
        If the file is missing, a folder, or cannot be unpickled as a fastai learner.
    """
    from fastai.learner import Learner, load_learner

    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"Model file {path} does not exist.")
    if path.is_dir():
        raise ModelLoadError(f"{path} is a folder; pass the exported .pkl file.")
    try:
        learner = load_learner(path, cpu=True)
    except Exception as error:  # any unpickling failure becomes one clear error
        raise ModelLoadError(
            f"Could not load {path} as a fastai learner: {type(error).__name__}: {error}"
        ) from error
    if not isinstance(learner, Learner):
        raise ModelLoadError(f"{path} holds a {type(learner).__name__}, not a fastai Learner.")
    return learner
