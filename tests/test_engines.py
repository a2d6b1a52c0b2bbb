"""The inference engines against fastai's own ``get_preds`` on a real tiny learner.

References are computed here, independently of the engines: ``learner.get_preds`` on a
``test_dl`` for probabilities, and numpy for the agreement figures.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from asl_eval.errors import InputError, ModelLoadError
from asl_eval.inference import ENGINES, make_engine
from asl_eval.inference.engines import (
    CPU_BATCH_SIZE,
    DEFAULT_BATCH_SIZE,
    FastaiEngine,
    default_batch_size,
    preprocessed_batches,
)
from asl_eval.inference.onnx_engine import (
    FLOAT_TOLERANCE,
    OnnxEngine,
    compare,
    state_dict_hash,
)
from asl_eval.inference.onnx_export import write_verified
from asl_eval.inputs import load_rgb


@pytest.fixture(scope="module")
def images(tiny_data):  # type: ignore[no-untyped-def]
    """Real demo images of every kind (training frames and the out-of-domain set), decoded."""
    files = (
        sorted(tiny_data.ood_test.rglob("*.jpg"))[:45]
        + sorted(tiny_data.train.rglob("*.jpg"))[::12]
    )
    return [load_rgb(path) for path in files]


@pytest.fixture(scope="module")
def reference(tiny_learner, images) -> np.ndarray:  # type: ignore[no-untyped-def]
    """fastai's own probabilities: the tutorial's ``get_preds`` on a ``test_dl``."""
    dl = tiny_learner.dls.test_dl(images, bs=64, num_workers=0)
    with tiny_learner.no_bar():
        probabilities, _ = tiny_learner.get_preds(dl=dl)
    return probabilities.numpy().astype(np.float64)


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx_cache")


@pytest.fixture(scope="module")
def onnx_engine(tiny_learner, images, onnx_cache) -> OnnxEngine:  # type: ignore[no-untyped-def]
    engine = make_engine(tiny_learner, "onnx", cache_dir=onnx_cache)
    assert isinstance(engine, OnnxEngine)
    engine.predict(images)
    return engine


def _learner_state(learner):  # type: ignore[no-untyped-def]
    parameters = list(learner.model.parameters())
    return (
        [module.training for module in learner.model.modules()],
        {str(p.device) for p in parameters},
        {p.dtype for p in parameters},
        [p.is_contiguous() for p in parameters],
    )


@pytest.mark.parametrize("batch_size", [None, 3, 64])
def test_fastai_engine_matches_get_preds(tiny_learner, images, reference, batch_size) -> None:  # type: ignore[no-untyped-def]
    """Whatever the batch size (the CPU default is small, get_preds batches by the learner's),
    the probabilities are get_preds's."""
    engine = make_engine(tiny_learner, "fastai", batch_size=batch_size)
    assert engine.batch_size == (batch_size or CPU_BATCH_SIZE)
    probabilities = engine.predict(images)
    assert probabilities.dtype == np.float64
    assert probabilities.shape == reference.shape
    assert np.abs(probabilities - reference).max() <= 1e-6
    assert (probabilities.argmax(axis=1) == reference.argmax(axis=1)).all()
    assert engine.predict([]).shape == (0, len(engine.classes))


def test_fastai_engine_describes_what_changes_the_numbers(tiny_learner) -> None:  # type: ignore[no-untyped-def]
    described = make_engine(tiny_learner, "fastai").describe()
    json.dumps(described)
    assert described["engine"] == "fastai"
    assert described["device"] == "cpu"  # no CUDA on the test machines
    assert described["exact"] is True
    assert described["batch_size"] == CPU_BATCH_SIZE
    assert any("Resize" in t for t in described["preprocessing"]["item"])
    assert described["preprocessing"]["batch"][0].startswith("IntToFloatTensor")
    assert described["preprocessing"]["activation"] == "CrossEntropyLossFlat"
    fast = make_engine(tiny_learner, "fastai", bf16=True, channels_last=True).describe()
    assert (fast["exact"], fast["bf16"], fast["channels_last"]) == (False, True, True)


def test_default_batch_size_is_small_only_for_torch_on_the_cpu() -> None:
    assert default_batch_size("fastai", "cpu") == CPU_BATCH_SIZE < DEFAULT_BATCH_SIZE
    assert default_batch_size("fastai", "cuda:1") == DEFAULT_BATCH_SIZE
    assert (
        default_batch_size("onnx", "cpu") == default_batch_size("onnx-int8") == DEFAULT_BATCH_SIZE
    )
    import torch

    expected = DEFAULT_BATCH_SIZE if torch.cuda.is_available() else CPU_BATCH_SIZE
    assert default_batch_size("fastai") == expected


def test_engines_leave_the_learner_as_found(tiny_learner, images) -> None:  # type: ignore[no-untyped-def]
    model = tiny_learner.model
    model.train()
    model[0].eval()  # a mixed state, as a frozen body would be
    before = _learner_state(tiny_learner)
    try:
        make_engine(tiny_learner, "fastai").predict(images[:8])
        fast = make_engine(tiny_learner, "fastai", bf16=True, channels_last=True)
        probabilities = fast.predict(images[:8])
        assert _learner_state(tiny_learner) == before
        assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-3)
    finally:
        model.eval()


