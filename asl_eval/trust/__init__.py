"""The trust stage: deciding whether a model file may be loaded, and loading it.

A pickled fastai learner can run any code when it is unpickled, so every model file goes
through this stage: :mod:`~asl_eval.trust.scan` lists what a pickle names from its bytes,
:mod:`~asl_eval.trust.allowlist` holds the exact names real fastai exports contain and how each
is called, :mod:`~asl_eval.trust.policy` decides which names are allowed and words the
refusals, :mod:`~asl_eval.trust.unpickler` enforces the allowlist while unpickling (on the
guarded pickle machine of :mod:`~asl_eval.trust.guards`, within the limits of
:mod:`~asl_eval.trust.caps`, with the stand-ins of :mod:`~asl_eval.trust.placeholders`),
:mod:`~asl_eval.trust.loader` loads through fastai's ``load_learner`` with that unpickler,
:mod:`~asl_eval.trust.probe` checks the loaded learner accepts its own input size, and
:mod:`~asl_eval.trust.safe_format` writes and reads a format that needs no pickle at all.
See ``docs/trust.md``.

Layer: above :mod:`asl_eval.metrics` and :mod:`asl_eval.labels`, below
:mod:`asl_eval.inference`; imports :mod:`asl_eval.errors` and :mod:`asl_eval.hashing`. The scan
and the policy import neither torch nor fastai; the loader, the probe and the safe format
import them only inside functions, so importing this package stays light.
"""

from __future__ import annotations

from asl_eval.trust.loader import load_learner_file
from asl_eval.trust.policy import TRUST_HINT, import_policy, refused_imports
from asl_eval.trust.probe import check_input_size, input_size
from asl_eval.trust.safe_format import (
    describe_learner,
    export_safe,
    is_safe_format,
    load_safe,
    sidecar_path,
)
from asl_eval.trust.scan import PickleGlobal, pickle_streams, scan_pickle_bytes
from asl_eval.trust.unpickler import (
    PickleModule,
    RestrictedUnpickler,
    restricted_load,
    restricted_loads,
    restricted_pickle_module,
)

__all__ = [
    "TRUST_HINT",
    "PickleGlobal",
    "PickleModule",
    "RestrictedUnpickler",
    "check_input_size",
    "describe_learner",
    "export_safe",
    "import_policy",
    "input_size",
    "is_safe_format",
    "load_learner_file",
    "load_safe",
    "pickle_streams",
    "refused_imports",
    "restricted_load",
    "restricted_loads",
    "restricted_pickle_module",
    "scan_pickle_bytes",
    "sidecar_path",
]
