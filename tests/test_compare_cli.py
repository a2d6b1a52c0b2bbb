"""``asl-eval compare`` through the installed console script, on the tiny fastai model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ASL_EVAL = Path(sys.executable).with_name("asl-eval")


def _compare(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ASL_EVAL), "compare", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture(scope="module")
def reports(tiny_model, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    """The tiny model's report on the OOD folder, its predictions CSV edited so that BASE is
    right on every image and NEW wrong on every image of the first ten classes (30 images)."""
    from asl_eval.pipeline import ReportRequest, run_report

    folder = tmp_path_factory.mktemp("compare_cli")
    request = ReportRequest(
        model=tiny_model.path,
        test_sets=[("ood", tiny_model.data.ood_test)],
        out=folder,
        name="base",
        cam=None,
    )
    base = run_report(request).json
    classes = json.loads(base.read_text())["model"]["classes"]
    csv = folder / "base.predictions.csv"
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    frame["y_pred"] = frame["y_true"]
    frame.to_csv(csv, index=False)
    shutil.copy(base, folder / "new.json")
    frame.loc[frame["y_true"].isin(classes[:10]), "y_pred"] = classes[-1]
    frame.to_csv(folder / "new.predictions.csv", index=False)
    return base, folder / "new.json"


def test_console_script_reports_two_models_first(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A model against itself on 28 images: p = 1, but far too few images: exit 4."""
    kaggle = tiny_model.data.kaggle_test
    done = _compare(tiny_model.path, tiny_model.path, "--test", kaggle, "--json", cwd=tmp_path)
    assert done.returncode == 4, done.stderr
    document = json.loads(done.stdout)
    test = next(s for s in document["sets"] if s["name"] == "asl_alphabet_test")
    assert test["p_value"] == 1.0 and test["n_images"] == 28
    assert test["verdict"] == "not enough evidence" and test["power"] < 0.1


def test_console_script_exit_codes_on_reports(reports: tuple[Path, Path], tmp_path: Path) -> None:
    base, new = reports
    worse = _compare(base, new, "--set", "ood", "--html", tmp_path / "c.html", cwd=tmp_path)
    assert worse.returncode == 3, worse.stdout + worse.stderr
    assert "**Regression** on ood." in worse.stdout
    assert "| ood | 87 | 100.0% | 65.5% |" in worse.stdout
    assert "comparison page:" in worse.stderr and (tmp_path / "c.html").is_file()
    usage = _compare(base, new, "--alpha", "2", cwd=tmp_path)
    assert usage.returncode == 2
    broken = _compare(base, tmp_path / "missing.json", cwd=tmp_path)
    assert broken.returncode == 1 and broken.stderr.startswith("error: ")


def test_comparing_two_reports_imports_neither_torch_nor_fastai(
    reports: tuple[Path, Path], tmp_path: Path
) -> None:
    base, new = reports
    code = (
        "import sys\n"
        f"sys.argv = ['asl-eval', 'compare', {str(base)!r}, {str(new)!r}, '--set', 'ood']\n"
        "from asl_eval.cli import main\n"
        "try:\n    main()\n"
        "except SystemExit as exit:\n"
        "    heavy = sorted(m for m in ('torch', 'fastai') if m in sys.modules)\n"
        "    print('EXIT', exit.code, heavy, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert "EXIT" in done.stderr and "[]" in done.stderr.splitlines()[-1], done.stderr
