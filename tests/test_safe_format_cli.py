"""The safe format from the real console script, in a fresh process (issue 12).

The in-process CLI tests share a Python process in which fastai's progress callback had
already been imported by something else; a fresh ``asl-eval report model.safetensors`` once
failed with ``'Sequential' object has no attribute 'no_bar'``. This runs the installed
``asl-eval`` entry point in a subprocess and compares its numbers with the pickle's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from asl_eval.cli import app


def _console_script() -> str:
    """The ``asl-eval`` script installed next to this interpreter (the project's venv)."""
    beside = Path(sys.executable).with_name("asl-eval")
    found = str(beside) if beside.is_file() else shutil.which("asl-eval")
    assert found, "the asl-eval console script is not installed (pip install -e .)"
    return found


def _test_set(report: Path) -> dict:  # type: ignore[type-arg]
    document = json.loads(report.read_text())
    (test,) = [entry for entry in document["sets"] if entry["name"] == "test"]
    return test  # type: ignore[no-any-return]


def test_report_on_the_safe_format_in_a_fresh_process(
    tiny_model, tiny_safe_pair, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = str(tiny_model.data.ood_test)
    done = subprocess.run(
        [
            _console_script(),
            "report",
            str(tiny_safe_pair[0]),
            folder,
            "--out",
            str(tmp_path / "safe"),
            "--name",
            "r",
            "--no-cam",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    pickled = CliRunner().invoke(
        app,
        [
            "report",
            str(tiny_model.path),
            folder,
            "--out",
            str(tmp_path / "pkl"),
            "--name",
            "r",
            "--no-cam",
        ],
    )
    assert pickled.exit_code == 0, pickled.output
    safe_set, pickle_set = (
        _test_set(tmp_path / "safe" / "r.json"),
        _test_set(tmp_path / "pkl" / "r.json"),
    )
    assert safe_set["n_images"] == 87
    assert safe_set == pickle_set


def test_a_bad_sidecar_is_one_line_on_stderr_in_a_fresh_process(
    tiny_safe_pair, tiny_model, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    weights = tmp_path / "model.safetensors"
    weights.symlink_to(tiny_safe_pair[0])
    record = json.loads(tiny_safe_pair[1].read_text())
    record["n_in"] = 1_000_000
    (tmp_path / "model.json").write_text(json.dumps(record))
    done = subprocess.run(
        [
            _console_script(),
            "report",
            str(weights),
            str(tiny_model.data.ood_test),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "n_in must be an integer from 1 to 16; got number 1000000" in done.stderr
