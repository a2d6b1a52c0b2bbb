"""nox sessions for asl-eval.

``nox`` alone runs the default sessions, the same ones CI runs: ``lint``, ``typecheck``,
``tests`` and ``package``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "package"]
nox.options.reuse_existing_virtualenvs = True

PACKAGE = "asl_eval"
ROOT = Path(__file__).parent

# What `package` runs from the installed wheel, in an empty folder: make a tiny stand-in data
# set, train for one epoch at 32 px, report, and read the report back against the packaged
# JSON Schema. A package-data file left out of the wheel fails here, not for a user.
_SMOKE_DATA = (
    "from asl_eval.demo_data import make_demo_dataset; "
    "make_demo_dataset('data', n_train_per_class=4, n_ood_per_class=1, size=32)"
)
_SMOKE_CHECK = (
    "import asl_eval as ae, pathlib, sys; "
    "assert 'site-packages' in ae.__file__, ae.__file__; "
    "doc = ae.read_report_json('reports/model.json'); "
    "assert pathlib.Path('reports/model.html').stat().st_size > 10_000; "
    "print('wheel report OK:', ae.__version__, doc['schema_version'], file=sys.stderr)"
)


def _install(session: nox.Session, *extras: str) -> None:
    """Install the project (editable) with the given extras."""
    spec = f".[{','.join(extras)}]" if extras else "."
    session.install("-e", spec)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (pytest; extra arguments are passed on)."""
    _install(session, "test")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style with ruff and the layer rules with import-linter."""
    session.install("ruff>=0.5", "import-linter>=2.1")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # import-linter reads the package's source; it need not be installed, only importable.
    session.run("lint-imports", env={"PYTHONPATH": str(ROOT)})


@nox.session
def typecheck(session: nox.Session) -> None:
    """Check types of the package with mypy (the dev extra carries the stubs)."""
    _install(session, "dev")
    session.run("mypy", PACKAGE)


@nox.session(reuse_venv=False)
def package(session: nox.Session) -> None:
    """Build the wheel, install it (not editable) into a fresh environment, run a tiny report."""
    session.install("build>=1.0")
    dist = Path(session.create_tmp()) / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run("python", "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT))
    (wheel,) = dist.glob("asl_eval-*.whl")
    session.install(str(wheel))
    work = Path(session.create_tmp()) / "smoke"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    session.chdir(work)
    session.run("python", "-c", _SMOKE_DATA)
    session.run(
        "asl-eval", "train", "data/asl_alphabet_train", "--out", "model.pkl",
        "--no-pretrained", "--image-size", "32", "--epochs", "1",
    )  # fmt: skip
    session.run(
        "asl-eval", "report", "model.pkl", "data/asl_alphabet_test", "--out", "reports",
        "--no-cam",
    )  # fmt: skip
    session.run("python", "-c", _SMOKE_CHECK)


@nox.session(default=False)
def demo(session: nox.Session) -> None:
    """Run the offline demo: generate data, train, and write reports/demo.html."""
    _install(session)
    session.run("asl-eval", "demo", *session.posargs)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Run the benchmarks in benchmarks/ and update docs/benchmarks.md."""
    _install(session, "test")
    session.run("python", "benchmarks/run_all.py", *session.posargs)
