"""Tests of asl_eval.cam on real fastai models (the session's tiny resnet18, and untrained
vision_learner bodies for layer detection), checked against a hand-written Grad-CAM and
against plain pytorch-grad-cam. The report section is tested in test_cam_section.py."""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as functional
from matplotlib import colormaps
from PIL import Image
from sklearn.metrics import recall_score
from torch import nn

from asl_eval import cam
from asl_eval.errors import AslEvalError, InputError
from asl_eval.predictions import Predictions

# The tiny model sees 32 px images: its last block (0.7) outputs a 1x1 map, so the heatmap
# tests use layer2 (0.5, 4x4: also the automatic layer at 32 px) and layer3 (0.6, 2x2), where a
# heatmap has structure.
LAYER = "0.5"


@pytest.fixture(scope="module")
def ood_paths(tiny_model):  # type: ignore[no-untyped-def]
    return sorted(tiny_model.data.ood_test.rglob("*.jpg"))[:6]


def hook_state(model: nn.Module) -> list[tuple[str, int, int, int, int]]:
    return [
        (
            name,
            len(m._forward_hooks),
            len(m._forward_pre_hooks),
            len(m._backward_hooks),
            len(m._backward_pre_hooks),
        )
        for name, m in model.named_modules()
    ]


def hand_gradcam(model: nn.Module, layer: nn.Module, x: torch.Tensor, targets: list[int]):  # type: ignore[no-untyped-def]
    """Grad-CAM from its definition: forward hook on the layer, gradient of the class score,
    channel weights = spatial mean of the gradient, ReLU of the weighted sum, bilinear
    upsampling, min-max normalization."""
    store: dict[str, torch.Tensor] = {}

    def keep(module, inputs, output):  # type: ignore[no-untyped-def]
        output.retain_grad()
        store["a"] = output

    handle = layer.register_forward_hook(keep)
    try:
        model.eval()
        x = x.clone().requires_grad_(True)
        logits = model(x)
        logits[torch.arange(len(targets)), torch.tensor(targets)].sum().backward()
    finally:
        handle.remove()
        model.zero_grad()
    activation, gradient = store["a"].detach(), store["a"].grad
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    raw = torch.relu((weights * activation).sum(dim=1, keepdim=True))

    def normalize(t: torch.Tensor) -> torch.Tensor:
        low = t.amin(dim=(2, 3), keepdim=True)
        return (t - low) / (t.amax(dim=(2, 3), keepdim=True) - low + 1e-7)

    up = functional.interpolate(
        normalize(raw), size=x.shape[-2:], mode="bilinear", align_corners=False
    )
    return normalize(up)[:, 0].numpy()


def test_compute_cams_matches_hand_written_gradcam(tiny_learner, ood_paths):  # type: ignore[no-untyped-def]
    targets = [i % 29 for i in range(len(ood_paths))]
    dl = tiny_learner.dls.test_dl(ood_paths, bs=len(ood_paths), num_workers=0)
    (x,) = dl.one_batch()
    for layer in ("0.5", "0.6"):
        expected = hand_gradcam(
            tiny_learner.model, tiny_learner.model.get_submodule(layer), x, targets
        )
        got = cam.compute_cams(tiny_learner, ood_paths, targets, layer=layer, batch_size=4)
        assert got.shape == (len(ood_paths), 32, 32)
        assert expected.max() > 0.99  # a real, non-constant heatmap
        assert np.abs(got - expected).max() < 1e-4


@pytest.mark.parametrize(
    "method", ["gradcam", "gradcam++", "hirescam", "eigencam", "finercam", "scorecam"]
)
def test_every_method_equals_plain_pytorch_grad_cam(tiny_learner, ood_paths, method):  # type: ignore[no-untyped-def]
    from pytorch_grad_cam import EigenCAM, FinerCAM, GradCAM, GradCAMPlusPlus, HiResCAM, ScoreCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    paths = ood_paths[:2] if method == "scorecam" else ood_paths
    classes = list(tiny_learner.dls.vocab)
    model, layer = tiny_learner.model, tiny_learner.model.get_submodule(LAYER)
    x, view = cam.preprocess(tiny_learner, paths)
    target = 3
    got = cam.compute_cams(tiny_learner, paths, classes[target], method=method, layer=LAYER)
    assert got.shape == (len(paths), 32, 32) and got.dtype == np.float32
    assert got.min() >= 0.0 and got.max() <= 1.0 and got.max() > 0.99
    assert view.shape == (len(paths), 32, 32, 3) and view.dtype == np.uint8
    plain = {
        "gradcam": GradCAM,
        "gradcam++": GradCAMPlusPlus,
        "hirescam": HiResCAM,
        "eigencam": EigenCAM,
        "scorecam": ScoreCAM,
    }
    if method == "finercam":
        with FinerCAM(model, [layer]) as engine:
            reference = engine(x, target_idx=target)
    else:
        with plain[method](model, [layer]) as engine:
            reference = engine(x, [ClassifierOutputTarget(target)] * len(paths))
    assert np.abs(got - reference).max() < 1e-5


