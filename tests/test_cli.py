"""The command line: exit codes (0 ok, 1 our error, 2 usage), messages, and files written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, recall_score
from typer.testing import CliRunner

from asl_eval import __version__
from asl_eval.cli import app
from asl_eval.predictions import Predictions

runner = CliRunner()


@pytest.fixture(autouse=True)
def _own_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reports cache their predictions in the test's folder, not the user's cache."""
    monkeypatch.setenv("ASL_EVAL_CACHE_DIR", str(tmp_path / "prediction-cache"))


def test_unknown_engine_is_a_usage_error(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(
        app, ["report", str(tiny_model.path), str(tmp_path), "--engine", "warp-drive"]
    )
    assert result.exit_code == 2
    assert "--engine" in result.output and "fastai" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"asl-eval {__version__}"


@pytest.mark.parametrize(
    "command", [[], ["train"], ["report"], ["labels"], ["export-safe"], ["demo"]]
)
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_on_every_command(command: list[str], flag: str) -> None:
    result = runner.invoke(app, [*command, flag])
    assert result.exit_code == 0
    assert "Usage" in result.stdout


def test_report_end_to_end_numbers_equal_scikit_learn(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "reports"
    result = runner.invoke(
        app,
        [
            "report",
            str(tiny_model.path),
            str(tiny_model.data.ood_test),
            "--set",
            f"kaggle28={tiny_model.data.kaggle_test}",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    html, numbers = out / "model.html", out / "model.json"
    assert f"report: {html}" in result.stdout
    assert html.is_file() and numbers.is_file()
    data = json.loads(numbers.read_text())
    assert [s["name"] for s in data["sets"]] == ["valid", "kaggle28", "test"]
    assert [s["role"] for s in data["sets"]] == ["in-domain", "test", "test"]
    per_image = pd.read_csv(out / "model.predictions.csv")
    classes = data["model"]["classes"]
    for result_set in data["sets"]:
        rows = per_image[per_image["set"] == result_set["name"]]
        assert len(rows) == result_set["n_images"]
        y_true, y_pred = rows["y_true"].astype(str), rows["y_pred"].astype(str)
        assert result_set["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
        recall = recall_score(y_true, y_pred, labels=classes, average=None, zero_division=0)
        for row, expected in zip(result_set["per_class"], recall, strict=True):
            if row["support"]:
                assert row["accuracy"] == pytest.approx(expected)
            else:
                assert row["accuracy"] is None


def test_missing_test_folder_exits_1_and_writes_nothing(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "reports"
    result = runner.invoke(
        app, ["report", str(tiny_model.path), str(tmp_path / "nope"), "--out", str(out)]
    )
    assert result.exit_code == 1
    assert "does not exist" in result.stderr
    assert result.stdout == ""
    assert not out.exists()


def test_folder_without_images_exits_1(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    out = tmp_path / "reports"
    result = runner.invoke(app, ["report", str(tiny_model.path), str(empty), "--out", str(out)])
    assert result.exit_code == 1
    assert "no image" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_missing_model_exits_1(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path / "model.pkl"), str(tmp_path)])
    assert result.exit_code == 1
    assert "does not exist" in result.stderr


@pytest.mark.parametrize(
    "arguments",
    [
        ["report", "m.pkl", "--set", "no-equals-sign"],
        ["report", "m.pkl", "--labels-from", "nowhere"],
        ["train", "data", "--lr", "fast"],
        ["train", "data", "--lr", "nan"],
        ["train", "data", "--lr", "-0.1"],
        ["train", "data", "--epochs", "0"],
    ],
)
def test_usage_errors_exit_2(arguments: list[str]) -> None:
    assert runner.invoke(app, arguments).exit_code == 2


def test_train_command(tiny_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "m.pkl"
    result = runner.invoke(
        app,
        [
            "train",
            str(tiny_data.train),
            "--out",
            str(out),
            "--no-pretrained",
            "--image-size",
            "32",
            "--epochs",
            "1",
            "--batch-size",
            "32",
        ],
    )
    assert result.exit_code == 0, result.output
    assert out.is_file() and (tmp_path / "m.valid.parquet").is_file()
    assert "validation accuracy" in result.stdout


def test_labels_dry_run_with_model(tiny_model) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(
        app, ["labels", str(tiny_model.data.kaggle_test), "--model", str(tiny_model.path), "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True
    counts = data["class_counts"]
    assert {name: counts[name] for name in ("A", "space", "del")} == {"A": 1, "space": 1, "del": 0}
    assert sum(counts.values()) == 28  # one file per class, no del


def test_labels_dry_run_conflict_exits_1(tmp_path: Path) -> None:
    folder = tmp_path / "t" / "B"
    folder.mkdir(parents=True)
    (folder / "A0001_test.jpg").write_bytes(b"")  # the folder says B, the file name says A
    result = runner.invoke(app, ["labels", str(tmp_path / "t")])
    assert result.exit_code == 1
    assert "--labels-from" in result.stderr


def test_bad_label_map_exits_1(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(
        app, ["labels", str(tiny_model.data.kaggle_test), "--label-map", "missing-equals"]
    )
    assert result.exit_code == 1
    assert "missing-equals" in result.stderr


def test_export_safe_then_report_gives_identical_numbers(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    weights = tmp_path / "model.safetensors"
    exported = runner.invoke(app, ["export-safe", str(tiny_model.path), str(weights)])
    assert exported.exit_code == 0, exported.output
    assert weights.is_file() and (tmp_path / "model.json").is_file()
    folder = str(tiny_model.data.ood_test)
    for model, out in ((tiny_model.path, tmp_path / "a"), (weights, tmp_path / "b")):
        result = runner.invoke(
            app, ["report", str(model), folder, "--out", str(out), "--name", "r", "--no-cam"]
        )
        assert result.exit_code == 0, result.output
    pickled = pd.read_csv(tmp_path / "a" / "r.predictions.csv")
    safe = pd.read_csv(tmp_path / "b" / "r.predictions.csv")
    # the pickle has its saved validation predictions beside it; the exported copy does not
    assert set(pickled["set"]) == {"valid", "test"} and set(safe["set"]) == {"test"}
    pickled_test = pickled[pickled["set"] == "test"].reset_index(drop=True)
    assert len(pickled_test) == 87
    pd.testing.assert_frame_equal(pickled_test, safe)


def test_export_safe_needs_the_suffix(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(app, ["export-safe", str(tiny_model.path), str(tmp_path / "m.bin")])
    assert result.exit_code == 2
    assert ".safetensors" in result.stderr
    assert not (tmp_path / "m.bin").exists()


def test_cli_cam_methods_are_the_libraries() -> None:
    from asl_eval.cam import CAM_METHODS as LIBRARY_METHODS
    from asl_eval.cli_report_options import CAM_METHODS

    assert tuple(CAM_METHODS) == tuple(LIBRARY_METHODS)


def test_in_domain_split_is_recreated_without_saved_predictions(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    lone = tmp_path / "lone.pkl"  # no lone.valid.parquet and no lone.train.json beside it
    shutil.copy(tiny_model.path, lone)
    base = ["report", str(lone), str(tiny_model.data.kaggle_test), "--no-cam"]
    without = runner.invoke(app, [*base, "--out", str(tmp_path / "a")])
    assert without.exit_code == 0, without.output
    assert [s["name"] for s in json.loads((tmp_path / "a" / "lone.json").read_text())["sets"]] == [
        "asl_alphabet_test"
    ]
    with_split = runner.invoke(
        app, [*base, "--out", str(tmp_path / "b"), "--in-domain", str(tiny_model.data.train)]
    )
    assert with_split.exit_code == 0, with_split.output
    data = json.loads((tmp_path / "b" / "lone.json").read_text())
    valid = data["sets"][0]
    assert (valid["name"], valid["role"]) == ("valid", "in-domain")
    saved = Predictions.load(tiny_model.valid_predictions)
    assert valid["n_images"] == saved.n_images
    assert valid["accuracy"] == pytest.approx(float((saved.y_pred == saved.y_true).mean()))


def test_out_is_an_existing_file_exits_1(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    taken = tmp_path / "taken"
    taken.write_text("a file, not a folder")
    result = runner.invoke(
        app, ["report", str(tiny_model.path), str(tiny_model.data.kaggle_test), "--out", str(taken)]
    )
    assert result.exit_code == 1
    assert "is a file" in result.stderr
    assert taken.read_text() == "a file, not a folder"


def test_corrupt_saved_predictions_exit_1(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    model = tmp_path / "m.pkl"
    shutil.copy(tiny_model.path, model)
    (tmp_path / "m.valid.parquet").write_bytes(b"PAR1 not really parquet")
    result = runner.invoke(
        app, ["report", str(model), str(tiny_model.data.kaggle_test), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "not a readable asl-eval predictions file" in result.stderr
    assert "--in-domain" in result.stderr


def test_in_domain_folder_must_be_the_training_folder(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    model = tmp_path / "m.pkl"
    shutil.copy(tiny_model.path, model)
    shutil.copy(tiny_model.path.with_name("model.train.json"), tmp_path / "m.train.json")
    other = tmp_path / "other"
    for label in ("A", "B"):
        shutil.copytree(tiny_model.data.train / label, other / label)
    result = runner.invoke(
        app,
        ["report", str(model), "--in-domain", str(other), "--no-cam", "--out", str(tmp_path / "o")],
    )
    assert result.exit_code == 1
    assert "not the one the model was trained on" in result.stderr
    assert not (tmp_path / "o").exists()


def test_unknown_architecture_exits_1(tiny_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(
        app, ["train", str(tiny_data.train), "--arch", "get_model", "--out", str(tmp_path / "m")]
    )
    assert result.exit_code == 1
    assert "Unknown architecture 'get_model'" in result.stderr


@pytest.mark.parametrize(
    "sets", [["--set", "a=x", "--set", "a=y"], ["--set", "valid=x"]], ids=["repeated", "valid"]
)
def test_set_names_must_be_unique(sets: list[str], tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path / "m.pkl"), *sets])
    assert result.exit_code == 1
    assert "Set names must be unique" in result.stderr


def test_train_with_label_regex_then_report_recreates_its_split(tiny_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`train --label-regex` on a flat folder; `report --in-domain` reads the rule back from
    the training record and rebuilds exactly the saved validation split."""
    import shutil

    flat = tmp_path / "flat"
    flat.mkdir()
    for label in ("A", "B", "del"):
        for n, frame in enumerate(sorted((tiny_data.train / label).iterdir())):
            shutil.copy(frame, flat / f"{n}_{label}.jpg")
    model = tmp_path / "m.pkl"
    quick = ["--no-pretrained", "--no-augment", "--image-size", "32", "--epochs", "1"]
    quick += ["--batch-size", "16"]  # 29 training images: the default 64 fills no batch
    trained = runner.invoke(
        app,
        [
            "train",
            str(flat),
            "--out",
            str(model),
            *quick,
            "--label-regex",
            r"^\d+_(.+)\.jpg$",
            "--label-map",
            "del=delete",
        ],
    )
    assert trained.exit_code == 0, trained.output
    saved = Predictions.load(tmp_path / "m.valid.parquet")
    assert saved.classes == ("A", "B", "delete")
    reported = runner.invoke(
        app, ["report", str(model), "--in-domain", str(flat), "--no-cam", "--out", str(tmp_path)]
    )
    assert reported.exit_code == 0, reported.output
    valid = json.loads((tmp_path / "m.json").read_text())["sets"][0]
    assert valid["n_images"] == saved.n_images == int(0.2 * 3 * 12)
    assert valid["accuracy"] == pytest.approx(accuracy_score(saved.y_true, saved.y_pred))
    # a record whose label rule cannot be read back: exit 1 with the way out, no report
    record_path = tmp_path / "m.train.json"
    record = json.loads(record_path.read_text())
    record["labels"]["regex"] = None
    record_path.write_text(json.dumps(record))
    broken = runner.invoke(
        app,
        ["report", str(model), "--in-domain", str(flat), "--no-cam", "--out", str(tmp_path / "b")],
    )
    assert broken.exit_code == 1
    assert "holds no regex" in broken.stderr and "Leave out --in-domain" in broken.stderr
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--labels-from", "folder", "--label-regex", "(.)"], "cannot be combined"),
        (["--label-regex", "no group"], "group"),
        (["--labels-from", "csv"], "needs --labels-csv"),
    ],
)
def test_train_label_option_errors_exit_1(
    tiny_data,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    options: list[str],
    message: str,
) -> None:
    out = tmp_path / "m.pkl"
    result = runner.invoke(app, ["train", str(tiny_data.train), "--out", str(out), *options])
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert not out.exists()


def test_train_help_states_the_label_default() -> None:
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    # the help is a table whose cells wrap: read its text without the frame and line breaks
    text = " ".join(result.stdout.replace("│", " ").split())
    assert "(default: folder, or the source --label-regex/--labels-csv imply)" in text


# -- through the installed console script, in a fresh process ---------------------------------

CONSOLE = Path(sys.executable).with_name("asl-eval")


def run_console(*arguments: str) -> subprocess.CompletedProcess[bytes]:
    """The installed ``asl-eval`` console script in a fresh process (bytes out, to see escapes)."""
    return subprocess.run([str(CONSOLE), *arguments], capture_output=True, timeout=900, check=False)


def test_escape_sequences_in_names_are_shown_not_run(tmp_path: Path) -> None:
    folder = tmp_path / "bad\x1b[2J\x1b]0;title\x07"
    folder.mkdir()
    (folder / "notes.txt").write_text("no images")
    for arguments in (
        ["labels", str(folder)],  # exists, holds no image
        ["report", str(tmp_path / "m.pkl"), str(tmp_path / "gone\x1b[2J")],  # does not exist
    ):
        result = run_console(*arguments)
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith(b"error: ")
        assert b"\x1b" not in result.stderr and b"\x07" not in result.stderr
        assert b"\\x1b[2J" in result.stderr
        assert result.stdout == b""


def test_a_report_name_with_a_path_is_refused_before_anything_runs(tmp_path: Path) -> None:
    test = tmp_path / "test" / "A"
    test.mkdir(parents=True)
    (test / "a.png").write_bytes(b"x")
    model = tmp_path / "m.pkl"
    model.write_bytes(b"not even a model: the name is checked first")
    out = tmp_path / "deep" / "out"
    result = run_console(
        "report", str(model), str(test.parent), "--out", str(out), "--name", "../../x"
    )
    assert result.returncode == 1
    assert b"The report name '../../x' contains a path separator" in result.stderr
    assert b"--name kaggle-run" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pkl", "test"]


@pytest.mark.parametrize("name", ["/tmp/x", "..", ".", "", "a/b"])
def test_report_names_that_leave_the_folder_exit_1(tmp_path: Path, name: str) -> None:
    result = runner.invoke(
        app,
        [
            "report",
            str(tmp_path / "m.pkl"),
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
            "--name",
            name,
        ],
    )
    assert result.exit_code == 1
    assert "The report name" in result.stderr and "plain file name" in result.stderr
    assert not (tmp_path / "o").exists()


def test_html_in_the_way_keeps_the_previous_report(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    (out / "r.html").mkdir(parents=True)
    (out / "r.json").write_text("old json")
    (out / "r.predictions.csv").write_text("old csv")
    result = run_console(
        "report",
        str(tiny_model.path),
        str(tiny_model.data.kaggle_test),
        "--out",
        str(out),
        "--name",
        "r",
        "--no-cam",
    )
    assert result.returncode == 1, result.stderr
    assert b"r.html is a folder" in result.stderr and b"Nothing was written" in result.stderr
    assert (out / "r.json").read_text() == "old json"
    assert (out / "r.predictions.csv").read_text() == "old csv"
    assert sorted(p.name for p in out.iterdir()) == ["r.html", "r.json", "r.predictions.csv"]


def test_html_in_the_way_leaves_no_json_or_csv(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    (out / "model.html").mkdir(parents=True)
    result = runner.invoke(
        app,
        [
            "report",
            str(tiny_model.path),
            str(tiny_model.data.kaggle_test),
            "--out",
            str(out),
            "--no-cam",
        ],
    )
    assert result.exit_code == 1
    assert "is a folder" in result.stderr
    assert [p.name for p in out.iterdir()] == ["model.html"]
    assert list((out / "model.html").iterdir()) == []


def test_labels_do_not_follow_links_out_of_the_folder(tmp_path: Path) -> None:
    (tmp_path / "test" / "A").mkdir(parents=True)
    (tmp_path / "test" / "A" / "A1.jpg").write_bytes(b"x")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "face.jpg").write_bytes(b"x")
    link = tmp_path / "test" / "A" / "A2\x1b[2J.jpg"
    os.symlink(tmp_path / "elsewhere" / "face.jpg", link)
    default = run_console("labels", str(tmp_path / "test"), "--labels-from", "folder", "--json")
    assert default.returncode == 0, default.stderr
    assert b"not following" in default.stderr  # the warning names the link, escaped
    assert b"\x1b" not in default.stderr and b"\x1b" not in default.stdout
    data = json.loads(default.stdout)
    assert data["excluded"] == {str(link): "link outside the folder"}
    assert data["n_found"] == 2 and data["class_counts"] == {"A": 1}
    followed = run_console(
        "labels", str(tmp_path / "test"), "--labels-from", "folder", "--json", "--follow-links"
    )
    assert followed.returncode == 0, followed.stderr
    data = json.loads(followed.stdout)
    assert data["excluded"] == {} and data["class_counts"] == {"A": 2}


@pytest.mark.parametrize(
    ("command", "flags"),
    [
        ("report", ["--follow-links", "--redact-paths", "--no-images"]),
        ("labels", ["--follow-links"]),
        ("train", ["--follow-links"]),
    ],
)
def test_sharing_and_link_flags_are_documented(command: str, flags: list[str]) -> None:
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    for flag in flags:
        assert flag in result.stdout
