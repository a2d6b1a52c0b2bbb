"""The safe format's sidecar as hostile input: every value bounded before anything is built,
unknown keys refused, the content hash covering the sidecar's meaning, every failure a clear
ModelLoadError (issue 12)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from asl_eval.errors import ModelLoadError
from asl_eval.trust import load_learner_file, load_safe
from asl_eval.trust.sidecar import MAX_JSON_DEPTH, MAX_SIDECAR_BYTES, content_sha256

Edit = Callable[[dict], None]  # type: ignore[type-arg]


def _pair(safe_pair: tuple[Path, Path], folder: Path) -> tuple[Path, Path]:
    """A copy of the pair to edit: the weights linked, the sidecar copied."""
    folder.mkdir(parents=True, exist_ok=True)
    weights, sidecar = folder / safe_pair[0].name, folder / safe_pair[1].name
    weights.symlink_to(safe_pair[0])
    sidecar.write_text(safe_pair[1].read_text())
    return weights, sidecar


def _rewrite(sidecar: Path, edit: Edit, *, rehash: bool) -> None:
    """Edit the sidecar; with ``rehash`` also recompute its content hash, as an attacker could."""
    record = json.loads(sidecar.read_text())
    edit(record)
    if rehash:
        record["content_sha256"] = content_sha256(record)
    sidecar.write_text(json.dumps(record))


def _refused_fast(weights: Path, match: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ModelLoadError, match=match):
        load_learner_file(weights)
    assert time.perf_counter() - started < 2.0


def _set(*path: str | int, value: object) -> Edit:
    def edit(record: dict) -> None:  # type: ignore[type-arg]
        target = record
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


def _resize(size: object) -> Edit:
    def edit(record: dict) -> None:  # type: ignore[type-arg]
        record["item_tfms"][0]["args"]["size"] = size
        record["input_size"] = size

    return edit


def _million_classes(record: dict) -> None:  # type: ignore[type-arg]
    record["n_out"] = 1_000_000


# (edit, what the message must say); each edit comes with a recomputed content hash, so it is
# the bounds that refuse it, not the hash.
CRASH_CASES: dict[str, tuple[Edit, str]] = {
    "empty classes": (
        lambda r: r.update(classes=[], n_out=0),
        r"classes must be an array of 1 to 10000 class names; got array \[\]",
    ),
    "repeated class": (
        lambda r: r["classes"].__setitem__(1, "A"),
        r'classes must be unique names; got string "A" twice',
    ),
    "class of a wrong type": (_set("classes", 3, value=3), r"classes\[3\] must be a string"),
    "control characters in a class": (
        _set("classes", 0, value="A\x1b[31m"),
        r"classes\[0\] must be free of control characters",
    ),
    "huge n_out": (_million_classes, r"n_out must be an integer from 29 to 29; got number 1000000"),
    "zero n_out": (_set("n_out", value=0), "n_out must be an integer from 29 to 29"),
    "zero n_in": (_set("n_in", value=0), r"n_in must be an integer from 1 to 16; got number 0"),
    "n_in of a million": (_set("n_in", value=1_000_000), "n_in must be an integer from 1 to 16"),
    "n_in as a string": (_set("n_in", value="3"), r'n_in must be an integer .*; got string "3"'),
    "n_in as a float": (_set("n_in", value=3.0), "n_in must be an integer"),
    "Resize size 0": (_resize([0, 0]), r"input_size\[0\] must be an integer from 1 to 4096"),
    "Resize 60000x60000": (
        _resize([60000, 60000]),
        r"input_size\[0\] must be an integer from 1 to 4096; got number 60000",
    ),
    "Resize size as a string": (_resize("big"), "input_size must be an integer or"),
    "input size that is not the Resize's": (
        _set("input_size", value=[64, 64]),
        r"input_size must be the size of the resizing item transform \(\(32, 32\)\)",
    ),
    "zero batch size": (_set("batch_size", value=0), "batch_size must be an integer from 1 to"),
    "negative batch size": (_set("batch_size", value=-1), "batch_size must be an integer"),
    "boolean batch size": (_set("batch_size", value=True), "batch_size must be an integer"),
    "batch over budget": (
        lambda r: (
            r.update(batch_size=4096, input_size=[4096, 4096])
            or r["item_tfms"][0]["args"].update(size=[4096, 4096])
        ),
        r"batch_size must be small enough that batch_size x n_in x height x width",
    ),
    "unknown top-level key": (
        _set("pretrained", value=True),
        r"the sidecar must be free of unknown keys .*; got array \[\"pretrained\"\]",
    ),
    "unknown architecture key": (
        _set("architecture", "weights", value="IMAGENET1K_V1"),
        r"architecture must be free of unknown keys \(allowed: name, source\)",
    ),
    "unknown transform argument": (
        _set("item_tfms", 0, "args", "before_call", value="os.system"),
        r"item_tfms\[0\]\.args must be free of unknown keys \(allowed: size, method",
    ),
    "unknown transform key": (
        _set("batch_tfms", 0, "enc", value=1),
        r"batch_tfms\[0\] must be free of unknown keys",
    ),
    "unknown loss key": (_set("loss_func", "eps", value=0.1), "loss_func must be free of"),
    "missing key": (lambda r: r.pop("batch_size"), "batch_size must be present; got nothing"),
    "architecture as a path": (
        _set("architecture", "name", value="../../os.system"),
        "architecture.name must be a model name",
    ),
    "unknown source": (_set("architecture", "source", value="hub"), "architecture.source must"),
    "classes as a string": (_set("classes", value="ABC"), "classes must be an array"),
    "transforms as an object": (_set("item_tfms", value={}), "item_tfms must be an array"),
    "unknown method": (
        _set("item_tfms", 0, "args", "method", value="explode"),
        r"item_tfms\[0\]\.args\.method must be one of 'crop', 'pad', 'squish'",
    ),
    "resample out of range": (
        _set("item_tfms", 0, "args", "resamples", value=[2, 99]),
        r"item_tfms\[0\]\.args\.resamples\[1\] must be an integer from 0 to 5",
    ),
    "zero divisor": (
        _set("batch_tfms", 0, "args", "div", value=0),
        r"batch_tfms\[0\]\.args\.div must be a number",
    ),
    "split index 7": (
        _set("batch_tfms", 1, "split_idx", value=7),
        r"batch_tfms\[1\]\.split_idx must be an integer from 0 to 1",
    ),
    "unknown loss": (_set("loss_func", "type", value="MSELossFlat"), "loss_func.type must be one"),
    "bad weights hash": (_set("weights", "sha256", value="x"), "weights.sha256 must be 64"),
    "normalization without Normalize": (
        _set("normalization", value={"mean": 0}),
        r"normalization must be null \(batch_tfms has no Normalize\)",
    ),
}


@pytest.mark.parametrize("case", list(CRASH_CASES))
def test_crash_cases_are_refused_fast_with_the_field_named(
    tiny_safe_pair, tmp_path: Path, case: str
) -> None:  # type: ignore[no-untyped-def]
    edit, message = CRASH_CASES[case]
    weights, sidecar = _pair(tiny_safe_pair, tmp_path)
    _rewrite(sidecar, edit, rehash=True)
    _refused_fast(weights, f"{sidecar} is not a valid safe-format sidecar: {message}")


RAW_CASES: dict[str, tuple[Callable[[str], str], str]] = {
    "deeply nested JSON": (
        lambda text: text.replace('"classes": [', '"classes": ' + "[" * 100_000 + "]" * 99_999),
        f"nests arrays or objects deeper than {MAX_JSON_DEPTH} levels",
    ),
    "nested just past the limit": (
        lambda text: text.replace('"n_in": 3', '"n_in": ' + "[" * 12 + "]" * 12),
        "deeper than 12 levels",
    ),
    "NaN": (lambda text: text.replace("255.0", "NaN"), r"not valid JSON \(NaN is not a valid"),
    "Infinity": (lambda text: text.replace("255.0", "-Infinity"), "-Infinity is not a valid"),
    "a number too long to parse": (
        lambda text: text.replace('"batch_size": 16', '"batch_size": ' + "9" * 10_000),
        "not valid JSON",
    ),
    "duplicate keys": (
        lambda text: text.replace('"n_in": 3', '"n_in": 3, "n_in": 3'),
        r"the key 'n_in' appears twice",
    ),
    "truncated": (lambda text: text[: len(text) // 2], "not valid JSON"),
    "oversized": (lambda text: text + " " * MAX_SIDECAR_BYTES, f"larger than {MAX_SIDECAR_BYTES}"),
    "a list, not an object": (lambda text: "[" + text + "]", "not an asl-eval safe-format"),
    "brackets inside strings do not count": (
        lambda text: text.replace('"A"', '"' + "[" * 50 + '"'),
        "does not match what was exported",
    ),
}


@pytest.mark.parametrize("case", list(RAW_CASES))
def test_raw_text_cases_are_refused_before_parsing(
    tiny_safe_pair, tmp_path: Path, case: str
) -> None:  # type: ignore[no-untyped-def]
    rewrite, message = RAW_CASES[case]
    weights, sidecar = _pair(tiny_safe_pair, tmp_path)
    sidecar.write_text(rewrite(sidecar.read_text()))
    _refused_fast(weights, message)


def test_non_utf8_sidecar(tiny_safe_pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    weights, sidecar = _pair(tiny_safe_pair, tmp_path)
    sidecar.write_bytes(b"\xff\xfe" + sidecar.read_bytes())
    _refused_fast(weights, "is not UTF-8 text")


def test_version_1_says_re_export(tiny_safe_pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    weights, sidecar = _pair(tiny_safe_pair, tmp_path)
    _rewrite(sidecar, lambda r: r.update(format_version=1) or r.pop("content_sha256"), rehash=False)
    _refused_fast(weights, "format version 1, .* Re-export the model with asl-eval export-safe")


# --- the content hash -------------------------------------------------------------------------

MEANING_EDITS: dict[str, Edit] = {
    "reordered classes": lambda r: r["classes"].reverse(),
    "renamed class": _set("classes", 0, value="Z2"),
    "changed architecture": _set("architecture", "name", value="resnet34"),
    "changed resize": _resize([48, 48]),
    "changed resize method": _set("item_tfms", 0, "args", "method", value="squish"),
    "changed divisor": _set("batch_tfms", 0, "args", "div", value=1.0),
    "dropped transform": lambda r: r["batch_tfms"].pop(),
    "changed batch size": _set("batch_size", value=8),
    "other weights' hash": _set("weights", "sha256", value="0" * 64),
}


@pytest.mark.parametrize("case", list(MEANING_EDITS))
def test_an_edited_sidecar_does_not_match_what_was_exported(
    tiny_safe_pair, tmp_path: Path, case: str
) -> None:  # type: ignore[no-untyped-def]
    weights, sidecar = _pair(tiny_safe_pair, tmp_path)
    _rewrite(sidecar, MEANING_EDITS[case], rehash=False)
    _refused_fast(weights, f"{sidecar} does not match what was exported: its content SHA-256")


def _add_normalize(mean: list[float], std: list[float]) -> Edit:
    def edit(record: dict) -> None:  # type: ignore[type-arg]
        stats = {
            "mean": {"tensor": [[[[m]] for m in mean]], "dtype": "torch.float32"},
            "std": {"tensor": [[[[s]] for s in std]], "dtype": "torch.float32"},
            "axes": [0, 2, 3],
        }
        record["batch_tfms"].append(
            {"type": "Normalize", "args": stats, "split_idx": None, "order": 99}
        )
        record["normalization"] = stats

    return edit


def test_changed_normalisation_stats_do_not_match(tiny_safe_pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A consistent pair with Normalize loads and normalises; changed stats are refused."""
    import torch

    weights, sidecar = _pair(tiny_safe_pair, tmp_path)
    _rewrite(sidecar, _add_normalize([0.5, 0.4, 0.3], [0.2, 0.2, 0.2]), rehash=True)
    learner = load_safe(weights)
    normalize = learner.dls.after_batch.fs[-1]
    assert type(normalize).__name__ == "Normalize"
    torch.testing.assert_close(normalize.mean.flatten(), torch.tensor([0.5, 0.4, 0.3]))

    def shift(record: dict) -> None:  # type: ignore[type-arg]
        for stats in (record["normalization"], record["batch_tfms"][-1]["args"]):
            stats["mean"]["tensor"][0][0][0][0] = 0.6

    _rewrite(sidecar, shift, rehash=False)
    _refused_fast(weights, "does not match what was exported")


