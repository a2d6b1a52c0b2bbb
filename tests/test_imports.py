"""The light modules stay light: a notebook user imports the metrics without torch or fastai."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "fastai", "torchvision", "pytorch_grad_cam", "jinja2", "matplotlib")


@pytest.mark.parametrize(
    "module",
    [
        "asl_eval",
        "asl_eval.metrics",
        "asl_eval.labels",
        "asl_eval.predictions",
        "asl_eval.inputs",
        # the trust stage loads fastai only inside the functions that load a model
        "asl_eval.trust",
    ],
)
def test_light_modules_import_no_heavy_dependency(module: str) -> None:
    code = (
        f"import sys, {module}\nprint(','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "", f"{module} imported {result.stdout.strip()}"


def test_cli_help_does_not_import_fastai() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from asl_eval.cli import app\n"
        "assert CliRunner().invoke(app, ['report', '--help']).exit_code == 0\n"
        "print('fastai' in sys.modules, 'torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "False False"


def test_the_command_line_loads_no_numerical_library_before_a_command_runs() -> None:
    """``asl-eval --help`` and every command's registration stay light: the stage packages
    whose commands the CLI registers (audit, compare) load their names on first use."""
    code = (
        "import sys\n"
        "import asl_eval.cli\n"
        "heavy = ('numpy', 'pandas', 'scipy', 'PIL', 'imagehash', 'torch', 'fastai')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"


def test_lazy_stage_packages_serve_every_public_name() -> None:
    import asl_eval.audit
    import asl_eval.compare
    import asl_eval.stress

    for package in (asl_eval.audit, asl_eval.compare, asl_eval.stress):
        for name in package.__all__:
            assert getattr(package, name) is not None, (package.__name__, name)
