"""Peak memory and wall time of ``asl-eval report`` on many images, cold and from the cache.

Issue 13's targets: 20,000 images keep the process under 2.5 GB resident, and a report on 870
images re-renders from the predictions cache (Grad-CAM off) in under 5 seconds. This script
trains a tiny model (resnet18, ``pretrained=False``, 64 px, one epoch on generated glyphs),
writes N generated 64-pixel JPEGs into class folders, and runs the console script as a user
does, in a fresh process each time: cold (empty cache), then again from the cache. Peak
resident memory is the child's ``ru_maxrss``. Figures go into ``docs/benchmarks.md`` between
the ``bench_memory`` markers.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import cpu_model, markers, write_section
from PIL import Image

START, END = markers("bench_memory")
SCRIPT = Path(sys.executable).with_name("asl-eval")


def train_tiny(work: Path) -> Path:
    """A tiny exported model on generated demo glyphs (the demo's data generator)."""
    from asl_eval.demo_data import make_demo_dataset
    from asl_eval.training import TrainConfig, train_model

    data = make_demo_dataset(work / "data", n_train_per_class=8, n_ood_per_class=1, size=64)
    config = TrainConfig(
        image_size=64, epochs=1, batch_size=32, pretrained=False, show_progress=False
    )
    return train_model(data.train, work / "model.pkl", config).model_path


def write_images(folder: Path, classes: list[str], n: int, seed: int = 0) -> None:
    """``n`` distinct 64-pixel JPEGs spread over the class folders (noise plus a gradient, so
    every file has its own content hash)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, 64, dtype=np.float32)[None, :, None]
    for i in range(n):
        cls = classes[i % len(classes)]
        target = folder / cls / f"{cls}{i}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        noise = rng.integers(0, 256, (64, 64, 3)).astype(np.float32)
        pixels = np.clip(0.6 * noise + 0.4 * ramp, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(target, quality=85)


# A wrapper process runs one report, so its children's high-water mark is that report's alone.
_WRAPPER = (
    "import resource, subprocess, sys; "
    "subprocess.run(sys.argv[1:], check=True, capture_output=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def run_report(model: Path, images: Path, out: Path, cache: Path) -> dict[str, float]:
    """One ``asl-eval report`` in a fresh process: wall seconds and its peak RSS in MB."""
    env = {**os.environ, "ASL_EVAL_CACHE_DIR": str(cache)}
    command = [str(SCRIPT), "report", str(model), str(images), "--out", str(out), "--no-cam"]
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *command], env=env, check=True, capture_output=True
    )
    seconds = time.perf_counter() - start
    peak_kib = int(done.stdout.decode().split()[-1])  # Linux reports ru_maxrss in KiB
    return {"seconds": seconds, "peak_mb": peak_kib / 1024}


def measure(n_large: int, n_small: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="asl-eval-bench-memory-") as folder:
        work = Path(folder)
        model = train_tiny(work)
        from asl_eval.trust import load_learner_file

        classes = [str(c) for c in load_learner_file(model).dls.vocab]
        results: dict[str, object] = {"n_large": n_large, "n_small": n_small}
        large = work / "large"
        write_images(large, classes, n_large)
        results["large_cold"] = run_report(model, large, work / "out", work / "cache")
        results["large_cached"] = run_report(model, large, work / "out", work / "cache")
        small = work / "small"
        write_images(small, classes, n_small, seed=1)
        run_report(model, small, work / "out-small", work / "cache")
        results["small_cached"] = run_report(model, small, work / "out-small", work / "cache")
        return results


def render(r: dict[str, object]) -> str:
    large_cold, large_cached = r["large_cold"], r["large_cached"]
    small = r["small_cached"]
    assert isinstance(large_cold, dict) and isinstance(large_cached, dict)
    assert isinstance(small, dict)
    cpus = os.cpu_count()
    return "\n".join(
        [
            START,
            "## Memory and the predictions cache (`bench_memory.py`)",
            "",
            f"Machine: {cpu_model()}, {cpus} CPUs, Python {platform.python_version()}. "
            "`asl-eval report MODEL IMAGES --no-cam` in a fresh process, 64-pixel generated "
            "JPEGs, a tiny resnet18 (`pretrained=False`); peak resident memory is the process's "
            "`ru_maxrss`. Peak memory of the cold run is the figure issue 13 caps: "
            "decoding keeps about two chunks of 512 images alive.",
            "",
            "| run | images | wall time | peak memory |",
            "|---|---:|---:|---:|",
            f"| cold (empty cache) | {r['n_large']:,} | {large_cold['seconds']:.1f} s | "
            f"{large_cold['peak_mb']:,.0f} MB |",
            f"| again, from the cache | {r['n_large']:,} | {large_cached['seconds']:.1f} s | "
            f"{large_cached['peak_mb']:,.0f} MB |",
            f"| from the cache | {r['n_small']:,} | {small['seconds']:.1f} s | "
            f"{small['peak_mb']:,.0f} MB |",
            "",
            "Targets: under 2,500 MB for 20,000 images; a cached report on 870 images in under "
            "5 s (wall time includes starting Python and importing the stages).",
            END,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000, help="images in the large run")
    parser.add_argument("--small", type=int, default=870, help="images in the cached re-render")
    parser.add_argument("--no-write", action="store_true", help="do not update the docs")
    args = parser.parse_args()
    text = render(measure(args.images, args.small))
    print(text)
    if not args.no_write:
        print(f"wrote {write_section(text, 'bench_memory')}")


if __name__ == "__main__":
    main()
