"""The public API as a notebook user meets it: ``import asl_eval as ae`` and the flow from a
model file to a report, on a real tiny fastai model; plus the bookkeeping that keeps the API,
its documentation and every module's ``__all__`` in step."""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix

import asl_eval

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_notebook_flow_from_model_file_to_report(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import asl_eval as ae

    learn = ae.load_learner_file(tiny_model.path)
    test = ae.predict_folder(learn, tiny_model.data.ood_test, name="test")
    valid = ae.Predictions.load(tiny_model.valid_predictions)  # saved by training

    # the numbers a notebook user reads equal scikit-learn's on the same predictions
    with pytest.warns(RuntimeWarning, match="never predicted"):  # a tiny model's gaps
        evaluation = ae.evaluate(test)
    assert evaluation.overall.accuracy == pytest.approx(accuracy_score(test.y_true, test.y_pred))
    table = ae.per_class_accuracy(test)
    assert list(table.index) == list(ae.model_classes(learn))
    matrix = ae.confusion_matrix(test)
    expected = confusion_matrix(test.y_true, test.y_pred, labels=range(len(test.classes)))
    np.testing.assert_array_equal(matrix.to_numpy(), expected)
    ax = ae.plot_confusion_matrix(matrix)
    drawn = np.asarray(ax.collections[0].get_array()).reshape(matrix.shape)
    np.testing.assert_array_equal(drawn, expected)

    with pytest.raises(ae.LabelError, match="no validation data"):
        ae.Predictions.from_learner(learn)  # a loaded export keeps no validation set

    context = ae.build_context(
        [ae.EvaluationSet(valid, role="in-domain"), ae.EvaluationSet(test)],
        model=ae.ModelInfo.describe(
            tiny_model.path,
            arch="resnet18",
            classes=test.classes,
            input_size="32×32",
            versions={},
        ),
        command="notebook",
    )
    files = ae.write_report(context, tmp_path, name="nb")
    document = ae.read_report_json(files.json)
    assert document["sets"][1]["accuracy"] == pytest.approx(evaluation.overall.accuracy)


def test_from_learner_in_a_training_notebook(tiny_data) -> None:  # type: ignore[no-untyped-def]
    """Right after training in a notebook, the learner's validation set in asl-eval's terms."""
    from fastai.vision.all import ImageDataLoaders, Resize, resnet18, vision_learner

    import asl_eval as ae

    dls = ImageDataLoaders.from_folder(
        tiny_data.train, valid_pct=0.2, seed=42, item_tfms=Resize(32), bs=16, num_workers=0
    )
    learn = vision_learner(dls, resnet18, pretrained=False)
    valid = ae.Predictions.from_learner(learn)

    assert valid.classes == tuple(dls.vocab)
    assert valid.paths == tuple(str(p) for p in dls.valid.items)
    # true labels are the parent folders' names, as the tutorial's parent_label says
    assert list(valid.labels_true) == [Path(p).parent.name for p in valid.paths]
    np.testing.assert_allclose(valid.y_proba.sum(axis=1), 1.0, atol=1e-5)
    assert ae.accuracy_score(valid) == pytest.approx(accuracy_score(valid.y_true, valid.y_pred))
    assert valid.source == "validation split"


def test_from_learner_refuses_a_loader_without_labels(tiny_model, tiny_learner) -> None:  # type: ignore[no-untyped-def]
    files = sorted(Path(tiny_model.data.ood_test).rglob("*.jpg"))[:4]
    loader = tiny_learner.dls.test_dl(files)
    with pytest.raises(asl_eval.LabelError, match="with_labels=True"):
        asl_eval.Predictions.from_learner(tiny_learner, loader, name="test")


def test_import_asl_eval_is_light() -> None:
    code = (
        "import sys, asl_eval\n"
        "print(','.join(m for m in ('numpy', 'pandas', 'torch', 'fastai') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("name", asl_eval.__all__)
def test_every_public_name_resolves_to_its_stage(name: str) -> None:
    value = getattr(asl_eval, name)
    if name == "__version__":
        assert isinstance(value, str)
        return
    module = importlib.import_module(asl_eval._API[name])
    assert getattr(module, name) is value
    assert name in module.__all__, f"{module.__name__}.__all__ lacks {name}"


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        asl_eval.nope  # noqa: B018


def _public_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(asl_eval.__path__, prefix="asl_eval."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


@pytest.mark.parametrize("module_name", _public_modules())
def test_every_public_module_declares_all_and_documents_itself(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert isinstance(getattr(module, "__all__", None), list | tuple), f"{module_name}: no __all__"
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.__all__ names missing {name}"
    assert (module.__doc__ or "").strip(), f"{module_name} has no module docstring"


def test_docs_list_exactly_the_public_api() -> None:
    text = (REPO_ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([A-Za-z_][A-Za-z0-9_]*)` \|", text, flags=re.M))
    public = set(asl_eval.__all__) - {"__version__"}
    assert documented == public, (
        f"docs/api.md lacks {sorted(public - documented)}; "
        f"lists names that are not public {sorted(documented - public)}"
    )


def test_all_is_the_api_table() -> None:
    assert sorted(asl_eval.__all__) == sorted(["__version__", *asl_eval._API])