@pytest.mark.parametrize(
    ("stats", "message"),
    [
        (([0.5, 0.4, 0.3], [0.2, 0.0, 0.2]), r"Normalize\.std must be positive values"),
        (([0.5, 0.4], [0.2, 0.2]), r"Normalize\.mean must be 1 or n_in \(3\) values"),
        (([0.5] * 17, [0.2] * 17), r"mean\.tensor must be nested arrays of 1 to 16 numbers"),
    ],
)
def test_normalisation_stats_are_bounded(tiny_safe_pair, tmp_path: Path, stats, message) -> None:  # type: ignore[no-untyped-def]
    weights, sidecar = _pair(tiny_safe_pair, tmp_path)
    _rewrite(sidecar, _add_normalize(*stats), rehash=True)
    _refused_fast(weights, message)


def test_normalization_field_must_repeat_the_transform(tiny_safe_pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    weights, sidecar = _pair(tiny_safe_pair, tmp_path)

    def edit(record: dict) -> None:  # type: ignore[type-arg]
        _add_normalize([0.5, 0.4, 0.3], [0.2, 0.2, 0.2])(record)
        record["normalization"] = None

    _rewrite(sidecar, edit, rehash=True)
    _refused_fast(weights, "normalization must be the arguments of the Normalize in batch_tfms")


@pytest.mark.parametrize(
    ("architecture", "message"),
    [
        ("resnet34", r"do not fit resnet34 .* 96 missing .* 0 unexpected .* 0 of another shape"),
        ("vgg19_bn", "do not fit vgg19_bn"),
        ("vit_h_14", "fastai cannot build vit_h_14"),
    ],
)
def test_weights_must_fit_the_architecture_before_it_is_built(
    tiny_safe_pair, tmp_path: Path, architecture: str, message: str
) -> None:  # type: ignore[no-untyped-def]
    """Built on the meta device first: a large architecture named over small weights
    allocates nothing."""
    weights, sidecar = _pair(tiny_safe_pair, tmp_path)
    _rewrite(sidecar, _set("architecture", "name", value=architecture), rehash=True)
    _refused_fast(weights, message)


# --- no large allocation, in a fresh process -------------------------------------------------

BIG_CASES: dict[str, Edit] = {
    "n_in of a million": _set("n_in", value=1_000_000),
    "a million classes": lambda r: r.update(
        classes=[f"c{i}" for i in range(1_000_000)], n_out=1_000_000
    ),
    "Resize 60000x60000": _resize([60000, 60000]),
    "vgg19_bn over resnet18 weights": _set("architecture", "name", value="vgg19_bn"),
    "vit_h_14 over resnet18 weights": _set("architecture", "name", value="vit_h_14"),
}

_LOAD_ALL = textwrap.dedent(
    """
    import resource, sys, time
    from asl_eval.errors import ModelLoadError
    from asl_eval.trust import load_learner_file
    import fastai.callback.progress, fastai.vision.learner, safetensors.torch, torchvision.models
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for path in sys.argv[1:]:
        started = time.perf_counter()
        try:
            load_learner_file(path)
        except ModelLoadError as error:
            print(f"{time.perf_counter() - started:.2f} refused: {str(error)[:150]}")
        else:
            sys.exit(f"loaded {path}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak {before} {peak}")
    """
)


def test_big_cases_allocate_nothing_large(tiny_safe_pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The issue's memory bombs (21 GB for n_in of a million, a 60000x60000 Resize killed by
    the kernel, a 2.5 GB architecture over small weights), in one fresh process: each is
    refused within 2 s, and the process's peak memory grows by less than 200 MB over what
    importing fastai takes."""
    paths = []
    for index, edit in enumerate(BIG_CASES.values()):
        weights, sidecar = _pair(tiny_safe_pair, tmp_path / str(index))
        _rewrite(sidecar, edit, rehash=True)
        paths.append(str(weights))
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_ALL, *paths],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    *refusals, peak = done.stdout.splitlines()
    assert len(refusals) == len(BIG_CASES), done.stdout
    assert all(float(line.split()[0]) < 2.0 for line in refusals), done.stdout
    before_kib, peak_kib = (int(word) for word in peak.split()[1:])
    assert peak_kib - before_kib < 200 * 1024, done.stdout
