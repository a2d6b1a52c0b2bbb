"""Loading model files: the allowlist refuses malicious pickles before their payload can run,
genuine fastai exports load without --trust-model, and every broken file gets a clear error."""

from __future__ import annotations

import functools
import os
import pickle
import subprocess
import sys
import textwrap
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from asl_eval.errors import ModelLoadError, UnsafeModelError
from asl_eval.trust import input_size, load_learner_file, refused_imports


class _Payload:
    """Pickles to ``call(*args)``: what a malicious model file does when unpickled."""

    def __init__(self, call: object, *args: object) -> None:
        self.call, self.args = call, args

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return self.call, self.args


def _malicious(kind: str, marker: Path) -> object:
    """An object whose unpickling creates ``marker``."""
    if kind == "os.system":
        return _Payload(os.system, f"touch {marker}")
    if kind == "builtins.exec":
        return _Payload(exec, f"__import__('pathlib').Path({str(marker)!r}).write_text('pwned')")
    if kind == "partial(subprocess.Popen)":
        return _Payload(functools.partial(subprocess.Popen, ["touch", str(marker)]))
    raise ValueError(kind)


KINDS = ["os.system", "builtins.exec", "partial(subprocess.Popen)"]
EXPECTED_NAME = {
    "os.system": "system",
    "builtins.exec": "builtins.exec",
    "partial(subprocess.Popen)": "subprocess.Popen",
}


def _write(kind: str, marker: Path, path: Path, how: str) -> Path:
    payload = _malicious(kind, marker)
    if how == "torch":  # the format of fastai's Learner.export
        torch.save({"learner": payload}, path, pickle_protocol=2)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=4 if how == "pickle4" else 2))
    return path


def test_payloads_really_run_when_unpickled(tmp_path: Path) -> None:
    """The malicious files are real: plain pickle runs them, so the refusals mean something."""
    for kind in KINDS:
        marker = tmp_path / f"{kind}.ran"
        data = pickle.dumps(_malicious(kind, marker), protocol=2)
        result = pickle.loads(data)
        if isinstance(result, subprocess.Popen):
            result.wait()
        assert marker.exists(), kind


