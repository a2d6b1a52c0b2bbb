"""Cost of the robustness sweep: forward passes and image changes at 200 pixels, and what the
default subset and the full sweep take for 29 classes × 30 images.

Run ``python benchmarks/bench_stress.py`` (``--size``, ``--images``, ``--no-write``). It builds a
fastai ``vision_learner`` resnet18 (``pretrained=False``: weights do not change the cost; the
tutorial's architecture) on generated images at ``--size`` pixels, then measures on this
machine:

* the fastai engine's forward pass per image (batches of 64, fastai's own preprocessing);
* each change's cost per image (:func:`asl_eval.stress.corruptions.corrupt`, median);
* a real :func:`asl_eval.stress.stress_sweep` on ``--images`` images with the default changes
  and severities, whose time checks the estimate;

and estimates the sweep as ``images × Σ over conditions (forward + change)``, for the default
(:data:`~asl_eval.stress.catalogue.DEFAULT_CORRUPTIONS` at
:data:`~asl_eval.stress.catalogue.DEFAULT_SEVERITIES`) and the full sweep (every change at
severities 1–5), with 29 classes × 30 images. It prints the figures and writes them into this
project's ``docs/benchmarks.md`` between the ``bench_stress`` markers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from _common import cpu_model, markers, write_section

START, END = markers("bench_stress")
N_CLASSES, N_PER_CLASS = 29, 30


def build_learner(size: int, root: Path):
    """A resnet18 vision_learner on generated images of ``size`` pixels, and the data."""
    from fastai.vision.all import ImageDataLoaders, Resize, resnet18, vision_learner

    from asl_eval.demo_data import make_demo_dataset

    data = make_demo_dataset(
        root, n_train_per_class=8, n_ood_per_class=1, size=size, classes=tuple("ABCDEFGH")
    )
    dls = ImageDataLoaders.from_folder(
        data.train, valid_pct=0.25, item_tfms=Resize(size), bs=8, num_workers=0
    )
    return vision_learner(dls, resnet18, pretrained=False), data


def forward_seconds(learner, images, repeats: int) -> tuple[float, float]:
    """Median wall seconds and CPU seconds (all threads) per image of the fastai engine."""
    from asl_eval.inference import make_engine

    engine = make_engine(learner, "fastai", batch_size=64, device="cpu")
    engine.predict(images[:8])
    walls, cpus = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        engine.predict(images)
        walls.append((time.perf_counter() - start) / len(images))
        cpus.append((time.process_time() - cpu) / len(images))
    return statistics.median(walls), statistics.median(cpus)


def change_seconds(arrays: list[np.ndarray]) -> dict[str, float]:
    """Median seconds per image of each change (severities 1, 3 and 5 pooled)."""
    from asl_eval.audit.foreground import foreground_mask
    from asl_eval.stress.catalogue import CATALOGUE
    from asl_eval.stress.corruptions import corrupt

    costs = {}
    for name in CATALOGUE:
        times = []
        for i, array in enumerate(arrays):
            for level in (1, 3, 5):
                start = time.process_time()  # CPU time: what it takes on an idle core
                mask = foreground_mask(array) if name == "background" and level == 1 else None
                corrupt(array, name, level, seed=i, mask=mask)
                times.append(time.process_time() - start)
        # the sweep computes the background's mask once per image, not per severity
        costs[name] = statistics.median(times)
    return costs


def estimate(forward: float, costs: dict[str, float], names, levels) -> float:
    """Seconds for 29 classes × 30 images: clean plus each change at each severity."""
    per_image = forward + sum((forward + costs[name]) * len(levels) for name in names)
    return N_CLASSES * N_PER_CLASS * per_image


def run(size: int, n_images: int, repeats: int) -> dict[str, Any]:
    import torch
    from PIL import Image

    from asl_eval.stress.catalogue import CATALOGUE, DEFAULT_CORRUPTIONS, DEFAULT_SEVERITIES
    from asl_eval.stress.sweep import stress_sweep

    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        learner, data = build_learner(size, Path(tmp))
        files = sorted(data.train.rglob("*.jpg"))
        images = [Image.open(files[i % len(files)]).convert("RGB") for i in range(64)]
        forward_wall, forward_cpu = forward_seconds(learner, images, repeats)
        # On a machine whose cores are shared with other jobs the wall time is inflated; the
        # CPU time over the threads is what the same work takes on two idle cores.
        forward = forward_cpu / torch.get_num_threads()
        costs = change_seconds([np.asarray(image) for image in images[:6]])
        chosen = files[:: max(1, len(files) // n_images)][:n_images]
        start, cpu = time.perf_counter(), time.process_time()
        result = stress_sweep(
            learner,
            chosen,
            [p.parent.name for p in chosen],
            n_per_class=n_images,
            corruptions=DEFAULT_CORRUPTIONS,
            severities=DEFAULT_SEVERITIES,
        )
        measured = time.perf_counter() - start
        measured_cpu = time.process_time() - cpu
    n_conditions = 1 + len(DEFAULT_CORRUPTIONS) * len(DEFAULT_SEVERITIES)
    n_swept = int(str(result.summary_record()["n_images"]))
    predicted = estimate(forward, costs, DEFAULT_CORRUPTIONS, DEFAULT_SEVERITIES)
    predicted_small = predicted / (N_CLASSES * N_PER_CLASS) * n_swept
    return {
        "size": size,
        "threads": torch.get_num_threads(),
        "load": os.getloadavg()[0],
        "forward_ms": 1000 * forward,
        "forward_wall_ms": 1000 * forward_wall,
        "sweep_idle_s": measured_cpu / torch.get_num_threads(),
        "costs_ms": {name: 1000 * value for name, value in costs.items()},
        "default_s": predicted,
        "default_conditions": n_conditions,
        "full_s": estimate(forward, costs, list(CATALOGUE), (1, 2, 3, 4, 5)),
        # the measured sweep's overhead over the parts (decoding, batching), applied to both
        "overhead": (measured_cpu / torch.get_num_threads()) / predicted_small,
        "full_conditions": 1 + len(CATALOGUE) * 5,
        "sweep_images": n_swept,
        "sweep_measured_s": measured,
        "sweep_estimated_s": predicted_small,
    }


def render(figures: dict[str, Any]) -> str:
    costs = figures["costs_ms"]
    rows = "\n".join(
        f"| {name} | {value:.1f} |" for name, value in sorted(costs.items(), key=lambda kv: -kv[1])
    )
    measured, estimated = figures["sweep_measured_s"], figures["sweep_estimated_s"]
    overhead = max(1.0, figures["overhead"])
    table = "\n".join(
        [
            f"| forward pass, per image (idle cores: CPU time / threads) | "
            f"{figures['forward_ms']:.1f} ms |",
            f"| forward pass, per image, wall time here | {figures['forward_wall_ms']:.1f} ms |",
            f"| default sweep, 29 classes × 30 images, {figures['default_conditions']} "
            f"conditions | {overhead * figures['default_s'] / 60:.1f} min |",
            f"| full sweep, 29 × 30 images, {figures['full_conditions']} conditions | "
            f"{overhead * figures['full_s'] / 60:.1f} min |",
            f"| measured sweep: {figures['sweep_images']} images, default changes | "
            f"{figures['sweep_idle_s']:.1f} s on idle cores ({measured:.1f} s wall here; "
            f"estimate {estimated:.1f} s) |",
        ]
    )
    return f"""{START}
## Robustness sweep (`bench_stress.py`)

resnet18 (`pretrained=False`) at {figures["size"]} px, fastai engine, batches of 64, on
{cpu_model()} with {figures["threads"]} torch threads. The machine's load average was
{figures["load"]:.1f} while measuring (other jobs shared the cores), so the times for idle cores
are the process's CPU time divided by its threads; the wall times measured here are upper bounds.

| what | time |
|---|---|
{table}

The estimate is images × Σ over conditions (forward pass + change), on idle cores, times the
measured sweep's overhead over that sum (decoding, batching: ×{overhead:.2f} here); the default
and full sweeps above include it. Cost of each change per image at {figures["size"]} px (CPU
time, median over severities 1, 3, 5):

| change | ms per image |
|---|---|
{rows}
{END}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--images", type=int, default=64, help="images of the measured sweep")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    figures = run(args.size, args.images, args.repeats)
    text = render(figures)
    print(text)
    if not args.no_write:
        print(f"wrote {write_section(text, 'bench_stress')}")


if __name__ == "__main__":
    main()
