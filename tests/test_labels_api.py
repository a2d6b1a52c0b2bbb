"""The labels package's public API: the names its callers import, one job per module."""

from __future__ import annotations

import importlib

import pytest

import asl_eval.labels as labels

MODULES = ("rules", "alignment", "detection", "assignment", "preview")

# what cli.py, inference.py, train.py, pipeline.py and the tests import from asl_eval.labels
USED_BY_CALLERS = (
    "FILENAME_RULES",
    "LabelOptions",
    "LabelPreview",
    "LabeledFiles",
    "align_label",
    "align_labels",
    "compile_label_regex",
    "filename_label",
    "folder_label",
    "label_files",
    "parse_label_map",
    "preview_labels",
    "read_labels_table",
    "regex_label",
)


def test_package_exports_what_callers_use() -> None:
    assert len(set(labels.__all__)) == len(labels.__all__)
    assert set(USED_BY_CALLERS) <= set(labels.__all__)
    for name in labels.__all__:
        assert hasattr(labels, name), name


@pytest.mark.parametrize("name", MODULES)
def test_each_module_states_its_job_and_exports(name: str) -> None:
    module = importlib.import_module(f"asl_eval.labels.{name}")
    assert module.__doc__ is not None and "May import" in module.__doc__
    for exported in module.__all__:
        assert hasattr(module, exported), f"{name}.{exported}"


def test_package_names_are_the_modules_objects() -> None:
    from asl_eval.labels import assignment, preview, rules

    assert labels.label_files is assignment.label_files
    assert labels.preview_labels is preview.preview_labels
    assert labels.LabelOptions is rules.LabelOptions