def test_true_and_predicted_maps_share_one_pass(tiny_learner, ood_paths):  # type: ignore[no-untyped-def]
    y_true = [p.parent.name for p in ood_paths]
    both = cam.explain_images(tiny_learner, ood_paths, [None, y_true], layer=LAYER, batch_size=4)
    predicted = cam.compute_cams(tiny_learner, ood_paths, layer=LAYER)
    true = cam.compute_cams(tiny_learner, ood_paths, y_true, layer=LAYER)
    assert both.cams.shape == (2, len(ood_paths), 32, 32)
    assert np.abs(both.cams[0] - predicted).max() < 1e-6
    assert np.abs(both.cams[1] - true).max() < 1e-6
    assert both.layer == LAYER and both.classes == tuple(tiny_learner.dls.vocab)
    np.testing.assert_allclose(both.y_proba.sum(axis=1), 1.0, atol=1e-6)
    from asl_eval.inference import predict_images

    images = [Image.open(p).convert("RGB") for p in ood_paths]
    np.testing.assert_allclose(both.y_proba, predict_images(tiny_learner, images), atol=1e-5)


def test_two_targets_cost_one_forward_pass_per_batch(tiny_learner, ood_paths):  # type: ignore[no-untyped-def]
    """Counted with a hook on the network's body: both targets come from the same pass."""
    calls = []
    handle = tiny_learner.model[0].register_forward_hook(lambda *_: calls.append(1))
    try:
        y_true = [p.parent.name for p in ood_paths]
        cam.explain_images(tiny_learner, ood_paths, [None, y_true], layer=LAYER, batch_size=4)
    finally:
        handle.remove()
    assert len(calls) == math.ceil(len(ood_paths) / 4)


def test_images_paths_and_arrays_give_the_same_maps(tiny_learner, ood_paths):  # type: ignore[no-untyped-def]
    arrays = [np.asarray(Image.open(p).convert("RGB")) for p in ood_paths[:3]]
    from_paths = cam.compute_cams(tiny_learner, ood_paths[:3], 0, layer=LAYER)
    from_arrays = cam.compute_cams(tiny_learner, arrays, 0, layer=LAYER)
    assert np.abs(from_paths - from_arrays).max() < 1e-6


def test_hooks_flags_and_mode_restored_after_an_error_mid_way(tiny_learner, ood_paths):  # type: ignore[no-untyped-def]
    model = tiny_learner.model
    before = hook_state(model)
    flags = [p.requires_grad for p in model.parameters()]
    model.train()
    try:
        # the head's last Linear outputs (batch, classes): the error is raised inside the
        # forward hook, half-way through the forward pass
        with pytest.raises(cam.CamError, match=r"outputs \(6, 29\).*feature map"):
            cam.compute_cams(tiny_learner, ood_paths, layer="1.8")
        assert hook_state(model) == before
        assert [p.requires_grad for p in model.parameters()] == flags
        assert model.training
        # and after a successful call
        cam.compute_cams(tiny_learner, ood_paths, layer=LAYER)
        assert hook_state(model) == before
        assert [p.requires_grad for p in model.parameters()] == flags
        assert model.training
    finally:
        model.eval()


def test_input_and_argument_errors(tiny_learner, ood_paths, tmp_path):  # type: ignore[no-untyped-def]
    with pytest.raises(cam.CamError, match="Unknown CAM method 'gradcam3'"):
        cam.compute_cams(tiny_learner, ood_paths, method="gradcam3")  # type: ignore[arg-type]
    with pytest.raises(cam.CamError, match=r"'0\.99' names no layer.*top-level names"):
        cam.compute_cams(tiny_learner, ood_paths, layer="0.99")
    with pytest.raises(cam.CamError, match=r"2 target\(s\) are not classes of the model: Q!, 99"):
        cam.compute_cams(tiny_learner, ood_paths[:2], ["Q!", 99])
    with pytest.raises(cam.CamError, match="one target per image"):
        cam.compute_cams(tiny_learner, ood_paths[:2], ["A"])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="zero-byte"):
        cam.compute_cams(tiny_learner, [empty])
    with pytest.raises(InputError, match="uint8 arrays"):
        cam.compute_cams(tiny_learner, [np.zeros((8, 8, 3))])
    assert issubclass(cam.CamError, AslEvalError)


