"""The ``Predictions`` table: the hand-off between the model stage and everything after it.

A :class:`Predictions` holds, for one evaluation set, the model's classes (in the model's
order), the evaluated image paths, their true class indices and the predicted probabilities,
plus the :class:`Ledger` that accounts for every input file found (evaluated, excluded with a
reason, unlabeled, or labelled with a class the model does not have). It imports with numpy and
pandas only and saves to Parquet, so a report can be rebuilt without the model.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from asl_eval.errors import LabelError, LedgerError, MetricError, ReportError

__all__ = [
    "PROBABILITY_FLOOR",
    "SCHEMA_VERSION",
    "STATUSES",
    "Ledger",
    "LedgerEntry",
    "Predictions",
    "Status",
]


def _items(loader: object) -> list[object]:
    """A DataLoader's items as a list (they may be a list, an array or a DataFrame)."""
    items = getattr(loader, "items", None)
    return [] if items is None else list(items)


class _LearnerLike(Protocol):
    """What :meth:`Predictions.from_learner` uses of a fastai ``Learner`` (duck-typed, so this
    module imports neither fastai nor torch)."""

    dls: Any

    def no_bar(self) -> Any: ...

    def get_preds(self, *, dl: Any) -> Any: ...


Status = Literal["evaluated", "excluded", "unlabeled", "not_in_classes"]
STATUSES: tuple[Status, ...] = ("evaluated", "excluded", "unlabeled", "not_in_classes")
SCHEMA_VERSION = 2
"""Version 2: the ``relpath`` and ``sha256`` columns. :meth:`Predictions.load` reads version 1."""
PROBABILITY_FLOOR = float(np.finfo(np.float64).eps)
"""Probabilities are clipped here before a logarithm (scikit-learn's choice for log loss)."""


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _is_sha256(value: str) -> bool:
    return _SHA256.fullmatch(value) is not None


def _is_relpath(value: str) -> bool:
    """A relative POSIX path that stays inside its root (no ``..``, no leading ``/``)."""
    parts = value.split("/")
    return bool(value) and "\\" not in value and not value.startswith("/") and ".." not in parts


def _per_image(
    values: Sequence[str], n: int, name: str, valid: Callable[[str], bool]
) -> tuple[str, ...]:
    """``values`` as a tuple of strings: empty (unknown) or exactly one valid value per image."""
    result = tuple(str(v) for v in values)
    if result and len(result) != n:
        raise MetricError(f"{name} must have {n} entries, one per path; got {len(result)}")
    bad = [v for v in result if not valid(v)]
    if bad:
        raise MetricError(f"{len(bad)} {name} entries are malformed, e.g. {bad[0]!r}")
    return result


@dataclass(frozen=True)
class LedgerEntry:
    """What happened to one input file.

    ``reason`` says why a file was excluded (``"zero-byte file"``, ``"not an image"``, ...);
    ``label`` is the derived true label where there is one (for ``not_in_classes`` it is the
    label the model does not know).
    """

    path: str
    status: Status
    reason: str = ""
    label: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise LedgerError(f"unknown ledger status {self.status!r}; expected one of {STATUSES}")


