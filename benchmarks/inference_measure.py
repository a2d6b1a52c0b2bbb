"""One row of ``bench_inference.py``, measured in a process of its own (so that its peak
resident memory is its own): load the model, run the row's way of predicting on the evaluation
images, report the time, the numbers and the memory.

``bench_inference.py --measure KIND`` calls :func:`measure`; nothing here writes the docs.
"""

from __future__ import annotations

import resource
import shutil
import time
from pathlib import Path
from typing import Any

TUTORIAL_BATCH = 64
"""The tutorial's batch size (fastai's default, and TrainConfig's), which its ``test_dl`` keeps."""


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB.

    ``VmHWM`` from ``/proc/self/status`` where there is one: ``ru_maxrss`` of a process started
    by ``fork`` and ``exec`` keeps its parent's peak, which here holds the training run.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def image_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.jpg"))


def measure_tutorial(learner: Any, kind: str, files: list[Path], n_loop: int) -> dict[str, Any]:
    """The tutorial's per-image loop, or its ``get_preds`` on a ``test_dl`` (in the tutorial's
    batches, or with ``get_preds_small``, in the ``fastai`` engine's CPU batches)."""
    if kind == "predict_loop":
        subset = files[:: max(1, len(files) // n_loop)][:n_loop]
        with learner.no_bar():
            start = time.perf_counter()
            for path in subset:
                learner.predict(path)
        return {"seconds": time.perf_counter() - start, "n": len(subset)}
    from asl_eval.inference.engines import CPU_BATCH_SIZE

    options = {"bs": CPU_BATCH_SIZE if kind == "get_preds_small" else TUTORIAL_BATCH}
    with learner.no_bar():
        start = time.perf_counter()
        probabilities, _ = learner.get_preds(dl=learner.dls.test_dl(files, **options))
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "n": len(files), "proba": probabilities.numpy().tolist()}


def measure_torch(learner: Any, files: list[Path]) -> dict[str, Any]:
    """A plain forward pass over tensors decoded and preprocessed beforehand (not timed), in
    the ``fastai`` engine's CPU batches."""
    import torch

    from asl_eval.inference.engines import CPU_BATCH_SIZE, preprocessed_batches
    from asl_eval.inputs import load_rgb

    images = [load_rgb(p) for p in files]
    batches = list(preprocessed_batches(learner, images, batch_size=CPU_BATCH_SIZE))
    model = learner.model.eval()
    with torch.inference_mode():
        start = time.perf_counter()
        for x in batches:
            model(x)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "n": len(files)}


def measure_ort(learner: Any, name: str, work: Path, files: list[Path]) -> dict[str, Any]:
    """ONNX Runtime alone: ``session.run`` on arrays preprocessed beforehand (not timed), from
    the export the ``:export`` row cached, in the engines' batches of 64."""
    import numpy as np
    import onnxruntime

    from asl_eval.inference.engines import DEFAULT_BATCH_SIZE, preprocessed_batches
    from asl_eval.inputs import load_rgb

    engine = _onnx_engine(learner, "onnx-int8" if name == "ort-int8" else "onnx", work)
    images = [load_rgb(p) for p in files]
    engine.predict(images[:1])  # reads the cached export
    assert engine.onnx_path is not None
    session = onnxruntime.InferenceSession(
        str(engine.onnx_path), providers=["CPUExecutionProvider"]
    )
    batches = [
        np.ascontiguousarray(x.numpy())
        for x in preprocessed_batches(learner, images, batch_size=DEFAULT_BATCH_SIZE)
    ]
    session.run(None, {"input": batches[0]})  # ONNX Runtime plans its memory on the first run
    start = time.perf_counter()
    for batch in batches:
        session.run(None, {"input": batch})
    return {"seconds": time.perf_counter() - start, "n": len(files)}


def _onnx_engine(learner: Any, name: str, work: Path) -> Any:
    """An ONNX engine on the export cache under ``work`` (filled by the ``:export`` rows)."""
    from asl_eval.hashing import file_sha256
    from asl_eval.inference import make_engine
    from asl_eval.inputs import load_rgb

    calibration = None
    if name == "onnx-int8":
        calibration = [load_rgb(p) for p in image_files(work / "calibration")]
    return make_engine(
        learner,
        name,
        cache_dir=work / "onnx",
        model_hash=file_sha256(work / "model.pkl"),
        calibration_images=calibration,
    )


def measure_engine(learner: Any, name: str, work: Path, cached: bool) -> dict[str, Any]:
    """An asl-eval engine through ``predict_folder``, cold or from the predictions cache."""
    from asl_eval.inference import make_engine, predict_folder
    from asl_eval.inference.cache import PredictionCache

    start = time.perf_counter()
    if name.startswith("onnx"):
        engine = _onnx_engine(learner, name, work)
    else:
        engine = make_engine(learner, "fastai", channels_last=name == "fastai+channels_last")
    setup = time.perf_counter() - start
    folder = work / ("cache-" + name)
    if not cached:
        shutil.rmtree(folder, ignore_errors=True)
    cache = PredictionCache(folder, work / "model.pkl")
    start = time.perf_counter()
    predictions = predict_folder(engine, work / "eval", cache=cache)
    seconds = time.perf_counter() - start
    agreement = getattr(engine, "agreement", None)
    return {
        "seconds": seconds,
        "setup_s": setup,
        "n": len(predictions.paths),
        "proba": predictions.y_proba.tolist(),
        "paths": list(predictions.paths),
        "agreement": agreement.to_dict() if agreement is not None else None,
    }


def measure(kind: str, work: Path, n_loop: int) -> dict[str, Any]:
    """One measurement: load the model, run ``kind``, report time and peak memory."""
    from asl_eval.trust import load_learner_file

    start = time.perf_counter()
    learner = load_learner_file(work / "model.pkl")
    load_s = time.perf_counter() - start
    files = image_files(work / "eval")
    if kind in ("predict_loop", "get_preds", "get_preds_small"):
        result = measure_tutorial(learner, kind, files, n_loop)
    elif kind == "torch":
        result = measure_torch(learner, files)
    elif kind in ("ort", "ort-int8"):
        result = measure_ort(learner, kind, work, files)
    elif kind.endswith(":export"):
        start = time.perf_counter()
        measure_engine_export(learner, kind.split(":")[0], work)
        result = {"seconds": time.perf_counter() - start, "n": 0}
    else:
        name, _, mode = kind.partition(":")
        result = measure_engine(learner, name, work, cached=mode == "cached")
    import torch

    return {
        **result,
        "load_s": load_s,
        "peak_rss_mb": peak_rss_mb(),
        "threads": torch.get_num_threads(),
    }


def measure_engine_export(learner: Any, name: str, work: Path) -> None:
    """Export (and for int8, calibrate and quantize) once, filling the ONNX file cache."""
    from asl_eval.inputs import load_rgb

    engine = _onnx_engine(learner, name, work)
    engine.verify([load_rgb(p) for p in image_files(work / "eval")[:32]])