def test_model_without_conv_layer_is_a_clear_error(tiny_learner, ood_paths):  # type: ignore[no-untyped-def]
    from fastai.learner import Learner
    from fastai.losses import CrossEntropyLossFlat

    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 16), nn.ReLU(), nn.Linear(16, 29))
    learner = Learner(tiny_learner.dls, mlp, loss_func=CrossEntropyLossFlat())
    with pytest.raises(cam.CamError, match="no convolutional layer"):
        cam.compute_cams(learner, ood_paths)
    with pytest.raises(cam.CamError, match="no convolutional layer"):
        cam.find_target_layer(nn.Sequential(nn.Linear(4, 4)))
    assert cam.find_target_layer_or_none(mlp) is None


def test_one_by_one_feature_map_warns(tiny_learner, ood_paths):  # type: ignore[no-untyped-def]
    with pytest.warns(UserWarning, match="1x1 map"):
        maps = cam.compute_cams(tiny_learner, ood_paths[:2], layer="0.7")
    assert np.all(maps == 0)


def output_size(model: nn.Module, layer: str, x: torch.Tensor) -> tuple[int, int]:
    """The layer's output height and width for ``x``, measured with a plain forward hook."""
    seen: list[tuple[int, int]] = []
    handle = model.get_submodule(layer).register_forward_hook(
        lambda module, inputs, output: seen.append(tuple(output.shape[-2:]))
    )
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        handle.remove()
    return seen[0]