def test_learner_with_other_callbacks_goes_through_get_preds(tiny_learner, images) -> None:  # type: ignore[no-untyped-def]
    from fastai.callback.core import Callback

    class HalveLogits(Callback):
        def after_pred(self) -> None:
            self.learn.pred = self.learn.pred / 2

    with tiny_learner.added_cbs(HalveLogits()):
        engine = make_engine(tiny_learner, "fastai")
        assert isinstance(engine, FastaiEngine)
        assert engine.path == "get_preds"
        probabilities = engine.predict(images[:16])
        dl = tiny_learner.dls.test_dl(images[:16], num_workers=0)
        with tiny_learner.no_bar():
            expected, _ = tiny_learner.get_preds(dl=dl)
    assert np.abs(probabilities - expected.numpy()).max() <= 1e-6


def test_onnx_engine_agrees_with_fastai(onnx_engine, images, reference) -> None:  # type: ignore[no-untyped-def]
    probabilities = onnx_engine.predict(images)
    assert np.abs(probabilities - reference).max() <= FLOAT_TOLERANCE
    assert (probabilities.argmax(axis=1) == reference.argmax(axis=1)).all()
    agreement = onnx_engine.agreement
    assert agreement is not None
    assert agreement.n_checked == 32
    checked = probabilities[:32]
    assert agreement.max_abs_diff == pytest.approx(np.abs(checked - reference[:32]).max(), abs=1e-7)
    assert agreement.top1_agreement == 1.0
    assert agreement.warning is None
    described = onnx_engine.describe()
    json.dumps(described)
    json.dumps(agreement.to_dict())
    assert described["engine"] == "onnx"
    assert described["providers"] == ["CPUExecutionProvider"]
    assert onnx_engine.predict(images[:1]).shape == (1, len(onnx_engine.classes))


