"""Alignment: matching the labels a rule read with the model's classes.

Each distinct label is matched exactly, else through the user's ``--label-map``, else ignoring
case when exactly one class matches; otherwise it matches no class. :func:`align_labels` refuses
to merge two different labels into one class unless the user said so (``--label-map``), and
refuses a label that matches several classes ignoring case. Without classes (training, no model
yet) labels are kept as read, after the map.

May import: :mod:`asl_eval.errors` and the standard library. Never torch or fastai.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from asl_eval.errors import LabelError, first_few

__all__ = [
    "Alignment",
    "Method",
    "align_label",
    "align_labels",
    "align_unchecked",
    "check_label_map",
    "parse_label_map",
]

Method = Literal["exact", "case", "map", "none", "ambiguous"]

_HOW: dict[str, str] = {
    "exact": "exact match",
    "case": "ignoring case",
    "map": "by --label-map",
    "none": "no match",
    "ambiguous": "ambiguous",
}


@dataclass(frozen=True)
class Alignment:
    """How each distinct label maps to the model's classes.

    Attributes
    ----------
    classes
        The model's classes, or None when there are none yet (training: classes come from the
        labels).
    mapping
        ``label -> class``, or None where the label matches no class.
    method
        ``label -> "exact" | "case" | "map" | "none" | "ambiguous"``: how it was matched
        (``"ambiguous"``: it matches several classes ignoring case).
    """

    classes: tuple[str, ...] | None
    mapping: Mapping[str, str | None]
    method: Mapping[str, Method]

    def merged(self) -> dict[str, tuple[str, ...]]:
        """Classes that two or more different labels map to: ``class -> labels``.

        >>> align_unchecked(["a", "A", "B"], ["A", "B"], {}).merged()
        {'A': ('A', 'a')}
        """
        sources: dict[str, list[str]] = {}
        for label, target in self.mapping.items():
            if target is not None:
                sources.setdefault(target, []).append(label)
        return {c: tuple(sorted(ls)) for c, ls in sources.items() if len(ls) > 1}

    def problems(self) -> list[str]:
        """Why this alignment cannot be used: labels that match several classes ignoring case,
        and different labels merged into one class without an explicit ``--label-map`` entry.

        Examples
        --------
        >>> [p.split(";")[0] for p in align_unchecked(["del"], ["Del", "DEL"], {}).problems()]
        ["label 'del' matches 2 classes ignoring case (Del, DEL)"]
        """
        return self._ambiguous_problems() + self._merge_problems()

    def _ambiguous_problems(self) -> list[str]:
        found = []
        for label, how in self.method.items():
            if how == "ambiguous" and self.classes is not None:
                matches = [c for c in self.classes if c.casefold() == label.casefold()]
                found.append(
                    f"label {label!r} matches {len(matches)} classes ignoring case "
                    f"({', '.join(matches)}); pass --label-map {label}={matches[0]} (or another)"
                )
        return found

    def _merge_problems(self) -> list[str]:
        found = []
        for target, labels in self.merged().items():
            implicit = [label for label in labels if self.method[label] == "case"]
            if implicit:
                shown = " and ".join(f"{label!r} ({_HOW[self.method[label]]})" for label in labels)
                fixes = " ".join(f"--label-map {label}={target}" for label in implicit)
                found.append(
                    f"labels {shown} would count as the same class {target!r}; if they are "
                    f"the same class say so with {fixes}, otherwise rename the files or folders"
                )
        return found

    def to_records(self, counts: Mapping[str, int] | None = None) -> list[dict[str, object]]:
        """One record per label: label, class, method (and number of files, if counts given).

        >>> align_labels(["a"], ["A"]).to_records({"a": 3})
        [{'label': 'a', 'class': 'A', 'method': 'case', 'n_files': 3}]
        """
        return [
            {
                "label": label,
                "class": self.mapping[label],
                "method": self.method[label],
                **({"n_files": counts.get(label, 0)} if counts is not None else {}),
            }
            for label in sorted(self.mapping)
        ]


def parse_label_map(entries: Iterable[str]) -> dict[str, str]:
    """Parse ``--label-map`` values: ``LABEL=CLASS``, repeated or comma-separated.

    >>> parse_label_map(["delete=del", "Space=space,blank=nothing"])
    {'delete': 'del', 'Space': 'space', 'blank': 'nothing'}

    Raises
    ------
    LabelError
        If an entry has no ``=``, an empty side, or maps one label to two classes.
    """
    mapping: dict[str, str] = {}
    for entry in entries:
        for item in entry.split(","):
            if not item.strip():
                continue
            label, sep, target = (part.strip() for part in item.partition("="))
            if not sep or not label or not target:
                raise LabelError(
                    f"--label-map expects LABEL=CLASS (for example delete=del); got {item!r}."
                )
            if mapping.get(label, target) != target:
                raise LabelError(
                    f"--label-map maps {label!r} to both {mapping[label]!r} and {target!r}."
                )
            mapping[label] = target
    return mapping


def check_label_map(label_map: Mapping[str, str], classes: Sequence[str]) -> None:
    """Check ``--label-map`` against the classes: an entry must name a class, and must not
    contradict an exact or case-insensitive match (it would silently never apply).

    >>> check_label_map({"delete": "del"}, ["A", "del"])

    Raises
    ------
    LabelError
        If a target is not a class, or an entry's label already matches another class.
    """
    class_set = set(classes)
    unknown = {k: v for k, v in label_map.items() if v not in class_set}
    if unknown:
        shown = first_few([f"{k}={v}" for k, v in unknown.items()])
        raise LabelError(
            f"--label-map targets must be model classes; {shown} name(s) no class. "
            f"Classes: {first_few(list(classes), limit=30)}."
        )
    for label, target in label_map.items():
        automatic = _automatic_match(label, classes)
        if automatic is not None and automatic != target:
            raise LabelError(
                f"--label-map {label}={target} would never apply: {label!r} already matches "
                f"class {automatic!r}. Rename the files or folders instead."
            )


def _automatic_match(label: str, classes: Sequence[str]) -> str | None:
    """The class a label matches exactly, else the only class it matches ignoring case."""
    if label in classes:
        return label
    folded = [c for c in classes if c.casefold() == label.casefold()]
    return folded[0] if len(folded) == 1 else None


def _align_one(
    label: str, classes: Sequence[str] | None, label_map: Mapping[str, str]
) -> tuple[str | None, Method]:
    """The class and method of one label, without judging ambiguity or merges."""
    if classes is None:
        return label_map.get(label, label), "map" if label in label_map else "exact"
    if label in classes:
        return label, "exact"
    if label in label_map:
        return label_map[label], "map"
    folded = [c for c in classes if c.casefold() == label.casefold()]
    if len(folded) == 1:
        return folded[0], "case"
    return None, "ambiguous" if folded else "none"


def align_unchecked(
    labels: Iterable[str], classes: Sequence[str] | None, label_map: Mapping[str, str]
) -> Alignment:
    """Align without raising on ambiguity or merges (see :meth:`Alignment.problems`).

    >>> dict(align_unchecked(["a", "A"], ["A"], {}).method)
    {'a': 'case', 'A': 'exact'}
    """
    mapping: dict[str, str | None] = {}
    method: dict[str, Method] = {}
    for label in dict.fromkeys(labels):
        mapping[label], method[label] = _align_one(label, classes, label_map)
    return Alignment(
        classes=None if classes is None else tuple(classes), mapping=mapping, method=method
    )


def align_labels(
    labels: Iterable[str],
    classes: Sequence[str] | None,
    *,
    label_map: Mapping[str, str] | None = None,
) -> Alignment:
    """Match each distinct label to one of ``classes``: exactly, else through ``label_map``
    (whose entries may only cover labels with no exact or unique case-insensitive match), else
    ignoring case when exactly one class matches; otherwise no class.

    Two different labels end up in one class only when all but the exact one come from
    ``label_map``: a merge found only by ignoring case (folders ``a/`` and ``A/`` with class
    ``A``) is an error naming the ``--label-map`` entry that would allow it. When the classes
    contain both ``a`` and ``A``, each label matches its own class exactly, and a label such as
    ``del`` against classes ``Del`` and ``DEL`` is ambiguous, so an error, until mapped.

    >>> a = align_labels(["a", "del", "delete", "7"], ["A", "del"], label_map={"delete": "del"})
    >>> dict(a.mapping), a.method["a"], a.method["delete"]
    ({'a': 'A', 'del': 'del', 'delete': 'del', '7': None}, 'case', 'map')
    >>> align_labels(["a", "A"], ["A", "B"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    asl_eval.errors.LabelError: Labels cannot be aligned ... say so with --label-map a=A, ...

    Raises
    ------
    LabelError
        On a map entry whose target is not a class or that contradicts an automatic match, a
        label matching several classes ignoring case, or a merge found only by ignoring case.
    """
    label_map = dict(label_map or {})
    if classes is not None:
        check_label_map(label_map, classes)
    alignment = align_unchecked(labels, classes, label_map)
    problems = alignment.problems()
    if problems:
        raise LabelError(
            "Labels cannot be aligned with the model's classes: " + "; ".join(problems)
        )
    return alignment


def align_label(
    label: str, classes: Sequence[str], label_map: Mapping[str, str] | None = None
) -> str | None:
    """Align one label (see :func:`align_labels`); None if it matches no class.

    >>> align_label("a", ["A", "B", "del"])
    'A'
    >>> align_label("delete", ["A", "B", "del"], {"delete": "del"})
    'del'
    """
    return align_labels([label], classes, label_map=label_map).mapping[label]
