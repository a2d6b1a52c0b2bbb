"""Shared fixtures: tiny generated data sets and a real fastai learner trained on them.

Nothing here is mocked. ``tiny_model`` trains a resnet18 from scratch (``pretrained=False``) on
32-pixel glyph images in a few seconds and is shared by the whole session.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_ASL = Path(os.environ.get("ASL_EVAL_SHARED_DATA", REPO_ROOT.parent / "shared/data/asl"))


def shared_asl_data() -> Path:
    """The real ASL photos (``../shared/data/asl``); skips the test when they are absent."""
    if not (SHARED_ASL / "asl_alphabet_train").is_dir():
        pytest.skip(f"real ASL photos not found at {SHARED_ASL}")
    return SHARED_ASL


@dataclass(frozen=True)
class RealReport:
    """One report on the real photos, written by the console's commands."""

    out: Path
    html: str
    report: dict[str, object]


@pytest.fixture(scope="session")
def real_asl_report(tmp_path_factory: pytest.TempPathFactory) -> RealReport:
    """``asl-eval train`` on the shared training frames (a 32-pixel resnet18 from scratch, two
    epochs: a few minutes on two cores, so trained once per session), then ``asl-eval report``
    on the official test folder and on massey/, with Grad-CAM on massey. Skips without the
    photos."""
    import json

    from typer.testing import CliRunner

    from asl_eval.cli import app

    data = shared_asl_data()
    work = tmp_path_factory.mktemp("real")
    model = work / "asl.pkl"
    runner = CliRunner()
    train = ["train", str(data / "asl_alphabet_train"), "--out", str(model), "--no-pretrained"]
    train += ["--image-size", "32", "--epochs", "2", "--lr", "5e-3"]
    trained = runner.invoke(app, train)
    assert trained.exit_code == 0, trained.output
    out = work / "reports"
    report = ["report", str(model), "--out", str(out)]
    report += ["--set", f"kaggle28={data / 'asl_alphabet_test'}"]
    report += ["--set", f"massey={data / 'massey'}", "--cam-set", "massey"]
    # layer4 of a 32-pixel resnet18 is 1x1; layer2 still has a 4x4 map
    report += ["--cam-layer", "0.5"]
    reported = runner.invoke(app, report)
    assert reported.exit_code == 0, reported.output
    return RealReport(
        out,
        (out / "asl.html").read_text(encoding="utf-8"),
        json.loads((out / "asl.json").read_text(encoding="utf-8")),
    )


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Reports cache predictions by default: the tests' cache lives in a temporary folder, never
    in the user's ``~/.cache/asl-eval``. Subprocesses inherit it through the environment."""
    previous = os.environ.get("ASL_EVAL_CACHE_DIR")
    os.environ["ASL_EVAL_CACHE_DIR"] = str(tmp_path_factory.mktemp("asl-eval-cache"))
    yield
    if previous is None:
        os.environ.pop("ASL_EVAL_CACHE_DIR", None)
    else:
        os.environ["ASL_EVAL_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The demo's three folders, small: 29 classes x 12 training frames, 3 OOD images each."""
    from asl_eval.demo_data import make_demo_dataset

    root = tmp_path_factory.mktemp("tiny_data")
    return make_demo_dataset(root, n_train_per_class=12, n_ood_per_class=3, size=32, seed=1)


@dataclass(frozen=True)
class TinyModel:
    """A trained, exported learner and where its files are."""

    path: Path
    valid_predictions: Path
    data: object


@pytest.fixture(scope="session")
def tiny_model(tiny_data, tmp_path_factory: pytest.TempPathFactory) -> TinyModel:  # type: ignore[no-untyped-def]
    """A resnet18 trained from scratch for 5 epochs on ``tiny_data``, exported with fastai.

    It reaches about 65% on its validation split and predicts a dozen distinct classes, enough
    for every table and chart to hold real, varied numbers.
    """
    from asl_eval.training import TrainConfig, train_model

    out = tmp_path_factory.mktemp("tiny_model") / "model.pkl"
    config = TrainConfig(
        image_size=32, epochs=5, lr=5e-3, batch_size=16, pretrained=False, show_progress=False
    )
    result = train_model(tiny_data.train, out, config)
    return TinyModel(result.model_path, result.valid_predictions_path, tiny_data)


@pytest.fixture(scope="session")
def tiny_learner(tiny_model: TinyModel):  # type: ignore[no-untyped-def]
    """The tiny model loaded back with :func:`asl_eval.trust.load_learner_file`."""
    from asl_eval.trust import load_learner_file

    return load_learner_file(tiny_model.path)


@pytest.fixture(scope="session")
def tiny_safe_pair(tiny_learner, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """``tiny_learner`` written once in the safe format: (model.safetensors, model.json)."""
    from asl_eval.trust import export_safe

    return export_safe(tiny_learner, tmp_path_factory.mktemp("safe") / "model.safetensors")
