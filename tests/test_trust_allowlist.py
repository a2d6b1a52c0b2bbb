"""The exact allowlist: it matches the installed fastai and torch, and real exports of every
supported architecture load under it."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import warnings
from importlib import resources
from pathlib import Path

import pytest

from asl_eval.trust import load_learner_file, refused_imports
from asl_eval.trust.allowlist import HAND_LISTED, load_allowlist

STAND_INS = ("cloudpickle.cloudpickle", "cloudpickle.cloudpickle_fast", "types")
"""Entries that resolve to asl-eval's own stand-ins, not to the named object."""


def _resolve(module: str, qualname: str) -> object:
    value: object = importlib.import_module(module)
    for part in qualname.split("."):
        value = (
            vars(value)[part]
            if isinstance(value, type) and part in vars(value)
            else getattr(value, part)
        )
    return value


def _installed_is_generated() -> list[int]:
    """Which recorded version sets (``generated_with.versions``) are the installed one."""
    versions = load_allowlist().generated_with["versions"]
    return [
        index
        for index, recorded in enumerate(versions)
        if all(
            importlib.metadata.version(package) == version
            for package, version in recorded.items()
            if package != "python"
        )
    ]


def test_every_entry_resolves_on_the_installed_versions() -> None:
    """Every entry seen in exports made with the installed versions resolves. An entry seen
    only with other versions (the oldest supported fastai, say) may not: it is obsolete here
    but harmless (a file naming it fails to load with a clear error). fastai patches some
    methods in (``TensorImage.lighting``), so fastai.vision.all comes first."""
    importlib.import_module("fastai.vision.all")
    installed = set(_installed_is_generated())
    raw = json.loads(
        resources.files("asl_eval.trust").joinpath("allowlist.json").read_text("utf-8")
    )["entries"]
    missing = []
    for name in load_allowlist().entries:
        if name in raw and installed and not installed & set(raw[name]["seen_with"]):
            continue
        module, _, qualname = name.partition(":")
        if module in STAND_INS or "<locals>" in qualname:
            continue
        try:
            _resolve(module, qualname)
        except (ImportError, AttributeError, KeyError) as error:
            missing.append(f"{name} ({error})")
    assert missing == []


def test_the_allowlist_has_no_package_wide_rules_and_no_gadgets() -> None:
    document = json.loads(
        resources.files("asl_eval.trust").joinpath("allowlist.json").read_text("utf-8")
    )
    names = set(document["entries"])
    assert document["generated_with"]["versions"]
    assert all(":" in name and not name.endswith(":*") for name in names)
    for gadget in (
        "fastcore.basics:nested_attr",
        "fastcore.basics:getcallable",
        "fastcore.basics:setattrs",
        "fastcore.basics:map_ex",
        "builtins:range",
        "builtins:eval",
        "numpy:ones",
        "torch:load",
        "posix:system",
    ):
        assert gadget not in names
    assert set(HAND_LISTED) <= set(load_allowlist().entries)  # hand-listed names are served


def test_callable_entries_carry_schemas() -> None:
    """Only entries real exports call can be called; the others have no schema at all."""
    entries = load_allowlist().entries
    assert entries["torch._utils:_rebuild_tensor_v2"].call
    assert not entries["fastai.metrics:accuracy"].call
    assert not entries["fastai.metrics:accuracy"].new
    dtype = entries["numpy:dtype"].call[3].positions
    assert dtype[2].values == (True,)  # copy=True: never the shared dtype object


def _export(arch_name: str, data: Path, path: Path) -> Path:
    from fastai.vision import all as fv

    arch = getattr(fv, arch_name)
    dls = fv.ImageDataLoaders.from_folder(
        data,
        valid_pct=0.25,
        seed=1,
        item_tfms=fv.Resize(32),
        batch_tfms=[*fv.aug_transforms(size=32), fv.Normalize.from_stats(*fv.imagenet_stats)],
        bs=8,
        num_workers=0,
    )
    learner = fv.vision_learner(dls, arch, pretrained=False, metrics=[fv.accuracy])
    learner.export(path)
    return path


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from asl_eval.demo_data import make_demo_dataset

    root = tmp_path_factory.mktemp("small")
    return make_demo_dataset(
        root, n_train_per_class=3, n_ood_per_class=1, size=32, classes=("A", "B", "C")
    ).train


@pytest.mark.parametrize("arch", ["resnet18", "xresnet18", "resnet50"])
def test_real_exports_load(arch: str, small_data: Path, tmp_path: Path) -> None:
    from PIL import Image

    path = _export(arch, small_data, tmp_path / f"{arch}.pkl")
    assert refused_imports(path) == []
    learner = load_learner_file(path)
    dl = learner.dls.test_dl([Image.new("RGB", (40, 30), (10, 200, 30))], bs=1, num_workers=0)
    with learner.no_bar(), warnings.catch_warnings():
        probabilities, _ = learner.get_preds(dl=dl)
    assert tuple(probabilities.shape) == (1, 3)


OLDEST_EXPORTS = {
    "torch-2.14.1": Path(__file__).parent / "data" / "fastai-2.8.1-small-cnn.pkl",
    "torch-2.1.0": Path(__file__).parent / "data" / "fastai-2.8.1-torch-2.1.0-small-cnn.pkl",
}
"""Learners exported with the oldest supported fastai (2.8.1, fastcore 1.8.0, fasttransform
0.0.2): a small CNN through ``Learner`` on 3 classes of 32-pixel demo images, trained one
epoch; one on torch 2.14.1 (54 kB), one on the oldest supported torch, 2.1.0 with numpy 1.26
(47 kB)."""


@pytest.mark.parametrize("export", OLDEST_EXPORTS.values(), ids=OLDEST_EXPORTS.keys())
def test_an_export_of_the_oldest_supported_fastai_loads_and_predicts(export: Path) -> None:
    from PIL import Image

    assert refused_imports(export) == []
    learner = load_learner_file(export)
    assert list(learner.dls.vocab) == ["A", "B", "C"]
    dl = learner.dls.test_dl([Image.new("RGB", (50, 40), (200, 10, 30))], bs=1, num_workers=0)
    with learner.no_bar():
        probabilities, _ = learner.get_preds(dl=dl)
    assert tuple(probabilities.shape) == (1, 3)
    assert abs(float(probabilities.sum()) - 1) < 1e-5


def test_the_allowlist_covers_the_oldest_and_the_newest_fastai() -> None:
    versions = load_allowlist().generated_with["versions"]
    fastai_versions = {v["fastai"] for v in versions}
    assert "2.8.1" in fastai_versions and len(fastai_versions) >= 2
    # the oldest torch pyproject allows (2.1) was among the generating runs
    assert {"fastai": "2.8.1", "torch": "2.1.0"}.items() <= next(
        (v for v in versions if v["torch"] == "2.1.0"), {}
    ).items()
