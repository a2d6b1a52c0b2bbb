"""Finding the target layer: which block of the network a heatmap is computed at.

The automatic layer is the last convolutional block of the model's body whose feature map is at
least :data:`MIN_MAP_SIZE` x :data:`MIN_MAP_SIZE` at the model's input size (found with one dry
forward pass of a blank image); a map smaller than that has no spatial detail to show. A layer
may also be named by its dotted path (``"0.6"``).

Imports torch (inside functions, for the dry pass and type checks) and :mod:`asl_eval.errors`
only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from asl_eval.errors import CamError, first_few

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "MIN_MAP_SIZE",
    "candidate_layers",
    "feature_map_sizes",
    "find_target_layer",
    "find_target_layer_or_none",
    "format_map_size",
    "resolve_layer",
]

#: The automatic layer's feature map must be at least this many cells high and wide.
MIN_MAP_SIZE = 3

MapSize = tuple[int, int]


def _is_conv(module: nn.Module) -> bool:
    from torch import nn

    return isinstance(module, nn.modules.conv._ConvNd)


def _contains_conv(module: nn.Module) -> bool:
    return any(_is_conv(m) for m in module.modules())


def _is_norm_or_activation(module: nn.Module) -> bool:
    from torch import nn

    norms = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
    activations = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.LeakyReLU, nn.Hardswish, nn.Mish)
    return isinstance(module, norms + activations)


def _stops_spatial(module: nn.Module) -> bool:
    """A global pooling, flatten or linear layer: the feature map ends here."""
    from torch import nn

    if isinstance(module, nn.Flatten | nn.Linear | nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d):
        return True
    return type(module).__name__ in {"AdaptiveConcatPool2d", "SelectAdaptivePool2d"}


def _body(model: nn.Module) -> tuple[str, nn.Module]:
    """The convolutional body: ``model[0]`` for fastai's ``Sequential(body, head)``, else the
    model itself; single-child wrappers (densenet's ``Sequential(features)``, fastai's
    ``TimmBody``) are unwrapped."""
    from torch import nn

    prefix, body = "", model
    children = list(model.named_children())
    if (
        isinstance(model, nn.Sequential)
        and len(children) >= 2
        and _contains_conv(children[0][1])
        and not any(_contains_conv(child) for _, child in children[1:])
    ):
        prefix, body = children[0]
    while len(inner := list(body.named_children())) == 1:
        name, body = inner[0]
        prefix = f"{prefix}.{name}" if prefix else name
    return prefix, body


def _no_conv_error(model: nn.Module) -> CamError:
    return CamError(
        f"{type(model).__name__} has no convolutional layer before its pooling/linear "
        "head, so there is no feature map to explain. Grad-CAM needs a convolutional "
        "network (resnet, xresnet, densenet, convnext, efficientnet, ...); for other models "
        "name a layer that outputs a (batch, channels, height, width) map with --cam-layer."
    )


def candidate_layers(model: nn.Module) -> list[str]:
    """Dotted names of the body's blocks a heatmap can be computed at, first to last.

    Among the body's children before any global pooling, flatten or linear layer: those that
    contain a convolution, and the normalization or activation layers right after one
    (densenet's ``norm5``, timm efficientnet's ``bn2``).

    Raises
    ------
    CamError
        If the model has no convolutional layer.
    """
    prefix, body = _body(model)
    names: list[str] = []
    for name, child in body.named_children():
        if _stops_spatial(child):
            break
        if _contains_conv(child) or (names and _is_norm_or_activation(child)):
            names.append(f"{prefix}.{name}" if prefix else name)
    if not names:
        if _is_conv(body):
            return [prefix]
        raise _no_conv_error(model)
    return names


@contextmanager
def _recording_map_sizes(
    model: nn.Module, names: Sequence[str]
) -> Iterator[dict[str, MapSize | None]]:
    """Forward hooks recording each named layer's output height and width; always removed."""
    sizes: dict[str, MapSize | None] = {}
    handles = []

    def recorder(name: str) -> Callable[[nn.Module, object, object], None]:
        def record(module: nn.Module, inputs: object, output: object) -> None:
            shape: Sequence[int] = getattr(output, "shape", ())
            sizes[name] = (int(shape[-2]), int(shape[-1])) if len(shape) == 4 else None

        return record

    try:
        for name in names:
            module = model.get_submodule(name) if name else model
            handles.append(module.register_forward_hook(recorder(name)))
        yield sizes
    finally:
        for handle in handles:
            handle.remove()