def test_automatic_layer_steps_back_to_a_3x3_map(tiny_learner, ood_paths):  # type: ignore[no-untyped-def]
    """At 32 px resnet18's last block (0.7) is 1x1 and layer3 (0.6) 2x2: the automatic layer is
    layer2 (0.5, 4x4), with no warning, and the stated map size is the measured one."""
    model = tiny_learner.model
    x, _ = cam.preprocess(tiny_learner, ood_paths[:2])
    assert cam.find_target_layer(model) == "0.7"
    sizes = cam.feature_map_sizes(model, (32, 32))
    assert sizes["0.7"] == (1, 1) and sizes["0.6"] == (2, 2) and sizes["0.5"] == (4, 4)
    before = hook_state(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = cam.explain_images(tiny_learner, ood_paths[:2], [None])
    assert hook_state(model) == before  # the dry pass leaves no hook behind
    assert result.layer == "0.5" and result.map_size == (4, 4)
    assert result.map_size == output_size(model, "0.5", x)
    named = cam.compute_cams(tiny_learner, ood_paths[:2], layer="0.5")
    assert np.array_equal(result.cams[0], named)


# -- layer detection on real fastai bodies and torchvision models --------------------------------
@pytest.fixture(scope="module")
def small_dls(tiny_model):  # type: ignore[no-untyped-def]
    from fastai.vision.all import ImageDataLoaders, Resize

    return ImageDataLoaders.from_folder(
        tiny_model.data.train, valid_pct=0.2, item_tfms=Resize(64), bs=8, num_workers=0, seed=0
    )


@pytest.mark.parametrize(
    ("arch", "expected", "kind", "at_64px"),
    [
        ("resnet18", "0.7", nn.Sequential, "0.6"),
        ("xresnet18", "0.7", nn.Sequential, "0.6"),
        ("densenet121", "0.0.norm5", nn.BatchNorm2d, "0.0.denseblock3"),
    ],
)
def test_vision_learner_layers(small_dls, ood_paths, arch, expected, kind, at_64px):  # type: ignore[no-untyped-def]
    import fastai.vision.all as fv
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    learner = fv.vision_learner(small_dls, getattr(fv, arch), pretrained=False)
    name, module = cam.resolve_layer(learner.model)
    assert name == expected and isinstance(module, kind)
    # at 64 px the last block is 2x2: the automatic layer steps back to a block with a map of
    # at least 3x3, states its size, and gives the heatmaps of plain pytorch-grad-cam there
    assert cam.learner_input_size(learner) == (3, 64, 64)
    auto_name, auto_module = cam.resolve_layer(learner.model, input_size=(64, 64))
    assert auto_name == at_64px
    x, _ = cam.preprocess(learner, ood_paths[:2])
    assert output_size(learner.model, expected, x) == (2, 2)
    got = cam.explain_images(learner, ood_paths[:2], [1])
    assert got.layer == at_64px
    assert got.map_size == output_size(learner.model, at_64px, x)
    assert min(got.map_size) >= cam.MIN_MAP_SIZE
    with GradCAM(learner.model, [auto_module]) as engine:
        reference = engine(x, [ClassifierOutputTarget(1)] * 2)
    assert got.cams.shape == (1, 2, 64, 64)
    assert np.abs(got.cams[0] - reference).max() < 1e-5


@pytest.mark.parametrize(
    ("arch", "expected"), [("convnext_atto", "0.model.stages"), ("efficientnet_b0", "0.model.bn2")]
)
def test_timm_vision_learner_layers(small_dls, arch, expected):  # type: ignore[no-untyped-def]
    pytest.importorskip("timm")
    from fastai.vision.all import vision_learner

    learner = vision_learner(small_dls, arch, pretrained=False)
    assert cam.find_target_layer(learner.model) == expected
    maps = cam.compute_cams(learner, [np.zeros((64, 64, 3), np.uint8) + 80], 0)
    assert maps.shape == (1, 64, 64)


@pytest.mark.parametrize(
    ("factory", "expected"),
    [("resnet18", "layer4"), ("densenet121", "features"), ("mobilenet_v3_small", "features")],
)
def test_torchvision_model_layers(factory, expected):  # type: ignore[no-untyped-def]
    import torchvision.models

    model = getattr(torchvision.models, factory)(weights=None, num_classes=3)
    assert cam.find_target_layer(model) == expected


# -- overlay -------------------------------------------------------------------------------------
def test_overlay_contract():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    heat = rng.random((6, 8))
    out = cam.overlay(image, heat, alpha=0.3)
    assert out.dtype == np.uint8 and out.shape == (6, 8, 3)
    colored = np.round(colormaps["jet"](heat)[..., :3] * 255)
    expected = np.round(0.7 * image + 0.3 * colored)
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1
    assert np.array_equal(cam.overlay(image, heat, alpha=0.0), image)
    assert np.array_equal(cam.overlay(image, heat, alpha=1.0), cam.colorize(heat))
    # RGB, not BGR: high values are red, low values blue
    hot = cam.colorize(np.ones((1, 1)))[0, 0]
    cold = cam.colorize(np.zeros((1, 1)))[0, 0]
    assert hot[0] > hot[2] and cold[2] > cold[0]
    # a smaller heatmap is resized to the image; PIL and grayscale images are accepted
    assert cam.overlay(Image.fromarray(image), np.ones((3, 4))).shape == (6, 8, 3)
    assert cam.overlay(image[..., 0], np.ones((3, 4))).shape == (6, 8, 3)
    with pytest.raises(InputError, match="uint8"):
        cam.overlay(image / 255.0, heat)
    with pytest.raises(cam.CamError, match=r"\[0, 1\]"):
        cam.overlay(image, heat * 2)
    with pytest.raises(cam.CamError, match="2-D"):
        cam.overlay(image, heat[None])
    with pytest.raises(cam.CamError, match="alpha"):
        cam.overlay(image, heat, alpha=1.5)
    png = cam.png_bytes(out, size=16)
    assert Image.open(io.BytesIO(png)).size == (16, 12)


# -- selection -----------------------------------------------------------------------------------
def random_predictions(seed: int, n: int = 120, k: int = 6) -> Predictions:
    rng = np.random.default_rng(seed)
    classes = [chr(ord("A") + i) for i in range(k)]
    y_true = rng.integers(0, k, size=n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y_true] += rng.normal(1.0, 1.0, size=k)[y_true]  # classes differ
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return Predictions(
        classes=tuple(classes),
        paths=tuple(f"{i}.jpg" for i in range(n)),
        y_true=y_true,
        y_proba=proba,
        name="ood",
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_selection_matches_a_hand_computation(seed):  # type: ignore[no-untyped-def]
    p = random_predictions(seed)
    recall = recall_score(p.y_true, p.y_pred, average=None, labels=range(6), zero_division=0)
    selection = cam.select_cam_images(p, k=3, n_per_class=5, n_top_losses=4)
    expected = [p.classes[i] for i in np.argsort(recall, kind="stable")[:3]]
    assert sorted(selection.class_accuracy.values()) == pytest.approx(sorted(recall)[:3])
    assert set(selection.classes) == set(expected) or sorted(recall)[2] == sorted(recall)[3]
    for name in selection.classes:
        rows = selection.per_class[name]
        c = p.classes.index(name)
        assert all(p.y_true[r] == c for r in rows)
        wrong = [r for r in np.flatnonzero(p.y_true == c) if p.y_pred[r] != c]
        wrong_sorted = sorted(wrong, key=lambda r: -p.loss[r])
        assert list(rows[: len(wrong)]) == wrong_sorted[:5]
        assert len(rows) == min(5, int((p.y_true == c).sum()))
    taken = {r for rows in selection.per_class.values() for r in rows}
    rest = sorted(set(range(p.n_images)) - taken, key=lambda r: -p.loss[r])
    assert list(selection.top_losses) == rest[:4]


def test_selection_by_hand_and_errors():  # type: ignore[no-untyped-def]
    p = Predictions.from_labels(
        ["A", "B"], np.array([[0.9, 0.1, 0.0], [0.5, 0.4, 0.1]]), ["A", "B", "C"]
    )
    with pytest.warns(UserWarning, match=r"no images of class\(es\) C"):
        selection = cam.select_cam_images(p, classes=cam.parse_cam_classes("B,C"))
    assert selection.classes == ("B", "C") and selection.by_hand
    assert selection.per_class == {"B": (1,), "C": ()}
    assert np.isnan(selection.class_accuracy["C"])
    with pytest.raises(cam.CamError, match="does not have: Z"):
        cam.select_cam_images(p, classes=["Z"])
    with pytest.raises(cam.CamError, match=">= 0"):
        cam.select_cam_images(p, k=-1)


# -- faithfulness --------------------------------------------------------------------------------
def test_confidence_drop_by_hand_and_road_repeatable(tiny_learner, ood_paths):  # type: ignore[no-untyped-def]
    targets = [int(i % 29) for i in range(len(ood_paths))]
    maps = cam.compute_cams(tiny_learner, ood_paths, targets, layer=LAYER)
    drop = cam.faithfulness_scores(tiny_learner, ood_paths, maps, targets, metric="confidence_drop")
    x, _ = cam.preprocess(tiny_learner, ood_paths)
    with torch.no_grad():
        before = torch.softmax(tiny_learner.model.eval()(x), dim=1)
        after = torch.softmax(tiny_learner.model(x * torch.from_numpy(maps)[:, None]), dim=1)
    rows = torch.arange(len(targets))
    expected = torch.clamp(before[rows, targets] - after[rows, targets], min=0).numpy()
    np.testing.assert_allclose(drop, expected, atol=1e-5)
    road = cam.faithfulness_scores(tiny_learner, ood_paths, maps, targets, metric="road")
    again = cam.faithfulness_scores(tiny_learner, ood_paths, maps, targets, metric="road")
    assert road.shape == (len(ood_paths),) and np.all(np.isfinite(road))
    assert np.array_equal(road, again) and np.all(np.abs(road) <= 1)


# -- the adapter's reliance on pytorch-grad-cam's internals --------------------------------------
def test_pytorch_grad_cam_internals_the_adapter_relies_on_are_unchanged():  # type: ignore[no-untyped-def]
    from importlib.metadata import version

    from asl_eval.cam.engine import library_mismatches

    problems = library_mismatches()
    assert not problems, (
        f"pytorch-grad-cam {version('grad-cam')} changed internals that asl_eval/cam/engine.py "
        f"relies on (RELIED_ON_INTERNALS): {'; '.join(problems)}. Adapt _cam_engine and "
        "_cams_for_targets to the new library, then move the grad-cam bound in pyproject.toml."
    )


def test_internals_check_notices_a_change(monkeypatch):  # type: ignore[no-untyped-def]
    from pytorch_grad_cam.base_cam import BaseCAM

    from asl_eval.cam.engine import library_mismatches

    def renamed(self, input_tensor, targets, smooth):  # type: ignore[no-untyped-def]
        return []

    monkeypatch.setattr(BaseCAM, "compute_cam_per_layer", renamed)
    monkeypatch.delattr(BaseCAM, "aggregate_multi_layers")
    problems = " ".join(library_mismatches())
    assert "compute_cam_per_layer takes ('input_tensor', 'targets', 'smooth')" in problems
    assert "aggregate_multi_layers takes nothing" in problems


def test_only_the_engine_imports_pytorch_grad_cam() -> None:
    import ast
    from pathlib import Path

    import asl_eval

    root = Path(asl_eval.__file__).parent
    importers = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(name.split(".")[0] == "pytorch_grad_cam" for name in names):
                importers.add(path.relative_to(root).as_posix())
    assert importers == {"cam/engine.py"}, (
        f"pytorch_grad_cam is imported by {sorted(importers)}; only asl_eval/cam/engine.py, the "
        "one adapter, may import it."
    )
