"""nox sessions for asl-eval.

``nox`` alone runs the default sessions, the same ones CI runs: ``lint``, ``typecheck``,
``tests``, ``package`` and ``docs``. ``demo``, ``bench``, ``gate`` and ``screenshots`` run when
named.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "package", "docs"]
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


# What `gate` runs: two demo models trained alike; NEW then made worse on known classes by
# swapping the output rows of three pairs of classes in its last layer: the six classes it
# predicts best on its validation split, so every image of those classes it got right now gets
# the partner's name and the regression is certain. The held-out folder comes from the same
# generator as the training frames (40 more frames per class, the training frames removed).
_GATE_MODELS = """
from pathlib import Path
import torch
from asl_eval.demo_data import make_demo_dataset
from asl_eval.predictions import Predictions
from asl_eval.training import TrainConfig, train_model, valid_predictions_path
from asl_eval.trust import load_learner_file
data = make_demo_dataset("data", n_train_per_class=12, n_ood_per_class=1, size=32, seed=1)
held = make_demo_dataset("held-out", n_train_per_class=52, n_ood_per_class=1, size=32, seed=1)
for path in sorted(held.train.rglob("*.jpg")):
    if (data.train / path.relative_to(held.train)).is_file():
        path.unlink()
config = TrainConfig(image_size=32, epochs=5, lr=5e-3, batch_size=16, pretrained=False,
                     show_progress=False)
for name in ("base", "new"):
    train_model(data.train, f"{name}/model.pkl", config)
valid = Predictions.load(valid_predictions_path("new/model.pkl"))
right = valid.y_pred == valid.y_true
accuracy = {c: right[valid.y_true == i].mean() for i, c in enumerate(valid.classes)
            if (valid.y_true == i).any()}
best = sorted(accuracy, key=lambda c: (-accuracy[c], c))[:6]
learner = load_learner_file("new/model.pkl")
last = [m for m in learner.model.modules() if isinstance(m, torch.nn.Linear)][-1]
vocab = list(learner.dls.vocab)
with torch.no_grad():
    for a, b in zip(best[0::2], best[1::2]):
        rows = [vocab.index(a), vocab.index(b)]
        last.weight[rows] = last.weight[rows[::-1]].clone()
        if last.bias is not None:  # fastai's head ends in a Linear without bias
            last.bias[rows] = last.bias[rows[::-1]].clone()
learner.export(Path("new/model.pkl").resolve())
valid_predictions_path("new/model.pkl").unlink()  # NEW's saved split predates the swap
print("NEW swaps the outputs of", ", ".join(f"{a}/{b}" for a, b in zip(best[0::2], best[1::2])))
"""


@nox.session(default=False)
def gate(session: nox.Session) -> None:
    """Show the CI gate: a model made worse on known classes fails (3); itself passes (0)."""
    _install(session)
    work = Path(session.create_tmp()) / "gate"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    session.chdir(work)
    session.run("python", "-c", _GATE_MODELS)
    for name in ("base", "new"):
        session.run(
            "asl-eval", "report", f"{name}/model.pkl", "--set",
            "held-out=held-out/asl_alphabet_train", "--out", "reports", "--name", name, "--no-cam",
        )  # fmt: skip
    compare = ("asl-eval", "compare", "reports/base.json", "--set", "held-out")
    session.run(*compare, "reports/new.json", "--html", "reports/compare.html", success_codes=[3])
    session.run(*compare, "reports/base.json", success_codes=[0])


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site with mkdocs --strict (executes the notebook)."""
    _install(session, "docs")
    site = Path(session.create_tmp()) / "site"
    shutil.rmtree(site, ignore_errors=True)
    session.run("mkdocs", "build", "--strict", "--site-dir", str(site), *session.posargs)
    session.log(f"site written to {site}")


@nox.session(default=False)
def screenshots(session: nox.Session) -> None:
    """Run the demo and retake the report screenshots in docs/img/ (headless Chromium)."""
    _install(session, "test")
    session.run("python", "scripts/screenshots.py", *session.posargs)
