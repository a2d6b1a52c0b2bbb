"""Write asl_eval/trust/allowlist.json from real fastai exports.

Builds learners the way fastai users do (``vision_learner`` on resnet18/34/50 and xresnet18/50,
a timm convnext when timm is installed, a plain ``Learner`` on a small CNN; fastai's standard
item and batch transforms, losses and metrics; ``parent_label``, ``RegexLabeller`` and
asl-eval's own training with its ``LabelLookup``), all with ``pretrained=False`` on tiny
generated images, exports each with ``learn.export`` and loads it back with a *recording*
unpickler: asl-eval's restricted unpickler with the name policy switched off and every check
replaced by a record. The allowlist is every ``(module, qualified name)`` the exports' pickles
name (from :mod:`asl_eval.trust.scan`), with how each was called (argument shapes per arity),
which classes received state and items. Run with every fastai/torch the project supports and
``--merge`` the results:

    python scripts/generate_allowlist.py                      # writes the package's JSON
    /tmp/oldfastai/bin/python scripts/generate_allowlist.py --merge asl_eval/trust/allowlist.json
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import pickle
import platform
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from asl_eval.trust.allowlist import key, value_token  # noqa: E402
from asl_eval.trust.caps import storage_budget  # noqa: E402
from asl_eval.trust.scan import pickle_streams, scan_pickle_bytes  # noqa: E402
from asl_eval.trust.unpickler import VALIDATORS, PickleModule, RestrictedUnpickler  # noqa: E402

OUT = REPO / "asl_eval" / "trust" / "allowlist.json"
PACKAGES = ("fastai", "fastcore", "fasttransform", "plum-dispatch", "torch", "torchvision", "numpy")

STRING_VALUES: dict[str, set[int]] = {
    # numpy.dtype(spec, align, copy): the spec decides the item size of what scalar() builds
    "numpy:dtype": {0},
    # _codecs.encode(text, encoding): protocol 2's way to store bytes; always latin1
    "_codecs:encode": {1},
}
"""String arguments recorded by value (the others by shape only), and why."""

VARIADIC = frozenset(
    f"pathlib:{name}"
    for name in ("Path", "PosixPath", "WindowsPath", "PurePath", "PurePosixPath", "PureWindowsPath")
)
"""Calls whose arity varies with the data (a path: one string per part); their arguments are
recorded as one shape for every position."""


class Record:
    """What the exports did, entry by entry."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}
        self.max_opcodes = 0
        self.state_dunders: set[str] = set()

    def entry(self, name: str, kind: str = "named") -> dict[str, Any]:
        entry = self.entries.setdefault(name, {"kind": kind})
        if entry["kind"] == "named" and kind != "named":
            entry["kind"] = kind
        return entry

    def signature(self, table: dict[str, Any], name: str, args: tuple, granted: dict) -> None:
        positions = table.setdefault(str(len(args)), [{} for _ in args])
        for index, (position, value) in enumerate(zip(positions, args, strict=True)):
            position.setdefault("tokens", set()).add(value_token(value, granted))
            if type(value) is bool or (
                type(value) is str and index in STRING_VALUES.get(name, set())
            ):
                position.setdefault("values", set()).add(value)
            elif "values" in position:
                position["values"].add(object())  # mixed: no value constraint


def _kind(value: object) -> str:
    if isinstance(value, type):
        return "class"
    return "function" if callable(value) else "object"


