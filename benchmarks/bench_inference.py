"""Inference speed: the fastai tutorial's ways against asl-eval's engines, same model, same images.

Run ``python benchmarks/bench_inference.py`` (``--images``, ``--loop-images``,
``--train-per-class``, ``--epochs``, ``--train-batch-size``, ``--keep``, ``--no-write``). It
needs the shared ASL photos (``../shared/data/asl``, or ``$ASL_EVAL_SHARED_DATA``) and skips
with a message when they are absent.

1. Trains a fastai resnet18 (``pretrained=False``) at 200 px for a few epochs on some of the
   shared training frames with :func:`asl_eval.training.train_model`, so that the model predicts
   something and int8 agreement means something.
2. Copies ``--images`` other frames (870: 30 per class) into a folder, one subfolder per class.
3. Measures, each in a fresh process (``inference_measure.py``, so that its peak resident
   memory is its own), on those images: the tutorial's per-image ``learn.predict`` loop (on
   ``--loop-images`` of them), the tutorial's ``learn.get_preds(dl=learn.dls.test_dl(files))``
   in its batches of 64, the same
   in the ``fastai`` engine's CPU batches of 8, the runtimes alone on inputs decoded and
   preprocessed beforehand (a plain torch forward pass, ONNX Runtime's ``session.run`` on the
   float and int8 exports: each engine's floor, no decoding, no pipeline), and each asl-eval
   engine through :func:`asl_eval.inference.predict_folder` with an empty
   predictions cache (cold) and again from the cache. The ONNX engines' one-time export (and
   int8 calibration) runs in a process of its own first and is reported apart.

Times are wall-clock milliseconds per image for the measured call (model loading excluded, shown
as setup); ratios are the tutorial's ``get_preds`` time divided by each one's. The figures are
printed and written into this project's ``docs/benchmarks.md`` between the ``bench_inference``
markers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import cpu_model, markers, write_section
from inference_measure import TUTORIAL_BATCH, measure

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ASL_EVAL_SHARED_DATA", ROOT.parent / "shared" / "data" / "asl"))
START, END = markers("bench_inference")
ENGINE_RUNS = ("fastai", "onnx", "onnx-int8")
ORDER = (
    "predict_loop",
    "get_preds",
    "get_preds_small",
    "torch",
    "ort",
    "ort-int8",
    "fastai",
    "fastai:cached",
    "fastai+channels_last",
    "fastai+channels_last:cached",
    "onnx:export",
    "onnx",
    "onnx:cached",
    "onnx-int8:export",
    "onnx-int8",
    "onnx-int8:cached",
)
TARGETS = {"fastai": 1.25, "onnx": 2.0, "onnx-int8": 5.0}
LABELS = {
    "predict_loop": "tutorial: `learn.predict(file)` per image",
    "get_preds": "tutorial: `learn.get_preds(dl=learn.dls.test_dl(files))`, batches of 64",
    "get_preds_small": "`learn.get_preds` on `test_dl(files, bs=8)` (the engine's CPU batch)",
    "torch": "plain torch forward on pre-decoded tensors, batches of 8 (torch's floor)",
    "ort": "ONNX Runtime float32 `session.run` on pre-decoded arrays (its floor)",
    "ort-int8": "ONNX Runtime int8 `session.run` on pre-decoded arrays (its floor)",
}
FLOORS = {"fastai": "torch", "onnx": "ort", "onnx-int8": "ort-int8"}


def frames_by_class(train: Path) -> dict[str, list[Path]]:
    """The shared training frames, per class folder, sorted."""
    return {
        folder.name: sorted(folder.glob("*.jpg"))
        for folder in sorted(train.iterdir())
        if folder.is_dir()
    }


def copy_frames(
    frames: dict[str, list[Path]], target: Path, start: int, count: int, step: int = 1
) -> int:
    """Copy frames ``start, start + step, ...`` (``count`` of them) of each class into
    ``target/<class>/``."""
    copied = 0
    for label, files in frames.items():
        (target / label).mkdir(parents=True, exist_ok=True)
        for path in files[start : start + count * step : step]:
            shutil.copy2(path, target / label / path.name)
            copied += 1
    return copied


def prepare(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Train the model and lay out the evaluation and calibration folders under ``work``."""
    from asl_eval.training import TrainConfig, train_model

    frames = frames_by_class(SHARED / "asl_alphabet_train")
    per_class = -(-args.images // len(frames))
    n_train = copy_frames(frames, work / "train", 0, args.train_per_class)
    n_eval = copy_frames(frames, work / "eval", args.train_per_class, per_class)
    # calibration frames spread through each class's training frames, as a report spreads its
    # choice through the validation split: consecutive frames are near-copies, and calibrating
    # on them moved int8 top-1 agreement from 98% to 87% with this model
    step = max(1, args.train_per_class // args.calibration_per_class)
    shutil.rmtree(work / "calibration", ignore_errors=True)
    copy_frames(frames, work / "calibration", 0, args.calibration_per_class, step)
    # Not the tutorial's recipe: without pretrained weights (none can be downloaded here), its
    # learning rate 1e-2, augmentation and batches of 64 learn little in a benchmark's training
    # time (about 20% validation accuracy after 8 epochs). Smaller batches, a lower rate and no
    # augmentation give a model that predicts something (about 76% at 64 px in 10 epochs),
    # which is what the int8 agreement needs. The baseline still predicts in batches of 64.
    config = TrainConfig(
        image_size=200,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.train_batch_size,
        augment=False,
        pretrained=False,
        show_progress=False,
    )
    setup_file = work / "setup.json"
    if args.keep and setup_file.is_file() and (work / "model.pkl").is_file():
        print(f"reusing the model trained earlier in {work}", flush=True)
        return dict(json.loads(setup_file.read_text()))
    start = time.perf_counter()
    result = train_model(work / "train", work / "model.pkl", config)
    setup = {
        "n_train": n_train,
        "n_eval": n_eval,
        "eval_per_class": per_class,
        "epochs": args.epochs,
        "train_batch_size": config.batch_size,
        "lr": config.lr,
        "train_s": time.perf_counter() - start,
        "valid_accuracy": result.valid_accuracy,
    }
    setup_file.write_text(json.dumps(setup))
    return setup


def run_child(kind: str, work: Path, n_loop: int) -> dict[str, Any]:
    """Run one measurement in a fresh Python process and read its JSON result."""
    out = work / f"{kind.replace(':', '-')}.json"
    command = [sys.executable, __file__, "--measure", kind, "--work", str(work)]
    command += ["--loop-images", str(n_loop), "--out", str(out)]
    print(f"  measuring {kind} ...", flush=True)
    subprocess.run(command, check=True)
    return dict(json.loads(out.read_text()))


# --- the whole benchmark ---------------------------------------------------------------------


def agreement(reference: list[list[float]], other: list[list[float]]) -> dict[str, float]:
    """Largest probability difference and top-1 agreement of ``other`` with ``reference``."""
    import numpy as np

    a, b = np.asarray(reference), np.asarray(other)
    return {
        "max_abs_diff": float(np.abs(a - b).max()),
        "top1": float((a.argmax(axis=1) == b.argmax(axis=1)).mean()),
    }


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Prepare, measure everything, and compare the engines' numbers with ``get_preds``'s."""
    import torch

    print("training the model ...", flush=True)
    setup = prepare(work, args)
    rows: dict[str, dict[str, Any]] = {}
    for name in ("onnx", "onnx-int8"):
        rows[name + ":export"] = run_child(name + ":export", work, args.loop_images)
    timed = ["predict_loop", "get_preds", "get_preds_small", "torch", "ort", "ort-int8"]
    for name in (*ENGINE_RUNS, "fastai+channels_last"):
        timed += [name, name + ":cached"]
    for round_ in range(args.rounds):  # interleaved rounds: a busy neighbour slows all alike
        print(f"round {round_ + 1} of {args.rounds}", flush=True)
        for kind in timed:
            row = run_child(kind, work, args.loop_images)
            if kind not in rows or row["seconds"] < rows[kind]["seconds"]:
                rows[kind] = row
    reference = rows["get_preds"]["proba"]
    y_true = [Path(p).parent.name for p in rows["fastai"]["paths"]]
    engines = (*ENGINE_RUNS, "fastai+channels_last")
    checks = {name: agreement(reference, rows[name]["proba"]) for name in engines}
    checks["cached"] = {
        name: rows[name]["proba"] == rows[name + ":cached"]["proba"] for name in engines
    }
    checks["int8_vs_onnx"] = agreement(rows["onnx"]["proba"], rows["onnx-int8"]["proba"])
    classes = sorted({*y_true})
    predicted = [classes[i] for i in _argmax(rows["fastai"]["proba"])]
    setup["eval_accuracy"] = sum(p == t for p, t in zip(predicted, y_true, strict=True)) / len(
        y_true
    )
    for row in rows.values():
        row.pop("proba", None)
        row.pop("paths", None)
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 0,
        "torch": torch.__version__,
        "onnxruntime": _version("onnxruntime"),
        "setup": {**setup, "rounds": args.rounds},
        "rows": {kind: rows[kind] for kind in ORDER},
        "checks": checks,
    }


def _argmax(proba: list[list[float]]) -> list[int]:
    return [max(range(len(row)), key=row.__getitem__) for row in proba]


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _ms(row: dict[str, Any]) -> float:
    return float(row["seconds"]) * 1000 / max(1, int(row["n"]))


def render(r: dict[str, Any]) -> str:
    """The markdown section (between the markers)."""
    rows: dict[str, dict[str, Any]] = r["rows"]
    setup: dict[str, Any] = r["setup"]
    checks: dict[str, dict[str, Any]] = r["checks"]
    base = _ms(rows["get_preds"])
    lines = [
        START,
        "## Inference (`benchmarks/bench_inference.py`)",
        "",
        f"Machine: {r['cpu']}, {r['cores']} cores ({rows['get_preds']['threads']} torch threads), "
        f"no GPU used, torch {r['torch']}, ONNX Runtime {r['onnxruntime']}. Model: fastai "
        f"resnet18 (`pretrained=False`) at 200x200 px trained by `asl_eval.training.train_model` "
        f"(no augmentation, learning rate {setup.get('lr', 1e-2):g}, batches of "
        f"{setup.get('train_batch_size', 32)}: see the script for why) for {setup['epochs']} "
        f"epochs on {setup['n_train']} shared training frames (validation "
        f"accuracy {float(setup['valid_accuracy']):.1%}{_train_time(setup)}). Images: "
        f"{setup['n_eval']} other training frames (200x200 JPEG, {_per_class(setup)} per "
        f"class; the model is right on {float(setup['eval_accuracy']):.1%}). Each row runs in "
        f"a fresh process, in {setup['rounds']} interleaved rounds, the fastest kept; model "
        f"loading is excluded (shown as setup). The tutorial's `get_preds` predicts in the "
        f"tutorial's batches of {TUTORIAL_BATCH} (`test_dl(files, bs={TUTORIAL_BATCH})`: this "
        f"model was trained in batches of {setup.get('train_batch_size', 32)}, which its "
        "`test_dl` would otherwise keep). Cold rows include decoding, fastai's preprocessing "
        "and, for the ONNX engines, loading the cached export and the agreement check on 32 "
        "images. Ratio: the tutorial's `get_preds` time divided by the "
        "row's. Peak RSS: the process's peak resident memory.",
        "",
        "| what | images | ms per image | x get_preds | setup s | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind, row in rows.items():
        label = LABELS.get(kind) or _engine_label(kind)
        ratio = "" if kind.endswith(":export") else f"{base / _ms(row):.2f}"
        ms = (
            f"{float(row['seconds']):.1f} s once" if kind.endswith(":export") else f"{_ms(row):.2f}"
        )
        setup_s = float(row.get("setup_s", 0.0)) + float(row["load_s"])
        lines.append(
            f"| {label} | {row['n']} | {ms} | {ratio} | {setup_s:.1f} | "
            f"{float(row['peak_rss_mb']):.0f} |"
        )
    lines += ["", *render_checks(rows, checks, base), END]
    return "\n".join(lines)


def _per_class(setup: dict[str, Any]) -> str:
    """Evaluation frames per class (a setup kept from before it was recorded: worked out)."""
    return str(setup.get("eval_per_class", round(int(setup["n_eval"]) / 29)))


def _train_time(setup: dict[str, Any]) -> str:
    seconds = float(setup.get("train_s", float("nan")))
    return f", {seconds:.0f} s" if seconds == seconds else ", trained in an earlier run"


def _engine_label(kind: str) -> str:
    name, _, mode = kind.partition(":")
    if mode == "export":
        return f"asl-eval `{name}`: one-time export" + (" + calibration" if "int8" in name else "")
    where = "from the predictions cache" if mode == "cached" else "cold (empty predictions cache)"
    if name == "fastai+channels_last":
        return f"asl-eval `fastai` engine with `channels_last=True` (opt-in), {where}"
    return f"asl-eval `--engine {name}` via `predict_folder`, {where}"


def render_checks(
    rows: dict[str, dict[str, Any]], checks: dict[str, dict[str, Any]], base: float
) -> list[str]:
    """Agreement with ``get_preds`` and the targets, met or missed."""
    lines = ["Agreement with the tutorial's `get_preds` on all images, and the targets:", ""]
    for name in ENGINE_RUNS:
        check = checks[name]
        ratio = base / _ms(rows[name])
        met = "met" if ratio >= TARGETS[name] else "**missed**"
        floor = base / _ms(rows[FLOORS[name]])
        lines.append(
            f"- `{name}`: largest probability difference {float(check['max_abs_diff']):.1e}, "
            f"top-1 identical for {float(check['top1']):.1%}; {ratio:.2f}x get_preds cold "
            f"(target {TARGETS[name]}x: {met}; its runtime alone on pre-decoded inputs: "
            f"{floor:.2f}x); cached run returned the same numbers: "
            f"{'yes' if checks['cached'][name] else 'NO'}."
        )
    small = base / _ms(rows["get_preds_small"])
    lines.append(
        f"- `get_preds` itself at the `fastai` engine's CPU batch of 8: {small:.2f}x. Most of "
        "the `fastai` engine's gain on this CPU is the batch size (small batches keep "
        "resnet18's activations in the processor's caches); the rest is decoding in threads "
        "and skipping fastai's callbacks."
    )
    channels_last = checks["fastai+channels_last"]
    lines.append(
        f"- `fastai` with `channels_last=True` (opt-in, not exact by contract): "
        f"{base / _ms(rows['fastai+channels_last']):.2f}x get_preds, largest probability "
        f"difference {float(channels_last['max_abs_diff']):.1e}, top-1 identical for "
        f"{float(channels_last['top1']):.1%}."
    )
    int8 = checks["int8_vs_onnx"]
    sample = rows["onnx-int8"].get("agreement") or {}
    sample_top1 = float(sample.get("top1_agreement", float("nan")))
    met = "met" if float(int8["top1"]) >= 0.99 else "**missed**"
    lines.append(
        f"- `onnx-int8` against the float ONNX model: top-1 agreement {float(int8['top1']):.1%} "
        f"(target 99%: {met}); the engine's own check on its first "
        f"{sample.get('n_checked', '?')} images: {sample_top1:.1%}."
    )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--images", type=int, default=870, help="images to predict (per class: /29)"
    )
    parser.add_argument("--loop-images", type=int, default=87, help="images for learn.predict")
    parser.add_argument("--train-per-class", type=int, default=50, help="training frames per class")
    parser.add_argument("--calibration-per-class", type=int, default=4, help="int8 calibration")
    parser.add_argument("--epochs", type=int, default=6, help="training epochs")
    parser.add_argument("--lr", type=float, default=3e-3, help="training learning rate")
    parser.add_argument("--train-batch-size", type=int, default=16, help="training batch")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (best kept)")
    parser.add_argument("--no-write", action="store_true", help="do not update the docs")
    parser.add_argument(
        "--keep",
        type=Path,
        help="work in this folder and keep it (a model trained there is reused)",
    )
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        result = measure(args.measure, args.work, args.loop_images)
        args.out.write_text(json.dumps(result))
        return 0
    if not (SHARED / "asl_alphabet_train").is_dir():
        print(f"skipped: the shared ASL photos are not at {SHARED} (set ASL_EVAL_SHARED_DATA)")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as folder:
        work = args.keep or Path(folder)
        work.mkdir(parents=True, exist_ok=True)
        result = run(args, work)
    (work if args.keep else Path(tempfile.gettempdir())).joinpath(
        "bench_inference.json"
    ).write_text(json.dumps(result, indent=1))
    text = render(result)
    print(text)
    if not args.no_write:
        print(f"wrote {write_section(text, 'bench_inference')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
