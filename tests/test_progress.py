"""Progress: the library reports through a callback and is otherwise silent; the command line
draws it on stderr only, never on stdout, and ``--quiet`` turns it off."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from asl_eval.cli import app
from asl_eval.inference import predict_folder
from asl_eval.progress import ProgressEvent

SCRIPT = Path(sys.executable).with_name("asl-eval")


@pytest.fixture(autouse=True)
def _own_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASL_EVAL_CACHE_DIR", str(tmp_path / "cache"))


def test_predict_reports_each_chunk_and_is_silent_without_a_callback(  # type: ignore[no-untyped-def]
    tiny_learner, tiny_data, capsys: pytest.CaptureFixture[str]
) -> None:
    events: list[ProgressEvent] = []
    predictions = predict_folder(
        tiny_learner, tiny_data.ood_test, chunk_size=32, progress=events.append
    )
    n = predictions.ledger.summary()["found"]
    for step in ("decode", "predict"):
        done = [e.done for e in events if e.step == step]
        assert done == sorted(done) and done[-1] == n == 87
        assert len(done) == 3  # ceil(87 / 32) chunks
        assert {e.total for e in events if e.step == step} == {n}
        assert {e.name for e in events if e.step == step} == {"test"}
    predict_folder(tiny_learner, tiny_data.ood_test, chunk_size=32)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_training_reports_each_epoch(tiny_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from asl_eval.training import TrainConfig, train_model

    events: list[ProgressEvent] = []
    config = TrainConfig(
        image_size=16, epochs=2, batch_size=32, pretrained=False, show_progress=False
    )
    train_model(tiny_data.train, tmp_path / "m.pkl", config, progress=events.append)
    assert events == [
        ProgressEvent("train", "epochs", 1, 2),
        ProgressEvent("train", "epochs", 2, 2),
    ]


def test_progress_goes_to_stderr_only(tiny_model, tiny_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A real subprocess (stderr is not a terminal, so --progress forces the bars on)."""
    environment = {**os.environ, "ASL_EVAL_CACHE_DIR": str(tmp_path / "cache")}
    base = [str(SCRIPT), "report", str(tiny_model.path), str(tiny_data.ood_test)]
    base += ["--cam-k", "1", "--cam-images", "1", "--chunk-size", "16"]
    shown = subprocess.run(
        [*base, "--out", str(tmp_path / "a"), "--progress"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "predicting test" in shown.stderr and "87/87" in shown.stderr
    assert "decoding test" in shown.stderr and "Grad-CAM on test" in shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[:3] == [
        f"report: {tmp_path / 'a' / 'model.html'}",
        f"numbers: {tmp_path / 'a' / 'model.json'}",
        f"predictions: {tmp_path / 'a' / 'model.predictions.csv'}",
    ]
    # then the report's top findings, one numbered line each (and how many more there are)
    assert lines[3] == "findings:" and lines[4].startswith("1. [")
    assert all(re.match(r"(\d\. \[|\.\.\. and \d+ more)", line) for line in lines[4:])
    default = subprocess.run(
        [*base, "--out", str(tmp_path / "a"), "--no-cam"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert default.returncode == 0, default.stderr
    assert default.stdout.splitlines()[:4] == lines[:4]
    assert "predicting" not in default.stderr  # stderr is not a terminal: off by default


def test_quiet_silences_progress(tiny_model, tiny_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(
        app,
        [
            "report",
            str(tiny_model.path),
            str(tiny_data.kaggle_test),
            "--no-cam",
            "--quiet",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "predicting" not in result.output
    assert result.stdout.startswith("report: ")


def _script(*args: object, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *map(str, args)],
        env={**os.environ, "ASL_EVAL_CACHE_DIR": str(cache)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_audit_shows_hashing_progress_on_stderr_only(tiny_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``audit --progress`` draws the hashing bar on stderr; stdout holds the same JSON as
    without it (and without it, stderr not being a terminal, nothing is drawn). With a model,
    and for ``stress``, see test_audit_cli.py and test_stress_sweep.py."""
    n_train = sum(1 for _ in Path(tiny_data.train).rglob("*.jpg"))
    hashed = _script("audit", tiny_data.train, "--json", "--progress", cache=tmp_path / "c1")
    assert hashed.returncode == 0, hashed.stderr
    assert "hashing train" in hashed.stderr and f"{n_train}/{n_train}" in hashed.stderr
    plain = _script("audit", tiny_data.train, "--json", cache=tmp_path / "c2")
    assert plain.returncode == 0 and "hashing" not in plain.stderr
    assert json.loads(hashed.stdout) == json.loads(plain.stdout)