def recording_unpickler(record: Record) -> type[RestrictedUnpickler]:
    class Recording(RestrictedUnpickler):
        def name_refusal(self, module: str, name: str) -> str | None:
            return None

        def grant(self, value: object, name: str) -> object:
            if not name.startswith("__main__"):
                record.entry(name, _kind(value))
            return super().grant(value, name)

        def _getattr(self, owner: object, name: object) -> object:
            return self.grant(getattr(owner, str(name)), self.attribute_name(owner, name))

        def check_call(self, kind: str, func: object, args: tuple, kwargs: dict) -> None:
            name = self.granted.get(id(func))
            if name is None or kwargs:
                raise RuntimeError(f"an export calls an object no name resolved to: {func!r}")
            entry = record.entry(name)
            record.signature(entry.setdefault(kind, {}), name, args, dict(self.granted))
            if name in VALIDATORS and name != "builtins:getattr":
                VALIDATORS[name](self, args)

        def check_build(self, instance: object, state: object) -> None:
            kind = type(instance)
            entry = record.entry(key(kind.__module__, kind.__qualname__), "class")
            for part in (state,) if type(state) is dict else state:
                if type(part) is dict:
                    record.state_dunders |= {k for k in part if str(k).startswith("__")}
            if type(state) is dict:
                entry.setdefault("build", set()).add("dict")
            else:
                table = entry.setdefault("build_tuple", {})
                record.signature(table, "", tuple(state), dict(self.granted))

        def check_extend(self, target: object, opcode: str) -> None:
            kind = type(target)
            if kind not in (list, dict, set) and kind.__module__ != "collections":
                record.entry(key(kind.__module__, kind.__qualname__), "class")["extend"] = True

    return Recording


