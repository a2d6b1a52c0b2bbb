"""Interrupted runs resume from their finished chunks and end with the same numbers.

Two interruptions: the test-only hook (``ASL_EVAL_TEST_STOP_AFTER_CHUNK``), which raises
KeyboardInterrupt like Ctrl-C after chunk k; and a real SIGKILL of the ``asl-eval`` console
script, sent once chunk files exist (the hook's ``k:hang`` form holds the process there).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from asl_eval.inference import PredictionCache, predict_folder
from asl_eval.inference.run import STOP_AFTER_CHUNK_ENV

CHUNK = 8
SCRIPT = Path(sys.executable).with_name("asl-eval")


def _manifests(cache_root: Path) -> list[Path]:
    found = sorted((cache_root / "v1" / "runs").glob("*/*.json"))
    return [f for f in found if f.name != "key.json"]


class _Counting:
    def __init__(self, learner) -> None:  # type: ignore[no-untyped-def]
        from asl_eval.inference import make_engine

        self.inner = make_engine(learner, "fastai")
        self.name, self.classes = self.inner.name, self.inner.classes
        self.n_predicted = 0

    def describe(self):  # type: ignore[no-untyped-def]
        return self.inner.describe()

    def predict(self, images):  # type: ignore[no-untyped-def]
        self.n_predicted += len(images)
        return self.inner.predict(images)


def test_resume_after_the_test_hook_stops_at_chunk_k(  # type: ignore[no-untyped-def]
    tiny_model, tiny_learner, tiny_data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = PredictionCache(tmp_path / "cache", tiny_model.path)
    uninterrupted = predict_folder(tiny_learner, tiny_data.ood_test, chunk_size=CHUNK)
    monkeypatch.setenv(STOP_AFTER_CHUNK_ENV, "2")
    with pytest.raises(KeyboardInterrupt):
        predict_folder(tiny_learner, tiny_data.ood_test, chunk_size=CHUNK, cache=cache)
    assert len(_manifests(cache.root)) == 3  # chunks 0, 1 and 2, each stored as it finished
    monkeypatch.delenv(STOP_AFTER_CHUNK_ENV)
    engine = _Counting(tiny_learner)
    resumed = predict_folder(engine, tiny_data.ood_test, chunk_size=CHUNK, cache=cache)
    assert engine.n_predicted == uninterrupted.n_images - 3 * CHUNK
    assert np.array_equal(resumed.y_proba, uninterrupted.y_proba)
    assert resumed.sha256 == uninterrupted.sha256


def _report(model: Path, folder: Path, out: Path, cache: Path, **env: str):  # type: ignore[no-untyped-def]
    """Start ``asl-eval report`` (same command line every time; the cache folder comes from
    the environment, so the recorded command does not change)."""
    environment = {k: v for k, v in os.environ.items() if k != STOP_AFTER_CHUNK_ENV}
    environment.update(ASL_EVAL_CACHE_DIR=str(cache), **env)
    command = [str(SCRIPT), "report", str(model), str(folder), "--no-cam"]
    command += ["--chunk-size", str(CHUNK), "--out", str(out)]
    return subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _without_timestamp(path: Path) -> dict[str, object]:
    data = json.loads(path.read_text())
    assert data.pop("generated_at")
    return data


def test_resume_after_sigkill_of_the_console_script(tiny_model, tiny_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out, cache = tmp_path / "out", tmp_path / "cache"
    killed = _report(
        tiny_model.path, tiny_data.ood_test, out, cache, **{STOP_AFTER_CHUNK_ENV: "3:hang"}
    )
    deadline = time.monotonic() + 300
    while len(_manifests(cache)) < 4 and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert killed.poll() is None, killed.communicate()
    os.kill(killed.pid, signal.SIGKILL)
    killed.communicate()
    assert killed.returncode == -signal.SIGKILL
    assert not (out / "model.json").exists()
    stored = {m: m.stat().st_mtime_ns for m in _manifests(cache)}
    assert len(stored) == 4

    resumed = _report(tiny_model.path, tiny_data.ood_test, out, cache)
    stdout, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr
    assert {m: m.stat().st_mtime_ns for m in list(stored)} == stored  # not predicted again
    assert len(_manifests(cache)) == 11
    shutil.move(out, tmp_path / "resumed")

    fresh = _report(tiny_model.path, tiny_data.ood_test, out, tmp_path / "empty-cache")
    fresh_stdout, stderr = fresh.communicate(timeout=600)
    assert fresh.returncode == 0, stderr
    assert fresh_stdout == stdout
    resumed_json = _without_timestamp(tmp_path / "resumed" / "model.json")
    assert resumed_json == _without_timestamp(out / "model.json")
    csv = "model.predictions.csv"
    assert (tmp_path / "resumed" / csv).read_bytes() == (out / csv).read_bytes()