@pytest.mark.parametrize("how", ["torch", "pickle2", "pickle4"])
@pytest.mark.parametrize("kind", KINDS)
def test_malicious_pickles_are_refused_and_never_run(kind: str, how: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = _write(kind, marker, tmp_path / "model.pkl", how)
    with pytest.raises(UnsafeModelError, match=EXPECTED_NAME[kind]) as caught:
        load_learner_file(path)
    message = str(caught.value)
    assert "--trust-model" in message and "export-safe" in message
    assert "\n" not in message
    assert not marker.exists()


def test_scan_names_every_offending_import(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pkl"
    torch.save([_malicious(kind, marker) for kind in KINDS], path, pickle_protocol=2)
    refused = {item.dotted for item, _ in refused_imports(path)}
    assert refused == {
        f"{(os.name == 'nt' and 'nt') or 'posix'}.system",
        "builtins.exec",
        "subprocess.Popen",
    }
    assert not marker.exists()


def _raw_pickle(*parts: bytes) -> bytes:
    return b"\x80\x02" + b"".join(parts) + b"."


def test_guarded_getattr_refuses_methods_outside_the_policy(tmp_path: Path) -> None:
    """getattr is allowed (protocol 2 names methods with it) but only for allowed names."""
    path = tmp_path / "model.pkl"
    path.write_bytes(
        _raw_pickle(
            b"c__builtin__\ngetattr\n",
            b"cpathlib\nPath\n",
            b"X\x0a\x00\x00\x00write_text",
            b"\x86R",
        )
    )
    with pytest.raises(UnsafeModelError, match=r"getattr with pathlib\.Path where real exports"):
        load_learner_file(path)


def test_reexported_modules_are_refused_by_name(tmp_path: Path) -> None:
    """``fastai.imports.os`` (a re-export) is no name a real export contains: refused."""
    path = tmp_path / "model.pkl"
    path.write_bytes(_raw_pickle(b"cfastai.imports\nos\n"))
    assert [item.dotted for item, _ in refused_imports(path)] == ["fastai.imports.os"]
    with pytest.raises(UnsafeModelError, match=r"fastai\.imports\.os"):
        load_learner_file(path)


def test_stack_global_with_computed_names_is_refused(tmp_path: Path) -> None:
    """STACK_GLOBAL whose names are not two literal strings cannot be checked: refused."""
    path = tmp_path / "model.pkl"
    # module 'os', then name 'system' built by concatenating nothing: use a memo GET of a
    # non-string (an empty tuple) in place of the module.
    path.write_bytes(b"\x80\x04)\x94\x8c\x06system\x94h\x00\x8c\x06system\x93.")
    refused = refused_imports(path)
    assert [item.dotted for item, _ in refused] == ["<computed>.<computed>"]
    with pytest.raises(UnsafeModelError):
        load_learner_file(path)


def test_embedded_lambda_code_never_runs(tmp_path: Path) -> None:
    """cloudpickle embeds code of functions it cannot import; asl-eval never builds it."""
    import cloudpickle

    marker = tmp_path / "pwned"
    target = str(marker)
    payload = _Payload(lambda: Path(target).write_text("pwned"))
    path = tmp_path / "model.pkl"
    path.write_bytes(cloudpickle.dumps(payload, protocol=2))
    with pytest.raises(UnsafeModelError, match="does not run code embedded"):
        load_learner_file(path)
    assert not marker.exists()


def _probabilities(learner, images) -> np.ndarray:  # type: ignore[no-untyped-def]
    dl = learner.dls.test_dl(images, bs=64, num_workers=0)
    with learner.no_bar():
        probabilities, _ = learner.get_preds(dl=dl)
    return probabilities.numpy()


def test_genuine_export_loads_without_trust_and_predicts_like_fastai(tiny_model) -> None:  # type: ignore[no-untyped-def]
    from fastai.learner import Learner, load_learner
    from PIL import Image

    assert refused_imports(tiny_model.path) == []
    learner = load_learner_file(tiny_model.path)
    assert isinstance(learner, Learner)
    assert input_size(learner) == (32, 32)
    images = [Image.open(p).convert("RGB") for p in sorted(tiny_model.data.ood_test.rglob("*.jpg"))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = load_learner(tiny_model.path, cpu=True)
    np.testing.assert_array_equal(
        _probabilities(learner, images), _probabilities(reference, images)
    )


def test_trust_model_loads_the_same_learner(tiny_model) -> None:  # type: ignore[no-untyped-def]
    learner = load_learner_file(tiny_model.path, trust_model=True)
    assert list(learner.dls.vocab) == list(load_learner_file(tiny_model.path).dls.vocab)


# ------------------------------------------------------------------ broken files


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_learner_file(tmp_path / "model.pkl")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="is a folder"):
        load_learner_file(tmp_path)


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n0000", b"hello, not a model", b""])
def test_not_a_pickle(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError, match="is not a fastai model file"):
        load_learner_file(path)
    with pytest.raises(ModelLoadError, match="is not a fastai model file"):
        load_learner_file(path, trust_model=True)


def test_truncated_export(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    raw = tiny_model.path.read_bytes()
    path = tmp_path / "model.pkl"
    path.write_bytes(raw[: len(raw) // 2])
    for trust in (False, True):
        with pytest.raises(ModelLoadError, match="truncated or corrupt"):
            load_learner_file(path, trust_model=trust)


def test_truncated_plain_pickle(tmp_path: Path) -> None:
    raw = pickle.dumps({"weights": list(range(100))}, protocol=2)
    path = tmp_path / "model.pkl"
    path.write_bytes(raw[:-20])
    with pytest.raises(ModelLoadError, match="truncated or corrupt"):
        load_learner_file(path)


@pytest.mark.parametrize("how", ["torch", "pickle"])
def test_pickle_of_a_dict(how: str, tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    if how == "torch":
        torch.save({"epoch": 3, "lr": 0.01}, path)
    else:
        path.write_bytes(pickle.dumps({"epoch": 3, "lr": 0.01}))
    with pytest.raises(ModelLoadError, match=r"holds a dict \(keys: 'epoch', 'lr'\)"):
        load_learner_file(path)


def test_bare_state_dict(tiny_learner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "weights.pth"
    torch.save(tiny_learner.model.state_dict(), path)
    with pytest.raises(ModelLoadError, match=r"bare state dict \(\d+ tensors: 0\.0\.weight"):
        load_learner_file(path)


def test_pickle_of_some_other_object(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(ModelLoadError, match=r"holds a torch\.nn\.modules\.linear\.Linear"):
        load_learner_file(path)


# ------------------------------------------------------------------ user code in the pickle

_EXPORT_SCRIPT = textwrap.dedent(
    """
    import pickle, sys, warnings
    from pathlib import Path
    warnings.simplefilter("ignore")
    from fastai.vision.all import (CategoryBlock, DataBlock, ImageBlock, Resize,
                                   get_image_files, resnet18, vision_learner)

    data, out = Path(sys.argv[1]), Path(sys.argv[2])
    module_dir, module_name = sys.argv[3], sys.argv[4]
    sys.path.insert(0, module_dir)
    generated = __import__(module_name)

    def label_func(path):
        return path.parent.name

    def learner(get_y):
        block = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files,
                          get_y=get_y, item_tfms=Resize(32))
        dls = block.dataloaders(data, bs=16, num_workers=0)
        return vision_learner(dls, resnet18, pretrained=False)

    main_learner = learner(label_func)
    main_learner.export(out / "main_cloudpickle.pkl")
    main_learner.export(out / "main_pickle.pkl", pickle_module=pickle)
    learner(generated.label_func).export(out / "module.pkl")
    """
)


@pytest.fixture(scope="module")
def user_code_exports(tiny_data, tmp_path_factory):  # type: ignore[no-untyped-def]
    """Learners whose label function lives in a script's __main__ or in a module that is gone."""
    out = tmp_path_factory.mktemp("user_code")
    module_dir = out / "modules"
    module_dir.mkdir()
    module_name = f"asl_eval_test_labels_{uuid.uuid4().hex[:8]}"
    (module_dir / f"{module_name}.py").write_text(
        "def label_func(path):\n    return path.parent.name\n"
    )
    script = out / "train_in_main.py"
    script.write_text(_EXPORT_SCRIPT)
    subprocess.run(
        [sys.executable, str(script), str(tiny_data.train), str(out), str(module_dir), module_name],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (module_dir / f"{module_name}.py").unlink()  # the module is gone where the model is loaded
    return out, module_name


@pytest.mark.parametrize("name", ["main_cloudpickle.pkl", "main_pickle.pkl"])
def test_main_label_function_loads_as_a_placeholder(  # type: ignore[no-untyped-def]
    user_code_exports, name: str, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """A label function of the training notebook (__main__) is replaced by an inert
    placeholder: the learner loads and predicts, and the placeholder refuses to be called."""
    from PIL import Image

    out, _ = user_code_exports
    with caplog.at_level("WARNING", logger="asl_eval.trust.unpickler"):
        learner = load_learner_file(out / name)
    assert "label_func" in caplog.text and "placeholder" in caplog.text
    assert len(learner.dls.vocab) == 29
    image = Image.new("RGB", (40, 40), (120, 30, 200))
    assert _probabilities(learner, [image]).shape == (1, 29)
    image_path = tmp_path / "A" / "a.png"
    image_path.parent.mkdir()
    image.save(image_path)
    labelled = learner.dls.test_dl([image_path], with_labels=True, num_workers=0)
    with pytest.raises(ModelLoadError, match=r"label_func was defined in the notebook"):
        labelled.dataset[0]


def test_main_label_function_with_trust_model(user_code_exports) -> None:  # type: ignore[no-untyped-def]
    out, _ = user_code_exports
    # fastai 2.8 exports with cloudpickle, which embeds __main__ functions: trusted loading works.
    learner = load_learner_file(out / "main_cloudpickle.pkl", trust_model=True)
    assert len(learner.dls.vocab) == 29
    with pytest.raises(ModelLoadError, match=r"define label_func \(or import it"):
        load_learner_file(out / "main_pickle.pkl", trust_model=True)


def test_label_function_from_a_missing_module(user_code_exports) -> None:  # type: ignore[no-untyped-def]
    out, module_name = user_code_exports
    path = out / "module.pkl"
    with pytest.raises(UnsafeModelError, match=rf"{module_name}\.label_func"):
        load_learner_file(path)
    with pytest.raises(ModelLoadError, match=rf"needs the module {module_name}"):
        load_learner_file(path, trust_model=True)


@pytest.mark.parametrize(
    ("module", "name", "own_code"),
    [
        ("torch.hub", "load", False),  # refused inside an allowed package
        ("numpy", "load", False),
        ("posix", "system", False),  # standard library
        ("my_project.labels", "label_func", True),
    ],
)
def test_own_code_hint_only_for_user_code(
    tmp_path: Path, module: str, name: str, own_code: bool
) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(_raw_pickle(f"c{module}\n{name}\n".encode()))
    with pytest.raises(UnsafeModelError, match=rf"{module}\.{name}") as caught:
        load_learner_file(path)
    assert ("look like your own code" in str(caught.value)) is own_code


def test_model_that_does_not_fit_its_own_resize(tiny_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A head built for 16x16 inputs behind Resize(32): refused at load with both sizes named."""
    from fastai.vision.all import (
        CategoryBlock,
        DataBlock,
        ImageBlock,
        Learner,
        Resize,
        get_image_files,
        parent_label,
    )

    block = DataBlock(
        blocks=(ImageBlock, CategoryBlock),
        get_items=get_image_files,
        get_y=parent_label,
        item_tfms=Resize(32),
    )
    dls = block.dataloaders(tiny_data.train, bs=16, num_workers=0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 29))
    path = tmp_path / "model.pkl"
    Learner(dls, model).export(path)
    with pytest.raises(ModelLoadError, match=r"resize every image to 32x32 .* fails on that size"):
        load_learner_file(path)


# ------------------------------------------------------------------ through the CLI


@pytest.mark.parametrize("kind", KINDS)
def test_cli_report_refuses_malicious_model(kind: str, tiny_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from asl_eval.cli import app

    marker = tmp_path / "pwned"
    model = _write(kind, marker, tmp_path / "model.pkl", "torch")
    out = tmp_path / "reports"
    result = CliRunner().invoke(
        app, ["report", str(model), str(tiny_data.ood_test), "--out", str(out)]
    )
    assert result.exit_code == 1
    assert "Refused to load" in result.stderr and EXPECTED_NAME[kind] in result.stderr
    assert "--trust-model" in result.stderr
    assert result.stdout == ""
    assert not marker.exists()
    assert not out.exists()


def _text(value: str) -> bytes:
    data = value.encode()
    return b"X" + len(data).to_bytes(4, "little") + data


def test_fastcore_eval_type_cannot_run_code(tmp_path: Path) -> None:
    """Found in review: ``fastcore.basics.eval_type(t, glb, loc)`` calls the built-in eval."""
    marker = tmp_path / "ran"
    expression = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    path = tmp_path / "model.pkl"
    path.write_bytes(_raw_pickle(b"cfastcore.basics\neval_type\n(", _text(expression), b"}}tR"))
    refused = refused_imports(path)
    assert [item.dotted for item, _ in refused] == ["fastcore.basics.eval_type"]
    with pytest.raises(UnsafeModelError, match="eval_type"):
        load_learner_file(path)
    from asl_eval.trust import restricted_loads

    with pytest.raises(UnsafeModelError):
        restricted_loads(path.read_bytes())
    assert not marker.exists()


def test_dataframe_eval_through_getattr_is_refused(tmp_path: Path) -> None:
    """Found in review: ``getattr(DataFrame, "eval")`` evaluates a string; pandas is not
    allowed at all, and neither is a name part ``eval`` anywhere."""
    path = tmp_path / "model.pkl"
    path.write_bytes(
        _raw_pickle(
            b"c__builtin__\ngetattr\n",
            b"cpandas.core.frame\nDataFrame\n",
            _text("eval"),
            b"\x86R",
            b"cpandas.core.frame\nDataFrame\n)R",
            _text("@inspect.os.getcwd()"),
            b"\x86R",
        )
    )
    assert refused_imports(path)
    with pytest.raises(UnsafeModelError, match="pandas"):
        load_learner_file(path)
    from asl_eval.trust import import_policy

    assert import_policy("torch.nn.modules.module", "Module.eval") is not None
    assert import_policy("fastai.callback.core", "TrainEvalCallback") is None
