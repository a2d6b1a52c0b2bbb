"""The allowlist and the static scan, on hand-made names and pickle streams."""

from __future__ import annotations

import collections
import functools
import pathlib
import pickle

import pytest

from asl_eval.errors import PickleFormatError
from asl_eval.trust import import_policy, scan_pickle_bytes


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("fastai.learner", "Learner"),
        ("fastai.data.load", "_FakeLoader"),
        ("fastai.vision.core", "load_image"),
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch.nn.modules.conv", "Conv2d"),
        ("torchvision.models.resnet", "resnet18"),
        ("numpy._core.multiarray", "scalar"),
        ("collections", "OrderedDict"),
        ("functools", "partial"),
        ("pathlib", "PosixPath"),
        ("builtins", "getattr"),
        ("fastai.torch_core", "TensorImage.lighting"),
    ],
)
def test_what_fastai_exports_contain_is_allowed(module: str, name: str) -> None:
    assert import_policy(module, name) is None


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("os", "system"),
        ("posix", "system"),
        ("nt", "system"),
        ("subprocess", "Popen"),
        ("builtins", "exec"),
        ("builtins", "eval"),
        ("builtins", "__import__"),
        ("operator", "attrgetter"),
        ("torch", "load"),
        ("torch.hub", "load_state_dict_from_url"),
        ("torch.serialization", "load"),
        ("numpy", "load"),
        ("numpy", "memmap"),
        ("numpy", "fromfile"),
        ("numpy.testing", "assert_equal"),
        ("pandas", "read_pickle"),
        ("fastcore.xtras", "run"),
        ("fastai.learner", "load_learner"),
        ("fastai.learner", "Learner.export"),
        ("pathlib", "Path.write_text"),
        ("fastai.learner", "Learner.__init__.__globals__"),
        ("__main__", "__class__"),
        ("__main__", "a.b"),
        ("fastcore.basics", "nested_attr"),
        ("fastcore.basics", "setattrs"),
        ("functools", "reduce.__globals__"),
        ("builtins", "range"),
        ("numpy", "ones"),
        ("numpy", "savez"),
        ("fastai.imports", "os"),
    ],
)
def test_dangerous_names_are_refused(module: str, name: str) -> None:
    assert import_policy(module, name)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_scan_finds_globals_in_every_protocol(protocol: int) -> None:
    data = pickle.dumps(
        [collections.OrderedDict(), functools.partial(print, 1), pathlib.PurePosixPath("a")],
        protocol=protocol,
    )
    found, end = scan_pickle_bytes(data)
    dotted = {g.dotted for g in found}
    assert {"collections.OrderedDict", "functools.partial", "builtins.print"} <= dotted
    assert end == len(data)


def test_stack_global_through_the_memo() -> None:
    """'os' and 'system' pushed, memoized, fetched back, then STACK_GLOBAL."""
    data = b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94h\x00h\x01\x93."
    found, _ = scan_pickle_bytes(data)
    assert [(g.module, g.name, g.opcode) for g in found] == [("os", "system", "STACK_GLOBAL")]


def test_truncated_and_non_pickles() -> None:
    data = pickle.dumps(list(range(50)), protocol=2)
    with pytest.raises(PickleFormatError) as truncated:
        scan_pickle_bytes(data[:-10])
    assert truncated.value.truncated
    with pytest.raises(PickleFormatError) as garbage:
        scan_pickle_bytes(b"\xff\xfe not a pickle")
    assert not garbage.value.truncated
