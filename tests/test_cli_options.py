"""The checks and parsing of option values Typer cannot express (``asl_eval.cli_options``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from asl_eval.cli_options import parse_label_options, parse_sets
from asl_eval.labels import LabelOptions


def test_parse_sets_splits_at_the_first_equals_sign() -> None:
    assert parse_sets(["kaggle=data/k", "odd=a=b"]) == [
        ("kaggle", Path("data/k")),
        ("odd", Path("a=b")),
    ]


@pytest.mark.parametrize("value", ["no-equals-sign", "=folder", "name="])
def test_parse_sets_refuses_a_value_without_name_and_folder(value: str) -> None:
    with pytest.raises(typer.BadParameter, match="expected NAME=DIR") as raised:
        parse_sets([value])
    assert raised.value.param_hint == "--set"


def test_parse_label_options_carries_every_value(tmp_path: Path) -> None:
    table = tmp_path / "labels.csv"
    options = parse_label_options("csv", None, table, ["nothing=del"], True, follow_links=True)
    assert options == LabelOptions(
        source="csv",
        regex=None,
        labels_csv=table,
        label_map={"nothing": "del"},
        strict=True,
        follow_links=True,
    )
    assert options.labels_csv == table  # not part of LabelOptions' equality


def test_parse_label_options_refuses_an_unknown_source() -> None:
    with pytest.raises(typer.BadParameter, match="expected auto, folder, filename or csv"):
        parse_label_options("nowhere", None, None, None, False)
