"""nox sessions for asl-eval: ``nox -s tests`` is the one CI runs."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

PACKAGE = "asl_eval"


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
    """Check style with ruff (lint and format)."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Check types of the package with mypy."""
    _install(session, "dev")
    session.run("mypy", PACKAGE)


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