def test_cached_export_is_reused(
    tiny_learner, images, onnx_engine, onnx_cache, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import asl_eval.inference.onnx_engine as module

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again although the cached file is intact")

    monkeypatch.setattr(module, "export_model", no_export)
    again = make_engine(tiny_learner, "onnx", cache_dir=onnx_cache)
    assert np.array_equal(again.predict(images), onnx_engine.predict(images))


def test_export_without_keeping_leaves_no_file(tiny_learner, images, onnx_engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "untouched"
    engine = make_engine(tiny_learner, "onnx", cache_dir=folder, keep_export=False)
    assert np.array_equal(engine.predict(images), onnx_engine.predict(images))
    assert not folder.exists()
    assert engine.onnx_path is None


def test_tampered_export_is_refused_and_rebuilt(  # type: ignore[no-untyped-def]
    tiny_learner, images, onnx_engine, onnx_cache, caplog
) -> None:
    path = onnx_engine.onnx_path
    original = path.read_bytes()
    tampered = bytearray(original)
    tampered[len(tampered) // 2] ^= 0xFF
    path.write_bytes(bytes(tampered))
    engine = make_engine(tiny_learner, "onnx", cache_dir=onnx_cache)
    with caplog.at_level(logging.WARNING, logger="asl_eval.inference.onnx_export"):
        probabilities = engine.predict(images)
    assert "does not match its recorded SHA-256" in caplog.text
    assert path.read_bytes() != bytes(tampered)
    assert np.abs(probabilities - onnx_engine.predict(images)).max() <= 1e-6


def test_disagreeing_export_is_a_clear_error(  # type: ignore[no-untyped-def]
    tiny_learner, images, onnx_engine, onnx_cache, tmp_path
) -> None:
    # a well-formed ONNX file of another model, with a matching manifest: only the agreement
    # check can catch it
    import copy

    from asl_eval.inference.onnx_export import export_model

    other = copy.deepcopy(tiny_learner.model)
    last_weight = list(other[1].parameters())[-1]
    last_weight.data.mul_(3.0)  # sharper probabilities, same top-1: only the tolerance catches it
    sample = next(iter(tiny_learner.dls.test_dl(images[:2], num_workers=0)))[0].numpy()
    data = export_model(other, sample, tmp_path / "other.onnx").read_bytes()
    path = onnx_engine.onnx_path
    key = json.loads(path.with_suffix(".json").read_text())["key"]
    write_verified(path, data, key=key)
    engine = make_engine(tiny_learner, "onnx", cache_dir=onnx_cache)
    with pytest.raises(ModelLoadError, match=r"disagrees with the fastai model on 32 checked"):
        engine.predict(images)
    assert not path.exists()


def test_int8_engine_reports_its_agreement(tiny_learner, images, reference, onnx_cache) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(
        tiny_learner,
        "onnx-int8",
        cache_dir=onnx_cache,
        calibration_images=images[::2],
        check_size=40,
    )
    probabilities = engine.predict(images)
    agreement = engine.agreement
    assert agreement is not None
    expected = float(np.mean(probabilities[:40].argmax(axis=1) == reference[:40].argmax(axis=1)))
    assert agreement.n_checked == 40
    assert agreement.top1_agreement == pytest.approx(expected)
    assert agreement.max_abs_diff == pytest.approx(
        np.abs(probabilities[:40] - reference[:40]).max()
    )
    assert (agreement.warning is None) == (expected >= 0.99)
    quantization = engine.describe()["quantization"]
    assert quantization["format"] == "QDQ"
    assert quantization["n_calibration_images"] == len(images[::2])
    # the calibration's hash, recomputed: SHA-256 over fastai's input batches of 16, shape first
    digest = hashlib.sha256()
    for x in preprocessed_batches(tiny_learner, images[::2], batch_size=16):
        batch = x.numpy()
        digest.update(f"{batch.shape}".encode())
        digest.update(batch.tobytes())
    assert quantization["calibration_sha256"] == digest.hexdigest()
    quantization["calibration_sha256"] = "changed by the caller"  # a copy: the engine's stays
    assert engine.describe()["quantization"]["calibration_sha256"] == digest.hexdigest()
    assert engine.onnx_path is not None and engine.onnx_path.name.startswith("onnx-int8-")


def test_int8_needs_calibration_images(tiny_learner, onnx_cache) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="onnx-int8 needs calibration images"):
        make_engine(tiny_learner, "onnx-int8", cache_dir=onnx_cache)


def test_missing_extra_says_how_to_install(tiny_learner, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(InputError, match=r"onnxruntime.*pip install 'asl-eval\[fast\]'"):
        make_engine(tiny_learner, "onnx")


def test_unknown_engine_and_misplaced_options(tiny_learner) -> None:  # type: ignore[no-untyped-def]
    assert ENGINES == ("fastai", "onnx", "onnx-int8")
    with pytest.raises(InputError, match="unknown engine 'tensorrt'; choose one of fastai, onnx"):
        make_engine(tiny_learner, "tensorrt")
    with pytest.raises(InputError, match="apply to the fastai engine, not onnx"):
        make_engine(tiny_learner, "onnx", bf16=True)
    with pytest.raises(InputError, match="batch_size must be at least 1"):
        make_engine(tiny_learner, "fastai", batch_size=0)


def test_compare_counts_only_real_top1_changes() -> None:
    reference = np.array([[0.7, 0.2, 0.1], [0.50002, 0.49998, 0.0], [0.1, 0.3, 0.6]])
    candidate = np.array([[0.7, 0.2, 0.1], [0.49998, 0.50002, 0.0], [0.1, 0.6, 0.3]])
    diff, top1, real = compare(reference, candidate)
    assert diff == pytest.approx(0.3)
    assert top1 == pytest.approx(1 / 3)
    assert real == 1  # the near-tie in row 2 flipped within the tolerance; row 3 is real


def test_state_dict_hash_follows_the_weights(tiny_learner) -> None:  # type: ignore[no-untyped-def]
    import copy

    first = state_dict_hash(tiny_learner.model)
    assert first == state_dict_hash(tiny_learner.model)
    assert len(first) == 64
    other = copy.deepcopy(tiny_learner.model)
    next(other.parameters()).data.view(-1)[0] += 1.0
    assert state_dict_hash(other) != first


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(_cuda(), reason="checks the message on a machine without CUDA")
def test_cuda_without_cuda_is_a_clear_error(tiny_learner) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="'cuda' asked for, but torch sees no CUDA device"):
        make_engine(tiny_learner, "fastai", device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="needs a CUDA device")
def test_fastai_engine_runs_on_the_gpu_by_default(tiny_learner, images, reference) -> None:  # type: ignore[no-untyped-def]
    before = _learner_state(tiny_learner)
    engine = make_engine(tiny_learner, "fastai")
    assert engine.describe()["device"] == "cuda"
    probabilities = engine.predict(images)
    # TF32 is off for the engine's convolutions, so the GPU's numbers are the CPU's up to
    # float32 rounding (with TF32 on, an H200 differed by 1.6e-3)
    assert np.abs(probabilities - reference).max() <= 1e-5
    assert (probabilities.argmax(axis=1) == reference.argmax(axis=1)).all()
    assert _learner_state(tiny_learner) == before
