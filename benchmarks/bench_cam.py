"""Cost of a Grad-CAM heatmap against a forward pass, same model, same batch, one run.

Run ``python benchmarks/bench_cam.py`` (``--size``, ``--batch``, ``--repeats``, ``--no-write``).
It builds a fastai ``vision_learner`` resnet18 (``pretrained=False``: weights do not change the
cost) on generated images at ``--size`` pixels, then times, interleaved and repeated (median):

* the forward pass of the batch in eval mode under ``torch.no_grad`` (what prediction does);
* ``asl_eval.cam`` Grad-CAM for one target per image, and for two targets (true and predicted
  class) sharing one forward pass;
* plain pytorch-grad-cam ``GradCAM`` on the same batch and layer (a full backward pass);

checks that the heatmaps agree with plain pytorch-grad-cam, prints the figures and writes them
into this project's ``docs/benchmarks.md`` between the ``bench_cam`` markers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _common import cpu_model, markers, write_section

START, END = markers("bench_cam")


def median_ms(function: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``function`` in milliseconds over ``repeats`` calls (after one
    warm-up call)."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def build_learner(size: int, root: Path):  # type: ignore[no-untyped-def]
    """A resnet18 vision_learner on generated images of ``size`` pixels."""
    from fastai.vision.all import ImageDataLoaders, Resize, resnet18, vision_learner

    from asl_eval.demo_data import make_demo_dataset

    data = make_demo_dataset(
        root, n_train_per_class=2, n_ood_per_class=1, size=size, classes=tuple("ABCDEFGH")
    )
    dls = ImageDataLoaders.from_folder(
        data.train, valid_pct=0.25, item_tfms=Resize(size), bs=8, num_workers=0
    )
    return vision_learner(dls, resnet18, pretrained=False), data


def run(size: int, batch: int, repeats: int) -> dict[str, float | int | str]:
    import torch
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from asl_eval import cam
    from asl_eval.cam.engine import explain_tensor

    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        learner, data = build_learner(size, Path(tmp))
        files = sorted(data.train.rglob("*.jpg"))
        paths = [files[i % len(files)] for i in range(batch)]
        x, _ = cam.preprocess(learner, paths)
    model = learner.model.eval()
    layer_name, layer = cam.resolve_layer(model, input_size=(size, size))  # the automatic layer
    n_classes = len(learner.dls.vocab)
    true_class = [i % n_classes for i in range(batch)]

    def forward() -> object:
        with torch.no_grad():
            return model(x)

    def ours_one() -> object:
        return explain_tensor(model, layer_name, layer, x, [None], "gradcam")

    def ours_two() -> object:
        return explain_tensor(model, layer_name, layer, x, [None, true_class], "gradcam")

    plain = GradCAM(model=model, target_layers=[layer])

    def plain_one() -> object:
        return plain(x, targets=None)

    # interleave the measurements so a busy neighbour slows all of them alike
    rounds: dict[str, list[float]] = {"forward": [], "one": [], "two": [], "plain": []}
    for _ in range(3):
        rounds["forward"].append(median_ms(forward, repeats))
        rounds["one"].append(median_ms(ours_one, repeats))
        rounds["two"].append(median_ms(ours_two, repeats))
        rounds["plain"].append(median_ms(plain_one, repeats))
    forward_ms = statistics.median(rounds["forward"])
    one_ms = statistics.median(rounds["one"])
    two_ms = statistics.median(rounds["two"])
    plain_ms = statistics.median(rounds["plain"])

    targets = [ClassifierOutputTarget(c) for c in true_class]
    reference = plain(x, targets=targets)
    ours = explain_tensor(model, layer_name, layer, x, [true_class], "gradcam").cams
    plain.activations_and_grads.release()
    max_diff = float(np.abs(ours[0] - reference).max())
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 0,
        "device": str(next(model.parameters()).device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "size": size,
        "batch": batch,
        "layer": layer_name,
        "forward_ms": forward_ms,
        "one_ms": one_ms,
        "two_ms": two_ms,
        "plain_ms": plain_ms,
        "one_ratio": one_ms / forward_ms,
        "two_ratio": two_ms / 2 / forward_ms,
        "plain_ratio": plain_ms / forward_ms,
        "max_diff": max_diff,
    }


def render(r: dict[str, float | int | str]) -> str:
    batch = int(r["batch"])
    return "\n".join(
        [
            START,
            "## Grad-CAM heatmaps (`benchmarks/bench_cam.py`)",
            "",
            f"Machine: {r['cpu']}, {r['cores']} cores ({r['threads']} torch threads), model on "
            f"{r['device']}, torch {r['torch']}. Model: fastai `vision_learner` resnet18 "
            f"(`pretrained=False`), {r['size']}x{r['size']} px, batch of {batch}, "
            f"target layer `{r['layer']}`. Median of interleaved repeats. Ratio: time for the "
            "batch's heatmaps divided by the time of "
            "one forward pass of the same batch (per heatmap when two targets share a pass).",
            "",
            "| what | ms per batch | ms per image | x forward |",
            "|---|---:|---:|---:|",
            f"| forward pass (eval, `no_grad`) | {r['forward_ms']:.1f} | "
            f"{float(r['forward_ms']) / batch:.2f} | 1.00 |",
            f"| asl-eval Grad-CAM, one target | {r['one_ms']:.1f} | "
            f"{float(r['one_ms']) / batch:.2f} | {r['one_ratio']:.2f} |",
            f"| asl-eval Grad-CAM, true + predicted class in one pass (per heatmap) | "
            f"{r['two_ms']:.1f} | {float(r['two_ms']) / batch / 2:.2f} | {r['two_ratio']:.2f} |",
            f"| plain pytorch-grad-cam `GradCAM` | {r['plain_ms']:.1f} | "
            f"{float(r['plain_ms']) / batch:.2f} | {r['plain_ratio']:.2f} |",
            "",
            f"Largest difference between asl-eval's and plain pytorch-grad-cam's heatmaps: "
            f"{float(r['max_diff']):.1e} (heatmaps are in [0, 1]).",
            END,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200, help="image size in pixels")
    parser.add_argument("--batch", type=int, default=16, help="images per batch")
    parser.add_argument("--repeats", type=int, default=8, help="timed calls per round")
    parser.add_argument("--no-write", action="store_true", help="do not update the docs")
    args = parser.parse_args()
    result = run(args.size, args.batch, args.repeats)
    text = render(result)
    print(text)
    if not args.no_write:
        print(f"wrote {write_section(text, 'bench_cam')}")


if __name__ == "__main__":
    main()
