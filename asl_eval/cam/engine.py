"""The one adapter to pytorch-grad-cam: heatmaps and faithfulness scores for a batch tensor.

This is the only module that imports ``pytorch_grad_cam``. Its classes do the weighting
arithmetic, so every method gives the heatmap the library gives on its own; what this adapter
changes is how activations and gradients are captured: the network up to the target layer
runs without recording a graph, only the layers after it are differentiated, and several
targets (the true and the predicted class) share one forward pass.

To do that it relies on internals of pytorch-grad-cam's ``BaseCAM`` (attributes it replaces
and methods it calls directly). They are written in one place, :func:`_cam_engine`, and listed
in :data:`RELIED_ON_INTERNALS`; :func:`library_mismatches` checks them against the installed
library (a test fails loudly when they change), and pyproject bounds the version.

Hooks are only ever registered inside context managers that remove them, restore the
parameters' ``requires_grad`` and the model's train/eval mode, also when an error is raised.

Imports numpy, :mod:`asl_eval.errors`, and (inside functions) torch and pytorch_grad_cam.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

import numpy as np

from asl_eval.errors import CamError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "CAM_METHODS",
    "FINERCAM_N_COMPARISONS",
    "RELIED_ON_INTERNALS",
    "CamMethod",
    "TensorExplanation",
    "check_method",
    "explain_tensor",
    "library_mismatches",
    "score_faithfulness",
]

CamMethod = Literal["gradcam", "gradcam++", "hirescam", "eigencam", "scorecam", "finercam"]
CAM_METHODS: tuple[str, ...] = get_args(CamMethod)

#: Classes FinerCAM contrasts the explained class with: the n most similar by logit.
FINERCAM_N_COMPARISONS = 3

#: What this adapter uses of pytorch-grad-cam beyond its documented ``cam(input, targets)``
#: call: ``BaseCAM`` methods with the parameters it passes, and attributes it reads or replaces.
RELIED_ON_INTERNALS: dict[str, tuple[str, ...]] = {
    "BaseCAM.__init__": ("model", "target_layers"),
    "BaseCAM.compute_cam_per_layer": ("input_tensor", "targets", "eigen_smooth"),
    "BaseCAM.aggregate_multi_layers": ("cam_per_target_layer",),
    "BaseCAM.get_cam_weights": ("input_tensor", "target_layers", "targets", "activations", "grads"),
    "BaseCAM attributes": ("target_layers", "activations_and_grads", "detach", "uses_gradients"),
    "ActivationsAndGradients attributes": ("activations", "gradients", "release", "handles"),
}

ScoreTarget = Callable[["torch.Tensor"], "torch.Tensor"]


def check_method(method: str) -> CamMethod:
    """``method`` if it is one of :data:`CAM_METHODS`, else a :class:`CamError`."""
    if method not in CAM_METHODS:
        raise CamError(f"Unknown CAM method {method!r}; expected one of {', '.join(CAM_METHODS)}.")
    return cast(CamMethod, method)


# -- the capture: activations at the target layer, gradients only after it ----------------------
class _LayerCapture:
    """Context manager that makes one forward pass cheap to explain.

    While open: the model is in eval mode, every parameter has ``requires_grad=False`` (so the
    layers before the target record no graph), and a forward hook on the target layer replaces
    its output with a fresh leaf tensor that requires grad (so only the layers after it are
    differentiated). On exit, whatever happened, the hook is removed and the parameters' flags
    and the train/eval mode are restored.
    """

    def __init__(self, model: nn.Module, layer_name: str, layer: nn.Module) -> None:
        self.model = model
        self.layer_name = layer_name
        self.layer = layer
        self.active = False
        self.activation: torch.Tensor | None = None
        self._handle: Any = None
        self._flags: list[tuple[torch.nn.Parameter, bool]] = []
        self._training = model.training

    def __enter__(self) -> _LayerCapture:
        self._training = self.model.training
        self._flags = [(p, p.requires_grad) for p in self.model.parameters()]
        try:
            self.model.eval()
            for parameter, _ in self._flags:
                parameter.requires_grad_(False)
            self._handle = self.layer.register_forward_hook(self._hook)
        except BaseException:
            self._restore()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._restore()

    def _restore(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.remove()
        for parameter, flag in self._flags:
            parameter.requires_grad_(flag)
        self._flags = []
        self.model.train(self._training)
        self.active = False
        self.activation = None

    def _hook(self, module: nn.Module, inputs: object, output: object) -> object:
        import torch

        if not self.active:
            return None
        if not isinstance(output, torch.Tensor) or output.ndim != 4:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output)
            raise CamError(
                f"Layer {self.layer_name!r} ({type(module).__name__}) outputs {shape}; a heatmap "
                "needs a (batch, channels, height, width) feature map. Name a convolutional "
                "layer with --cam-layer, or leave it out to use the last convolutional block."
            )
        if self.activation is not None:
            raise CamError(
                f"Layer {self.layer_name!r} runs more than once per forward pass; name a layer "
                "that runs once with --cam-layer."
            )
        leaf = output.detach().requires_grad_(True)
        self.activation = leaf
        return leaf.clone()  # later in-place operations must not touch the leaf


# -- pytorch-grad-cam engines ----------------------------------------------------------------
class _Holder:
    """Stands in for pytorch-grad-cam's ``ActivationsAndGradients``: holds one layer's arrays
    (set by this adapter), registers no hook."""

    def __init__(self) -> None:
        self.activations: list[torch.Tensor] = []
        self.gradients: list[torch.Tensor] = []
        self.handles: list[object] = []

    def release(self) -> None:
        self.activations.clear()
        self.gradients.clear()


def _score_cam_weights(
    model: nn.Module,
    input_tensor: torch.Tensor,
    activations: np.ndarray,
    targets: Sequence[ScoreTarget],
    batch_size: int,
) -> np.ndarray:
    """ScoreCAM channel weights: the softmax over channels of the target score of the input
    masked by each upsampled, min-max normalized activation channel (Wang et al., 2020)."""
    import torch
    import torch.nn.functional as functional

    weights = []
    with torch.no_grad():
        maps = torch.from_numpy(activations).to(input_tensor.device)
        maps = functional.interpolate(
            maps, size=tuple(input_tensor.shape[-2:]), mode="bilinear", align_corners=True
        )
        flat = maps.flatten(2)
        low = flat.min(dim=-1).values[:, :, None, None]
        high = flat.max(dim=-1).values[:, :, None, None]
        maps = (maps - low) / (high - low + 1e-8)
        for image, channel_maps, target in zip(input_tensor, maps, targets, strict=True):
            scores = []
            for start in range(0, channel_maps.shape[0], batch_size):
                masked = image[None] * channel_maps[start : start + batch_size, None]
                scores.append(torch.stack([target(o) for o in model(masked)]).float().cpu())
            weights.append(torch.softmax(torch.cat(scores), dim=-1))
    return torch.stack(weights).numpy()


@contextmanager
def _cam_engine(
    method: CamMethod, model: nn.Module, layer: nn.Module, score_batch_size: int
) -> Iterator[tuple[Any, _Holder]]:
    """A pytorch-grad-cam object for ``method`` whose arithmetic is reused, and the holder it
    reads activations and gradients from.

    The only place this adapter writes the library's internals (see
    :data:`RELIED_ON_INTERNALS`): built with no target layer, so it registers no hook, then
    given the target layer, the holder instead of its ``ActivationsAndGradients``, and for
    ScoreCAM batched channel weights. The holder is emptied on exit.
    """
    from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, ScoreCAM

    classes = {
        "gradcam": GradCAM,
        "finercam": GradCAM,  # FinerCAM is Grad-CAM of a contrastive target
        "gradcam++": GradCAMPlusPlus,
        "hirescam": HiResCAM,
        "eigencam": EigenCAM,
        "scorecam": ScoreCAM,
    }
    engine: Any = classes[method](model=model, target_layers=[])
    holder = _Holder()
    engine.target_layers = [layer]
    engine.activations_and_grads = holder
    if method == "scorecam":

        def weights(
            input_tensor: torch.Tensor,
            target_layer: nn.Module,
            targets: Sequence[ScoreTarget],
            activations: np.ndarray,
            grads: np.ndarray | None,
        ) -> np.ndarray:
            return _score_cam_weights(model, input_tensor, activations, targets, score_batch_size)

        engine.get_cam_weights = weights
    try:
        yield engine, holder
    finally:
        holder.release()


def _target_objects(
    method: CamMethod, class_indices: np.ndarray, logits: np.ndarray
) -> list[ScoreTarget]:
    """pytorch-grad-cam target objects for the classes (FinerCAM: against the closest logits)."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget, FinerWeightedTarget

    if method != "finercam":
        return [ClassifierOutputTarget(int(c)) for c in class_indices]
    objects: list[ScoreTarget] = []
    n_classes = logits.shape[1]
    for row, c in zip(logits, class_indices, strict=True):
        order = [int(i) for i in np.argsort(np.abs(row - row[c]), kind="stable") if i != c]
        comparisons = order[: min(FINERCAM_N_COMPARISONS, n_classes - 1)]
        objects.append(FinerWeightedTarget(int(c), comparisons, 1.0))
    return objects