@dataclass(frozen=True)
class Ledger:
    """Every input file of one evaluation set, each with its outcome.

    The invariant ``found == evaluated + excluded + unlabeled + not_in_classes`` holds by
    construction: each file has exactly one entry.
    """

    entries: tuple[LedgerEntry, ...] = ()

    def __post_init__(self) -> None:
        seen: set[str] = set()
        duplicated = [e.path for e in self.entries if e.path in seen or seen.add(e.path)]  # type: ignore[func-returns-value]
        if duplicated:
            raise LedgerError(f"ledger lists {len(duplicated)} file(s) twice: {duplicated[:3]}")

    @classmethod
    def of(cls, entries: Iterable[LedgerEntry]) -> Ledger:
        """Build a ledger from any iterable of entries."""
        return cls(tuple(entries))

    @property
    def n_found(self) -> int:
        return len(self.entries)

    def count(self, status: Status) -> int:
        """Number of files with the given outcome."""
        return sum(1 for e in self.entries if e.status == status)

    def by_status(self, status: Status) -> list[LedgerEntry]:
        """Entries with the given outcome, in input order."""
        return [e for e in self.entries if e.status == status]

    def summary(self) -> dict[str, object]:
        """Counts for the report: found, evaluated, excluded by reason, unlabeled, unknown labels.

        >>> ledger = Ledger.of([
        ...     LedgerEntry("a.jpg", "evaluated", label="A"),
        ...     LedgerEntry("b.jpg", "excluded", reason="zero-byte file"),
        ...     LedgerEntry("1.jpg", "not_in_classes", label="1"),
        ... ])
        >>> ledger.summary()["found"], ledger.summary()["excluded"]
        (3, {'zero-byte file': 1})
        """
        excluded = Counter(e.reason for e in self.entries if e.status == "excluded")
        unknown = Counter(e.label or "" for e in self.entries if e.status == "not_in_classes")
        return {
            "found": self.n_found,
            "evaluated": self.count("evaluated"),
            "excluded": dict(sorted(excluded.items())),
            "n_excluded": self.count("excluded"),
            "unlabeled": self.count("unlabeled"),
            "not_in_classes": dict(sorted(unknown.items())),
            "n_not_in_classes": self.count("not_in_classes"),
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per input file: path, status, reason, label."""
        return pd.DataFrame(
            [(e.path, e.status, e.reason, e.label) for e in self.entries],
            columns=["path", "status", "reason", "label"],
        )

    def to_records(self) -> list[dict[str, str | None]]:
        return [
            {"path": e.path, "status": e.status, "reason": e.reason, "label": e.label}
            for e in self.entries
        ]

    @classmethod
    def from_records(cls, records: Iterable[dict[str, str | None]]) -> Ledger:
        return cls.of(
            LedgerEntry(
                path=str(r["path"]),
                status=r["status"],  # type: ignore[arg-type]
                reason=str(r.get("reason") or ""),
                label=r.get("label"),
            )
            for r in records
        )


@dataclass(frozen=True)
class Predictions:
    """Model outputs for one evaluation set, validated on construction.

    Parameters
    ----------
    classes
        The model's classes in the model's order (fastai's ``dls.vocab``).
    paths
        The evaluated images, one per row of ``y_proba``.
    y_true
        True class of each image as an index into ``classes``.
    y_proba
        Predicted probabilities, shape ``(n_images, n_classes)``, rows summing to one.
    name
        Name of the evaluation set (``"valid"``, ``"test"``, ...).
    ledger
        Outcome of every input file; its evaluated entries must be exactly ``paths``. When not
        given, every path is recorded as evaluated.
    source
        Where the set came from (a folder, or ``"validation split"``).
    sha256
        The SHA-256 of each evaluated file's bytes (64 lowercase hex digits), one per path, or
        empty when unknown. With ``relpaths`` it identifies an image across runs and machines.
    relpaths
        Each evaluated file's path relative to its set's root folder, with ``/`` separators,
        one per path, or empty when unknown.
    """

    classes: tuple[str, ...]
    paths: tuple[str, ...]
    y_true: np.ndarray
    y_proba: np.ndarray
    name: str = "test"
    ledger: Ledger = field(default_factory=Ledger)
    source: str = ""
    sha256: tuple[str, ...] = ()
    relpaths: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        classes = tuple(str(c) for c in self.classes)
        paths = tuple(str(p) for p in self.paths)
        y_true = np.asarray(self.y_true, dtype=np.int64).reshape(-1)
        y_proba = np.asarray(self.y_proba, dtype=np.float64)
        n, k = len(paths), len(classes)
        if k == 0:
            raise MetricError("Predictions need at least one class.")
        if len(set(classes)) != k:
            raise MetricError(f"classes are not unique: {classes}")
        if y_proba.ndim != 2 or y_proba.shape != (n, k):
            raise MetricError(
                f"y_proba must have shape (n_images, n_classes) = ({n}, {k}); got {y_proba.shape}"
            )
        if y_true.shape != (n,):
            raise MetricError(f"y_true must have {n} entries, one per path; got {y_true.shape[0]}")
        if n and (y_true.min() < 0 or y_true.max() >= k):
            raise MetricError(f"y_true holds class indices outside 0..{k - 1}")
        if n and not (np.isfinite(y_proba).all() and y_proba.min() >= 0 and y_proba.max() <= 1):
            raise MetricError(
                "y_proba must hold probabilities in [0, 1] (softmax output), with no NaN; "
                f"got values from {np.nanmin(y_proba):g} to {np.nanmax(y_proba):g}"
            )
        if n and not np.allclose(y_proba.sum(axis=1), 1.0, atol=1e-3):
            raise MetricError(
                "y_proba rows do not sum to one: pass probabilities (softmax output), not logits"
            )
        ledger = self.ledger
        if not ledger.entries:
            ledger = Ledger.of(
                LedgerEntry(p, "evaluated", label=classes[t])
                for p, t in zip(paths, y_true, strict=True)
            )
        evaluated = tuple(e.path for e in ledger.by_status("evaluated"))
        if evaluated != paths:
            raise MetricError(
                f"the ledger's {len(evaluated)} evaluated files do not match "
                f"the {n} predicted paths"
            )
        object.__setattr__(self, "sha256", _per_image(self.sha256, n, "sha256", _is_sha256))
        object.__setattr__(self, "relpaths", _per_image(self.relpaths, n, "relpaths", _is_relpath))
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "paths", paths)
        object.__setattr__(self, "y_true", y_true)
        object.__setattr__(self, "y_proba", y_proba)
        object.__setattr__(self, "ledger", ledger)

    # -- derived columns -------------------------------------------------------------------
    @property
    def content_digest(self) -> str | None:
        """One SHA-256 for the whole set: of the sorted lines ``relpath<TAB>sha256``, or None
        when the images' hashes or relative paths are unknown. Two sets with the same digest
        hold the same files under the same names, wherever their folders are."""
        if self.n_images and not (self.sha256 and self.relpaths):
            return None
        lines = sorted(f"{r}\t{h}\n" for r, h in zip(self.relpaths, self.sha256, strict=True))
        return hashlib.sha256("".join(lines).encode()).hexdigest()

    @property
    def n_images(self) -> int:
        return len(self.paths)

    @property
    def y_pred(self) -> np.ndarray:
        """Predicted class index of each image (argmax of ``y_proba``)."""
        if self.n_images == 0:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(self.y_proba.argmax(axis=1), dtype=np.int64)

    @property
    def labels_true(self) -> np.ndarray:
        """True class names."""
        return np.asarray(self.classes, dtype=object)[self.y_true]

    @property
    def labels_pred(self) -> np.ndarray:
        """Predicted class names."""
        return np.asarray(self.classes, dtype=object)[self.y_pred]

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the predicted class."""
        if self.n_images == 0:
            return np.zeros(0)
        return np.asarray(self.y_proba.max(axis=1))

    @property
    def loss(self) -> np.ndarray:
        """Cross-entropy of each image: ``-log p(true class)``, the probability clipped at
        :data:`PROBABILITY_FLOOR` (the same loss :func:`asl_eval.metrics.top_losses` ranks by)."""
        p_true = self.y_proba[np.arange(self.n_images), self.y_true]
        return np.asarray(-np.log(np.clip(p_true, PROBABILITY_FLOOR, 1.0)))

    # -- tables and files ------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """One row per evaluated image: path, relative path and SHA-256 (``""`` when unknown),
        true and predicted class, confidence, loss, and the probability of every class
        (columns ``proba:<class>``)."""
        unknown = [""] * self.n_images
        frame = pd.DataFrame(
            {
                "path": list(self.paths),
                "relpath": list(self.relpaths) or unknown,
                "sha256": list(self.sha256) or unknown,
                "y_true": list(self.labels_true),
                "y_pred": list(self.labels_pred),
                "correct": self.y_true == self.y_pred,
                "confidence": self.confidence,
                "loss": self.loss,
            }
        )
        proba = pd.DataFrame(self.y_proba, columns=[f"proba:{c}" for c in self.classes])
        return pd.concat([frame, proba], axis=1)

    def save(self, path: str | Path) -> Path:
        """Write to Parquet (the ledger, classes and name go in the file's metadata)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        table = pa.Table.from_pandas(self.to_frame(), preserve_index=False)
        meta = {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "source": self.source,
            "classes": list(self.classes),
            "ledger": self.ledger.to_records(),
        }
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), b"asl_eval": json.dumps(meta).encode()}
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(table, tmp)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Predictions:
        """Read a file written by :meth:`save`."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
            raw = (table.schema.metadata or {}).get(b"asl_eval")
            if raw is None:
                raise ReportError(f"{path} is not an asl-eval predictions file (no metadata).")
            meta = json.loads(raw)
            classes = tuple(meta["classes"])
            frame = table.to_pandas()
            index = {c: i for i, c in enumerate(classes)}
            hashed = "sha256" in frame.columns and bool(len(frame)) and all(frame["sha256"])
            return cls(
                classes=classes,
                paths=tuple(frame["path"]),
                y_true=np.array([index[c] for c in frame["y_true"]], dtype=np.int64),
                y_proba=frame[[f"proba:{c}" for c in classes]].to_numpy(dtype=np.float64),
                name=meta["name"],
                source=meta.get("source", ""),
                ledger=Ledger.from_records(meta["ledger"]),
                sha256=tuple(frame["sha256"]) if hashed else (),
                relpaths=tuple(frame["relpath"]) if hashed else (),
            )
        except (OSError, pa.ArrowException, ValueError, KeyError, TypeError) as error:
            if isinstance(error, ReportError):
                raise
            raise ReportError(
                f"{path} is not a readable asl-eval predictions file ({type(error).__name__}: "
                f"{error}). Delete it, or re-create the split with --in-domain TRAINING_DIR."
            ) from error

    @classmethod
    def from_learner(
        cls,
        learner: _LearnerLike,
        dl: object | None = None,
        *,
        name: str = "valid",
        source: str = "",
    ) -> Predictions:
        """Predict a labelled fastai ``DataLoader`` with the learner (the validation set by
        default) and wrap the outputs, in asl-eval's terms: fastai's ``vocab`` becomes
        ``classes``, ``preds`` becomes ``y_proba`` and ``targs`` becomes ``y_true``.

        This is the notebook's one-liner after training, ``Predictions.from_learner(learn)``,
        or, for a test folder labelled by the training pipeline's own label function,
        ``Predictions.from_learner(learn, learn.dls.test_dl(files, with_labels=True),
        name="test")``. It calls the learner's own ``get_preds`` and imports neither fastai nor
        torch, so this module stays light. To evaluate a folder with labels from folder or file
        names, and every file accounted for, use :func:`asl_eval.inference.predict_folder`.

        Raises
        ------
        LabelError
            When the loader has no labels (a ``test_dl`` made without ``with_labels=True``), or
            when no loader is given and the learner has no validation data (a loaded export).
        """
        loader = dl if dl is not None else learner.dls.valid
        if dl is None and not _items(loader):
            raise LabelError(
                "This learner has no validation data (fastai's export keeps none, so a loaded "
                "model has an empty learn.dls.valid). Pass the images to evaluate: "
                "Predictions.from_learner(learn, learn.dls.test_dl(files, with_labels=True)), "
                "or use asl_eval.predict_folder."
            )
        with learner.no_bar():
            probabilities, targets = learner.get_preds(dl=loader)
        if targets is None:
            raise LabelError(
                "This DataLoader has no labels, so there is nothing to evaluate against. Make "
                "it with learn.dls.test_dl(files, with_labels=True), or use "
                "asl_eval.predict_folder, which takes labels from folder or file names."
            )
        y_proba = np.asarray(probabilities.float().numpy(), dtype=np.float64)
        items = _items(loader)
        paths = (
            tuple(str(item) for item in items)
            if len(items) == len(y_proba) and all(isinstance(i, str | Path) for i in items)
            else tuple(f"#{i}" for i in range(len(y_proba)))
        )
        return cls(
            classes=tuple(str(c) for c in learner.dls.vocab),
            paths=paths,
            y_true=np.asarray(targets.numpy(), dtype=np.int64),
            y_proba=y_proba,
            name=name,
            source=source or ("validation split" if dl is None else "fastai DataLoader"),
        )

    @classmethod
    def from_labels(
        cls,
        y_true: Sequence[str],
        y_proba: np.ndarray,
        classes: Sequence[str],
        *,
        paths: Sequence[str] | None = None,
        name: str = "test",
    ) -> Predictions:
        """Build from true class names (for notebooks and tests).

        >>> p = Predictions.from_labels(["A", "B"], np.array([[0.9, 0.1], [0.6, 0.4]]), ["A", "B"])
        >>> p.labels_pred.tolist()
        ['A', 'A']
        """
        index = {c: i for i, c in enumerate(classes)}
        unknown = sorted({str(y) for y in y_true if y not in index})
        if unknown:
            raise LabelError(f"labels not in classes: {unknown[:5]}")
        return cls(
            classes=tuple(classes),
            paths=tuple(paths) if paths is not None else tuple(f"#{i}" for i in range(len(y_true))),
            y_true=np.array([index[y] for y in y_true], dtype=np.int64),
            y_proba=np.asarray(y_proba, dtype=np.float64),
            name=name,
        )