def record_export(path: Path, record: Record) -> None:
    """Every name of the file (the scan) and everything loading it does (the recorder)."""
    import torch

    for _, data in pickle_streams(path.read_bytes()):
        found, _ = scan_pickle_bytes(data)
        for item in found:
            if item.module != "__main__":
                record.entry(key(item.module, item.name))
        import pickletools

        count = sum(1 for _ in pickletools.genops(data))
        record.max_opcodes = max(record.max_opcodes, count)
    unpickler = recording_unpickler(record)
    unpickler.storage_budget = storage_budget(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.load(
            path,
            map_location="cpu",
            weights_only=False,
            pickle_module=PickleModule(unpickler, name="recording"),
        )


# ---------------------------------------------------------------------- the exports


def label_from_main(path: Path) -> str:
    """A label function of ``__main__`` (this script), as notebooks define them: cloudpickle
    embeds its code, which asl-eval replaces by a placeholder; the case records the calls
    around it (``_make_function``, ``_function_setstate``)."""
    return path.parent.name


def _torch_layers(nn: Any) -> list[object]:
    """torch.nn's common layers, for a model written by hand (a plain ``Learner``)."""
    return [
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.GELU(), nn.SiLU(), nn.LeakyReLU(),
        nn.Tanh(), nn.Sigmoid(), nn.Hardswish(), nn.ELU(), nn.PReLU(), nn.MaxPool2d(2),
        nn.AvgPool2d(2), nn.Dropout2d(0.1), nn.GroupNorm(2, 4), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Identity(), nn.LayerNorm(4), nn.Dropout(0.1), nn.BatchNorm1d(4),
        nn.Linear(4, 3), nn.Softmax(dim=1),
    ]  # fmt: skip


def _plain_learners(fv: Any, dls: Callable[..., Any], norm: object) -> dict[str, Callable]:
    """``Learner(dls, model)`` on models written by hand."""

    def small_cnn() -> object:
        model = fv.nn.Sequential(
            fv.ConvLayer(3, 8, stride=2), fv.ConvLayer(8, 16, stride=2),
            fv.nn.AdaptiveAvgPool2d(1), fv.Flatten(), fv.nn.Linear(16, 3),
        )  # fmt: skip
        return fv.Learner(dls(fv.Resize(32), [norm]), model, metrics=fv.accuracy)

    def torch_layers() -> object:
        model = fv.nn.Sequential(*_torch_layers(fv.nn))
        loss = fv.nn.CrossEntropyLoss()
        return fv.Learner(dls(fv.Resize(32), [norm]), model, loss_func=loss)

    return {"Learner on a small CNN": small_cnn, "torch.nn layers": torch_layers}


def cases(data: Path, work: Path) -> dict[str, Callable[[], object]]:
    """Learners to export, by name (each builds lazily)."""
    from fastai.vision import all as fv

    def dls(item_tfms: object, batch_tfms: object, get_y: object = fv.parent_label) -> Any:
        block = fv.DataBlock(
            blocks=(fv.ImageBlock, fv.CategoryBlock), get_items=fv.get_image_files,
            get_y=get_y, splitter=fv.RandomSplitter(seed=1),
            item_tfms=item_tfms, batch_tfms=batch_tfms,
        )  # fmt: skip
        return block.dataloaders(data, bs=8, num_workers=0)

    norm = fv.Normalize.from_stats(*fv.imagenet_stats)
    regex = fv.using_attr(fv.RegexLabeller(r"([A-Za-z]+)$"), "parent")

    def vision(arch: object, item: object, batch: object, **kwargs: Any) -> Callable[[], object]:
        get_y = kwargs.pop("get_y", fv.parent_label)
        return lambda: fv.vision_learner(dls(item, batch, get_y), arch, pretrained=False, **kwargs)

    return {
        "resnet18 Resize aug_transforms": vision(
            fv.resnet18, fv.Resize(32), [*fv.aug_transforms(size=32), norm],
            metrics=[fv.accuracy, fv.error_rate, fv.partial(fv.top_k_accuracy, k=2)],
        ),
        "resnet34 RandomResizedCrop label smoothing": vision(
            fv.resnet34, fv.RandomResizedCrop(32, min_scale=0.5),
            [*fv.aug_transforms(flip_vert=True, max_warp=0.1), norm],
            loss_func=fv.LabelSmoothingCrossEntropyFlat(), metrics=fv.error_rate,
        ),
        "resnet50 squish focal loss regex labels": vision(
            fv.resnet50, fv.Resize(32, method="squish"), [fv.Normalize()],
            loss_func=fv.FocalLossFlat(), metrics=[fv.accuracy, fv.F1Score(average="macro")],
            get_y=regex,
        ),
        "xresnet18 pad": vision(
            fv.xresnet18, fv.Resize(32, method="pad", pad_mode="zeros"),
            [*fv.aug_transforms(do_flip=False, max_lighting=0.4), norm],
        ),
        "xresnet50 CropPad": vision(fv.xresnet50, fv.CropPad(32), [fv.IntToFloatTensor(), norm]),
        "resnet18 label function in __main__": vision(
            fv.resnet18, fv.Resize(32), [norm], get_y=label_from_main
        ),
        **_plain_learners(fv, dls, norm),
        **_timm_cases(vision, fv, norm),
    }  # fmt: skip


def _timm_cases(vision: Callable[..., Callable[[], object]], fv: Any, norm: object) -> dict:
    try:
        import timm  # noqa: F401
    except ImportError:
        print("timm is not installed: no convnext export", file=sys.stderr)
        return {}
    return {"timm convnext_atto": vision("convnext_atto", fv.Resize(32), [norm])}


def asl_eval_exports(data: Path, work: Path) -> list[Path]:
    """asl-eval's own training: parent folders, and a label rule (LabelLookup)."""
    from asl_eval.labels import LabelOptions
    from asl_eval.training import TrainConfig, train_model

    config = TrainConfig(
        image_size=32, epochs=1, batch_size=8, pretrained=False, show_progress=False
    )
    folder = train_model(data, work / "asl_folder.pkl", config).model_path
    import pandas as pd

    images = sorted(data.rglob("*.jpg"))
    table = pd.DataFrame(
        {"path": [str(p) for p in images], "label": [f"sign_{p.parent.name}" for p in images]}
    )
    rule = LabelOptions(source="csv", labels_csv=table)  # not the folders: a LabelLookup
    regex = train_model(data, work / "asl_lookup.pkl", config, label_options=rule).model_path
    return [folder, regex]


# ---------------------------------------------------------------------- output


def _json_ready(record: Record, versions: dict[str, str]) -> dict[str, Any]:
    def positions(table: dict[str, list[dict]]) -> dict[str, list[dict]]:
        out = {}
        for arity, items in sorted(table.items()):
            out[arity] = []
            for position in items:
                item: dict[str, Any] = {"tokens": sorted(position["tokens"])}
                values = position.get("values")
                if values and all(type(v) in (bool, str) for v in values):
                    item["values"] = sorted(values, key=repr)
                out[arity].append(item)
        return out

    entries = {}
    for name, entry in sorted(record.entries.items()):
        clean: dict[str, Any] = {"kind": entry["kind"], "seen_with": [0]}
        for field in ("call", "new", "build_tuple"):
            if field in entry:
                clean[field] = positions(entry[field])
        if name in VARIADIC:
            tokens = {
                t for items in clean.pop("call", {}).values() for p in items for t in p["tokens"]
            }
            clean["varargs"] = {"tokens": sorted(tokens | {"str"})}
        if "build" in entry:
            clean["build"] = sorted(entry["build"])
        if entry.get("extend"):
            clean["extend"] = True
        entries[name] = clean
    return {
        "generated_with": {"versions": [versions], "max_opcodes_seen": record.max_opcodes},
        "state_dunders": sorted(record.state_dunders),
        "entries": entries,
    }


def _merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Union of two allowlists (the oldest and the newest supported versions)."""
    entries = dict(old["entries"])
    shift = len(old["generated_with"]["versions"])
    for name, entry in new["entries"].items():
        seen = [index + shift for index in entry["seen_with"]]
        if name not in entries:
            entries[name] = {**entry, "seen_with": seen}
            continue
        mine = entries[name]
        mine["seen_with"] = sorted(set(mine["seen_with"]) | set(seen))
        for field in ("call", "new", "build_tuple"):
            for arity, items in entry.get(field, {}).items():
                table = mine.setdefault(field, {})
                if arity not in table:
                    table[arity] = items
                    continue
                for position, extra in zip(table[arity], items, strict=True):
                    position["tokens"] = sorted(set(position["tokens"]) | set(extra["tokens"]))
                    if "values" in position and "values" in extra:
                        joined = set(position["values"]) | set(extra["values"])
                        position["values"] = sorted(joined, key=repr)
                    else:
                        position.pop("values", None)
        if entry.get("build"):
            mine["build"] = sorted(set(mine.get("build", [])) | set(entry["build"]))
        if entry.get("extend"):
            mine["extend"] = True
    seen = max(old["generated_with"]["max_opcodes_seen"], new["generated_with"]["max_opcodes_seen"])
    versions = old["generated_with"]["versions"] + new["generated_with"]["versions"]
    return {
        "generated_with": {"versions": versions, "max_opcodes_seen": seen},
        "state_dunders": sorted(set(old["state_dunders"]) | set(new["state_dunders"])),
        "entries": dict(sorted(entries.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--merge", type=Path, help="merge with this existing allowlist")
    parser.add_argument("--only", help="only the cases whose name contains this")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from asl_eval.demo_data import make_demo_dataset

    versions = {name: importlib.metadata.version(name) for name in PACKAGES}
    versions["python"] = platform.python_version()
    record = Record()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = make_demo_dataset(
            work / "data",
            n_train_per_class=4,
            n_ood_per_class=1,
            size=32,
            classes=("A", "B", "C"),
        ).train
        exports = []
        for name, build in cases(data, work).items():
            if args.only and args.only not in name:
                continue
            learner: Any = build()
            for pickle_module in (None, pickle):  # fastai's default (cloudpickle), and pickle
                path = work / f"{len(exports)}.pkl"
                try:
                    learner.export(
                        path, **({"pickle_module": pickle_module} if pickle_module else {})
                    )
                except (AttributeError, pickle.PicklingError) as error:
                    print(f"{name}: plain pickle cannot export it ({error})", file=sys.stderr)
                    continue
                exports.append(path)
            print(f"exported {name}", file=sys.stderr)
        if not args.only:
            exports += asl_eval_exports(data, work)
        for path in exports:
            record_export(path, record)
    document = _json_ready(record, versions)
    if args.merge and args.merge.exists():
        document = _merge(json.loads(args.merge.read_text()), document)
    args.out.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n")
    print(f"wrote {args.out}: {len(document['entries'])} entries", file=sys.stderr)


if __name__ == "__main__":
    main()
