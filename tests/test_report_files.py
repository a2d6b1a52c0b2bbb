"""Writing a report's three files: a plain --name only, and all or nothing (a failure midway
leaves the previous report, or none, and no temporary file)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from asl_eval.errors import ReportError
from asl_eval.report.write import check_report_name, report_paths, write_together


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../../x", "contains a path separator"),
        ("/tmp/x", "contains a path separator"),
        ("sub/x", "contains a path separator"),
        ("sub\\x", "contains a path separator"),
        ("..", "is a reference to a folder"),
        (".", "is a reference to a folder"),
        ("", "is empty"),
        ("  ", "is empty"),
        ("a\x00b", "contains a NUL character"),
    ],
)
def test_a_name_with_a_path_is_refused(tmp_path: Path, name: str, problem: str) -> None:
    with pytest.raises(ReportError, match=f"{problem}; pass a plain file name"):
        report_paths(tmp_path, name)
    assert list(tmp_path.iterdir()) == []


def test_a_plain_name_is_kept() -> None:
    assert check_report_name("kaggle-run.v2") == "kaggle-run.v2"
    assert check_report_name("..hidden") == "..hidden"  # a file name, not a folder reference


def _files(folder: Path) -> list[tuple[Path, str]]:
    return [
        (folder / "r.json", "new json"),
        (folder / "r.csv", "new csv"),
        (folder / "r.html", "new html"),
    ]


def test_a_folder_in_the_way_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "r.html").mkdir()
    with pytest.raises(ReportError, match=r"r\.html is a folder.*Nothing was written"):
        write_together(_files(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


def test_a_failed_move_restores_the_previous_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path, _ in _files(tmp_path):
        path.write_text(f"old {path.suffix}")
    real_replace = os.replace

    def replace(source: str | Path, target: str | Path) -> None:
        if Path(target).name == "r.html" and Path(source).suffix == ".tmp":
            raise OSError("no space left on device")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(ReportError, match=r"no space left on device.*no file was changed"):
        write_together(_files(tmp_path))
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        "r.json": "old .json",
        "r.csv": "old .csv",
        "r.html": "old .html",
    }


def test_a_failed_move_removes_new_files_where_there_were_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace

    def replace(source: str | Path, target: str | Path) -> None:
        if Path(target).name == "r.html":
            raise OSError("disk full")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(ReportError, match="disk full"):
        write_together(_files(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_a_failed_temporary_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asl_eval.report.write as write

    real = write._write_temporary
    calls: list[Path] = []

    def failing(path: Path, text: str) -> Path:
        calls.append(path)
        if len(calls) == 3:
            raise OSError("quota exceeded")
        return real(path, text)

    monkeypatch.setattr(write, "_write_temporary", failing)
    (tmp_path / "r.json").write_text("old")
    with pytest.raises(ReportError, match="quota exceeded"):
        write_together(_files(tmp_path))
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {"r.json": "old"}


def test_writing_together_replaces_all_three(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text("old")
    write_together(_files(tmp_path / "."))
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        "r.json": "new json",
        "r.csv": "new csv",
        "r.html": "new html",
    }