def feature_map_sizes(
    model: nn.Module,
    input_size: MapSize,
    *,
    channels: int = 3,
    names: Sequence[str] | None = None,
) -> dict[str, MapSize | None]:
    """Height and width of the output of each named layer for ``input_size`` inputs.

    ``names`` defaults to :func:`candidate_layers`. One dry forward pass of a blank
    ``(1, channels, *input_size)`` image in eval mode, without gradients; the model's
    train/eval mode is restored. A layer whose output is not a ``(batch, channels, height,
    width)`` map, or that did not run, gets ``None``.

    Raises
    ------
    CamError
        If ``names`` is not given and the model has no convolutional layer.
    """
    import torch

    names = candidate_layers(model) if names is None else list(names)
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    blank = torch.zeros((1, channels, *input_size), device=device)
    training = model.training
    try:
        model.eval()
        with _recording_map_sizes(model, names) as sizes, torch.no_grad():
            model(blank)
    finally:
        model.train(training)
    return {name: sizes.get(name) for name in names}


def _step_back(sizes: dict[str, MapSize | None]) -> str:
    """The last layer whose map is at least MIN_MAP_SIZE both ways; else the largest map."""
    usable = [n for n, s in sizes.items() if s is not None and min(s) >= MIN_MAP_SIZE]
    if usable:
        return usable[-1]
    measured = [(s[0] * s[1], i, n) for i, (n, s) in enumerate(sizes.items()) if s is not None]
    if not measured:
        return list(sizes)[-1]
    return max(measured)[2]


def find_target_layer(
    model: nn.Module, input_size: MapSize | None = None, *, channels: int = 3
) -> str:
    """Dotted name of the layer a heatmap of ``model`` is computed at.

    Without ``input_size``: the last of :func:`candidate_layers` (resnet and xresnet ``0.7``,
    densenet ``0.0.norm5``, timm convnext ``0.model.stages``, a torchvision resnet
    ``layer4``). With the model's ``(height, width)`` input size: the last candidate whose
    feature map is at least :data:`MIN_MAP_SIZE` x :data:`MIN_MAP_SIZE` at that size (a
    resnet at 64 px: ``0.6``, 4x4, as its last block is 2x2), found with one dry forward
    pass; when no block is that large, the one with the largest map.

    Raises
    ------
    CamError
        If the model has no convolutional layer.
    """
    if input_size is None:
        return candidate_layers(model)[-1]
    return _step_back(feature_map_sizes(model, input_size, channels=channels))


def find_target_layer_or_none(model: nn.Module) -> str | None:
    """:func:`find_target_layer`, or ``None`` when the model has no convolutional layer."""
    try:
        return find_target_layer(model)
    except CamError:
        return None


def resolve_layer(
    model: nn.Module,
    layer: str | None = None,
    *,
    input_size: MapSize | None = None,
    channels: int = 3,
) -> tuple[str, nn.Module]:
    """The target layer's dotted name and module: ``layer`` if given, else
    :func:`find_target_layer` (stepping back to a map of at least 3x3 when ``input_size`` is
    given).

    Raises
    ------
    CamError
        If ``layer`` names no submodule of ``model`` (the message lists the valid names near
        the body's end), or the model has no convolutional layer.
    """
    if layer is None:
        name = find_target_layer(model, input_size, channels=channels)
    else:
        name = layer.strip()
    try:
        module = model.get_submodule(name) if name else model
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n and n.count(".") <= 1]
        raise CamError(
            f"--cam-layer {layer!r} names no layer of this {type(model).__name__}. Expected a "
            f"dotted path such as {find_target_layer_or_none(model) or '0.7'!r}; top-level "
            f"names include: {first_few(names[-12:], limit=12)}."
        ) from None
    return name, module


def format_map_size(size: Sequence[int]) -> str:
    """A feature map's ``(height, width)`` as the report prints it.

    >>> format_map_size((4, 4))
    '4×4'
    """
    return "×".join(str(int(v)) for v in size)