# -- one batch -------------------------------------------------------------------------------
@dataclass(frozen=True)
class TensorExplanation:
    """Heatmaps of one input batch.

    Attributes
    ----------
    cams
        ``float32`` ``(n_sets, n, H, W)`` in ``[0, 1]`` at the input size.
    logits
        The model's outputs ``(n, n_classes)``.
    map_size
        ``(height, width)`` of the target layer's feature map for this batch.
    """

    cams: np.ndarray
    logits: np.ndarray
    map_size: tuple[int, int]


def _forward(
    capture: _LayerCapture, model: nn.Module, batch: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits and the target layer's activation (a leaf tensor) of one forward pass."""
    import torch

    capture.active = True
    logits = model(batch)
    capture.active = False
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        raise CamError("The model must output class scores of shape (batch, classes).")
    leaf = capture.activation
    if leaf is None:
        raise CamError(
            f"Layer {capture.layer_name!r} did not run during the forward pass; name a layer "
            "of the network's forward path with --cam-layer."
        )
    return logits, leaf


def _cams_for_targets(
    engine: Any,
    holder: _Holder,
    batch: torch.Tensor,
    logits: torch.Tensor,
    leaf: torch.Tensor,
    targets: list[ScoreTarget],
) -> np.ndarray:
    """One heatmap set: the gradient of the targets' summed score at the leaf (a backward pass
    through the layers after it only), then the library's weighting and scaling."""
    import torch

    if engine.uses_gradients:
        score = torch.stack([t(o) for t, o in zip(targets, logits, strict=True)]).sum()
        (gradient,) = torch.autograd.grad(score, leaf, retain_graph=True)
        holder.gradients = [gradient.detach().cpu()]
    per_layer = engine.compute_cam_per_layer(batch, targets, False)
    return np.asarray(engine.aggregate_multi_layers(per_layer))


def explain_tensor(
    model: nn.Module,
    layer_name: str,
    layer: nn.Module,
    batch: torch.Tensor,
    target_sets: Sequence[np.ndarray | Sequence[int] | None],
    method: CamMethod,
    score_batch_size: int = 64,
) -> TensorExplanation:
    """Heatmaps of one preprocessed input batch for each set of class indices.

    ``None`` in ``target_sets`` means each image's predicted class. The model runs forward
    once; each target set costs a backward pass through the layers after ``layer``.

    Raises
    ------
    CamError
        The layer does not output a ``(batch, channels, height, width)`` map, runs more than
        once or not at all, or the model does not output ``(batch, classes)`` scores.
    """
    import torch

    batch = batch.to(next(model.parameters()).device)
    training = model.training
    cams: list[np.ndarray] = []
    try:
        with (
            _cam_engine(method, model, layer, score_batch_size) as (engine, holder),
            torch.inference_mode(False),
            torch.enable_grad(),
            _LayerCapture(model, layer_name, layer) as capture,
        ):
            logits, leaf = _forward(capture, model, batch)
            logits_np = logits.detach().cpu().float().numpy()
            holder.activations = [leaf.detach().cpu()]
            for indices in target_sets:
                classes = logits_np.argmax(axis=1) if indices is None else np.asarray(indices)
                targets = _target_objects(method, classes, logits_np)
                cams.append(_cams_for_targets(engine, holder, batch, logits, leaf, targets))
            map_size = (int(leaf.shape[-2]), int(leaf.shape[-1]))
    finally:
        model.train(training)
    return TensorExplanation(np.stack(cams).astype(np.float32), logits_np, map_size)


# -- faithfulness ----------------------------------------------------------------------------
def score_faithfulness(
    model: nn.Module,
    batch: torch.Tensor,
    cams: np.ndarray,
    class_indices: np.ndarray,
    metric: Literal["road", "confidence_drop"],
    *,
    percentiles: Sequence[int],
) -> np.ndarray:
    """Per-image faithfulness of ``cams`` for one input batch, from ``pytorch_grad_cam.metrics``
    (``ROADCombined`` over ``percentiles``, or ``DropInConfidence``), on the softmax
    probability of each image's class. ROAD's imputation noise is seeded (torch's global
    random state is restored afterwards), so scores repeat."""
    import torch
    from pytorch_grad_cam.metrics.cam_mult_image import DropInConfidence
    from pytorch_grad_cam.metrics.road import ROADCombined
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    targets = [ClassifierOutputSoftmaxTarget(int(c)) for c in class_indices]
    batch = batch.to(next(model.parameters()).device)
    training = model.training
    try:
        model.eval()
        with torch.random.fork_rng(devices=[]), torch.inference_mode(False):
            torch.manual_seed(0)
            scorer = (
                ROADCombined(percentiles=list(percentiles))
                if metric == "road"
                else DropInConfidence()
            )
            scores = scorer(batch, np.asarray(cams, dtype=np.float32), targets, model)
    finally:
        model.train(training)
    return np.asarray(scores, dtype=np.float64).reshape(-1)


# -- the library's internals -----------------------------------------------------------------
def _parameters(function: object) -> tuple[str, ...]:
    names = tuple(inspect.signature(function).parameters)  # type: ignore[arg-type]
    return names[1:] if names and names[0] == "self" else names


def library_mismatches() -> list[str]:
    """How the installed pytorch-grad-cam differs from :data:`RELIED_ON_INTERNALS` (empty when
    this adapter can rely on it)."""
    import torch
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.base_cam import BaseCAM

    problems: list[str] = []
    for name, expected in RELIED_ON_INTERNALS.items():
        if not name.startswith("BaseCAM."):
            continue
        method = getattr(BaseCAM, name.split(".", 1)[1], None)
        got = _parameters(method) if method is not None else ()
        if got[: len(expected)] != expected:
            problems.append(f"{name} takes {got or 'nothing'}; expected {expected}")
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.Flatten())
    engine = GradCAM(model=model, target_layers=[])
    for kind, owner in (
        ("BaseCAM attributes", engine),
        ("ActivationsAndGradients attributes", getattr(engine, "activations_and_grads", None)),
    ):
        missing = [a for a in RELIED_ON_INTERNALS[kind] if not hasattr(owner, a)]
        if missing:
            problems.append(f"{kind}: {', '.join(missing)} missing")
    if getattr(engine, "detach", None) is not True:
        problems.append("BaseCAM.detach is no longer True by default")
    if any(module._forward_hooks for module in model.modules()):
        problems.append("BaseCAM(target_layers=[]) registers hooks")
    return problems
