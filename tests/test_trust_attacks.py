"""Every attack class of issue 12, as payloads written here, refused in process and through
the real console script, with fickling and picklescan as independent oracles.

Each payload is a few hand-written pickle opcodes (or a real fastai export with opcodes
spliced in before its last one). A payload "runs" if it creates its marker file; none may.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from asl_eval.errors import ModelLoadError, UnsafeModelError
from asl_eval.trust import load_learner_file, refused_imports

# ---------------------------------------------------------------------- opcodes


def text(value: str) -> bytes:
    """BINUNICODE."""
    data = value.encode()
    return b"X" + len(data).to_bytes(4, "little") + data


def name(module: str, attribute: str) -> bytes:
    """GLOBAL."""
    return f"c{module}\n{attribute}\n".encode()


def integer(value: int) -> bytes:
    """BININT (signed 32 bits)."""
    return b"J" + value.to_bytes(4, "little", signed=True)


PROTO2, STOP, REDUCE, BUILD, NEWOBJ = b"\x80\x02", b".", b"R", b"b", b"\x81"
TUPLE1, TUPLE2, EMPTY_TUPLE, EMPTY_DICT, SETITEM, POP = b"\x85", b"\x86", b")", b"}", b"s", b"0"


def call(function: bytes, *args: bytes) -> bytes:
    """``function(*args)`` with MARK ... TUPLE, REDUCE."""
    return function + b"(" + b"".join(args) + b"tR"


def _os_module() -> bytes:
    """``nested_idx(nested_attr(Learner, "__init__.__globals__"), "os")``: fastcore's helpers
    walking from an allowed class to the os module through strings."""
    globals_ = call(
        name("fastcore.basics", "nested_attr"),
        name("fastai.learner", "Learner"),
        text("__init__.__globals__"),
    )
    return call(name("fastcore.basics", "nested_idx"), globals_, text("os"))


def payloads(marker: Path) -> dict[str, bytes]:
    """Opcode bodies (no protocol header, no STOP) whose unpickling creates ``marker``, or
    exhausts time or memory, by attack class."""
    command = text(f"touch {marker}")
    system = call(name("fastcore.basics", "nested_attr"), _os_module(), text("system"))
    getcallable = call(name("fastcore.basics", "getcallable"), _os_module(), text("system"))
    return {
        "nested_attr": call(system, command),
        "getcallable": call(getcallable, command),
        "map_ex": call(name("fastcore.basics", "map_ex"), b"(" + command + b"l", getcallable),
        "_Self": call(call(name("fastcore.basics", "_Self"), b"", b""), command),
        "setattrs on asl-eval's scanner": call(
            name("fastcore.basics", "setattrs"),
            call(
                name("fastcore.basics", "nested_attr"),
                name("asl_eval.trust.policy", "refused_imports"),
                text("__globals__"),
            ),
            text("import_policy"),
            name("fastai.imports", "noop"),
        ),
        "protocol-0 INST": b"(" + command + b"iposix\nsystem\n",
        "_rebuild_from_type_v2 with a callable": call(
            name("torch._tensor", "_rebuild_from_type_v2"),
            name("posix", "system"),
            name("torch", "Tensor"),
            b"(" + command + b"t",
            b"N",
        ),
        "_rebuild_from_type_v2 with an allowed callable": call(
            name("torch._tensor", "_rebuild_from_type_v2"),
            name("torchvision.models.resnet", "resnet50"),
            name("torch", "Tensor"),
            EMPTY_TUPLE,
            b"N",
        ),
        "BUILD __call__": name("fastai.data.transforms", "Categorize")
        + EMPTY_TUPLE
        + NEWOBJ
        + EMPTY_DICT
        + text("__call__")
        + name("builtins", "print")
        + SETITEM
        + BUILD,
        "BUILD on an allowed class": name("asl_eval.training.label_lookup", "LabelLookup")
        + EMPTY_DICT
        + text("encodes")
        + name("builtins", "print")
        + SETITEM
        + BUILD,
        "numpy.savez": call(name("numpy", "savez"), text(str(marker)), b"K\x01"),
        "numpy.ones bomb": name("numpy", "ones") + integer(2**30) + TUPLE1 + REDUCE,
        "numpy.ones((2,))": name("numpy", "ones") + b"K\x02" + TUPLE1 + TUPLE1 + REDUCE,
        "reduce over range": call(
            name("functools", "reduce"),
            name("_operator", "add"),
            call(name("builtins", "range"), integer(2**31 - 1)),
        ),
        "reduce over many types": call(
            name("functools", "reduce"),
            name("_operator", "or_"),
            b"(" + name("builtins", "int") * 100 + b"t",
        ),
        "opcode bomb": b"N0" * 550_000 + b"N",
        "nesting bomb": b"(" * 300 + b"N",
    }


RESOURCE = ("bomb", "reduce over", "numpy.ones((2,))")
RUNS_UNDER_PLAIN_PICKLE = ("nested_attr", "getcallable", "protocol-0 INST")


def write_pickle(body: bytes, path: Path) -> Path:
    path.write_bytes(PROTO2 + body + STOP)
    return path


def splice(export: Path, body: bytes, path: Path) -> Path:
    """A copy of a real fastai export with ``body`` run just before its last opcode."""
    with zipfile.ZipFile(export) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("/data.pkl"):
                data = data[:-1] + body + POP + STOP
            target.writestr(info, data, compress_type=zipfile.ZIP_STORED)
    return path


# ---------------------------------------------------------------------- in process


def test_the_payloads_are_real(tmp_path: Path) -> None:
    """Plain pickle runs them: the refusals below mean something."""
    for label in RUNS_UNDER_PLAIN_PICKLE:
        marker = tmp_path / label.replace(" ", "_")
        pickle.loads(PROTO2 + payloads(marker)[label] + STOP)
        assert marker.exists(), label


def _refused(path: Path) -> str:
    started = time.perf_counter()
    with pytest.raises(ModelLoadError) as caught:
        load_learner_file(path)
    assert time.perf_counter() - started < 10
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


@pytest.mark.parametrize("label", list(payloads(Path("m"))))
def test_payload_is_refused(label: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = write_pickle(payloads(marker)[label], tmp_path / "model.pkl")
    message = _refused(path)
    if label.startswith(RESOURCE):
        assert any(
            w in message for w in ("not among the names", "more than", "more items", "nests")
        )
    assert not marker.exists()


@pytest.mark.parametrize(
    "label",
    [
        "nested_attr",
        "protocol-0 INST",
        "BUILD __call__",
        "opcode bomb",
        "_rebuild_from_type_v2 with an allowed callable",
    ],
)
def test_payload_spliced_into_a_real_export_is_refused(  # type: ignore[no-untyped-def]
    label: str, tiny_model, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    path = splice(tiny_model.path, payloads(marker)[label], tmp_path / "model.pkl")
    _refused(path)
    assert not marker.exists()


def test_a_hostile_file_changes_nothing_for_the_next(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Loading one file never changes how the next is loaded: the state payloads are refused,
    a genuine export still loads, and a hostile file is still refused afterwards."""
    from asl_eval.training.label_lookup import LabelLookup

    before = dict(vars(LabelLookup))
    for label in ("BUILD on an allowed class", "setattrs on asl-eval's scanner"):
        _refused(write_pickle(payloads(tmp_path / "m")[label], tmp_path / f"{label[:5]}.pkl"))
    assert dict(vars(LabelLookup)) == before
    assert load_learner_file(tiny_model.path).dls.vocab
    assert "nested_attr" in _refused(
        write_pickle(payloads(tmp_path / "m")["nested_attr"], tmp_path / "again.pkl")
    )


def _tensor_file(tmp_path: Path, *, numel: int, size: int) -> Path:
    """A torch zip whose one tensor declares ``numel`` storage elements and view ``size``."""
    import torch

    plain = tmp_path / "plain.pt"
    torch.save({"t": torch.zeros(4)}, plain)
    path = tmp_path / "bomb.pt"
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("/data.pkl"):
                data = data.replace(b"cpuq\x06K\x04", b"cpuq\x06" + integer(numel))
                data = data.replace(b"QK\x00K\x04\x85", b"QK\x00" + integer(size) + TUPLE1)
            target.writestr(info, data, compress_type=zipfile.ZIP_STORED)
    return path


@pytest.mark.parametrize(
    ("numel", "size", "match"),
    [(2**30, 4, "declares a tensor storage"), (4, 2**30, "reaching element")],
)
def test_tensor_bombs_are_refused_before_allocation(
    tmp_path: Path, numel: int, size: int, match: str
) -> None:
    from asl_eval.trust.caps import storage_budget
    from asl_eval.trust.loader import _restricted_module

    path = _tensor_file(tmp_path, numel=numel, size=size)
    import torch

    module = _restricted_module(storage_budget(path))
    with pytest.raises(UnsafeModelError, match=match):
        torch.load(path, pickle_module=module, weights_only=False)


def test_memo_and_string_bombs_are_refused(tmp_path: Path) -> None:
    memo = tmp_path / "memo.pkl"
    memo.write_bytes(b"\x80\x04N" + b"\x94" * 600_000 + STOP)
    assert "memo" in _refused(memo)
    huge = tmp_path / "string.pkl"
    huge.write_bytes(b"\x80\x04\x8d" + (2**40).to_bytes(8, "little") + b"abc" + STOP)
    assert "bytes" in _refused(huge)


# ---------------------------------------------------------------------- the console script

_RUNNER = textwrap.dedent(
    """
    import resource, subprocess, sys
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
    done = subprocess.run(sys.argv[1:], preexec_fn=limit, capture_output=True, text=True,
                          timeout=120)
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    sys.stderr.write(f"\\nMAXRSS_KB={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
    sys.exit(done.returncode)
    """
)


def run_cli(*args: str) -> tuple[int, str, float]:
    """The real ``asl-eval`` in a fresh process under an 8 GB address-space limit; its exit
    code, stderr and peak RSS in MB."""
    return run_cli_argv([str(Path(sys.executable).parent / "asl-eval"), *args])


def run_cli_argv(argv: list[str]) -> tuple[int, str, float]:
    """``argv`` under the runner: exit code, stderr, peak RSS in MB."""
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER, *argv],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "COLUMNS": "200"},
    )
    stderr, _, rss = done.stderr.rpartition("\nMAXRSS_KB=")
    return done.returncode, stderr, int(rss) / 1024


def _cli_commands(model: Path, data: Path, out: Path) -> dict[str, list[str]]:
    return {
        "report": ["report", str(model), str(data), "--out", str(out)],
        "labels --model": ["labels", str(data), "--model", str(model)],
        "export-safe": ["export-safe", str(model), str(out / "m.safetensors")],
    }


@pytest.fixture(scope="module")
def import_rss_mb() -> float:
    """Peak RSS of a process that only imports what loading any model imports (torch alone
    is about 500 MB): a payload refused after that import is measured above it."""
    code = "import warnings; warnings.simplefilter('ignore'); import fastai.vision.all"
    _, _, rss = run_cli_argv([sys.executable, "-c", code])
    return rss


_CLI_CASES = [
    ("nested_attr", "report"),
    ("nested_attr", "labels --model"),
    ("nested_attr", "export-safe"),
    ("protocol-0 INST", "report"),
    ("BUILD __call__", "labels --model"),
    ("_rebuild_from_type_v2 with an allowed callable", "export-safe"),
    ("numpy.ones bomb", "report"),
    ("numpy.ones((2,))", "labels --model"),
    ("reduce over range", "report"),
    ("opcode bomb", "report"),
]


@pytest.mark.parametrize(("label", "command"), _CLI_CASES)
def test_console_script_refuses(
    label: str, command: str, tmp_path: Path, import_rss_mb: float
) -> None:
    """Refused with exit 1 and a clear message, no marker, in well under 10 s, and under
    500 MB: outright when refused by name (before torch is imported), else above the cost of
    importing torch and fastai."""
    marker = tmp_path / "ran"
    data = tmp_path / "data" / "A"
    data.mkdir(parents=True)
    model = write_pickle(payloads(marker)[label], tmp_path / "model.pkl")
    out = tmp_path / "out"
    started = time.perf_counter()
    code, stderr, rss_mb = run_cli(*_cli_commands(model, data.parent, out)[command])
    assert code == 1, stderr
    assert "Refused to load" in stderr or "is not a" in stderr, stderr
    assert "Traceback" not in stderr
    by_name = "not among the names" in stderr
    assert rss_mb < (500 if by_name else import_rss_mb + 500), (rss_mb, import_rss_mb)
    assert time.perf_counter() - started < 60
    assert not marker.exists()


def test_console_script_refuses_a_spliced_export(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "ran"
    model = splice(tiny_model.path, payloads(marker)["nested_attr"], tmp_path / "model.pkl")
    code, stderr, _ = run_cli(
        "report", str(model), str(tiny_model.data.ood_test), "--out", str(tmp_path / "out")
    )
    assert code == 1 and "fastcore.basics.nested_attr" in stderr, stderr
    assert not marker.exists()


# ---------------------------------------------------------------------- oracles


def _fickling_flags(path: Path) -> bool:
    import fickling

    try:
        return not fickling.is_likely_safe(str(path))
    except Exception:  # an oracle that cannot parse the file flags it
        return True


def _picklescan_flags(path: Path) -> bool:
    from picklescan.scanner import scan_file_path

    result = scan_file_path(str(path))
    return bool(result.issues_count or result.scan_err)


_ORACLE_LABELS = [label for label in payloads(Path("m")) if label != "opcode bomb"]


@pytest.mark.parametrize("label", _ORACLE_LABELS)
def test_whatever_an_oracle_flags_is_refused(label: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = write_pickle(payloads(marker)[label], tmp_path / "model.pkl")
    flagged: list[Callable[[Path], bool]] = [
        oracle for oracle in (_fickling_flags, _picklescan_flags) if oracle(path)
    ]
    if flagged:
        with pytest.raises(ModelLoadError):
            load_learner_file(path)
    assert refused_imports(path) or label.startswith(
        ("BUILD", "_rebuild_from_type_v2 with an allowed", "reduce over many", "nesting")
    )
    assert not marker.exists()


def test_an_oracle_is_not_blind(tmp_path: Path) -> None:
    """The oracles flag the plainest payload (else the test above proves nothing)."""
    path = write_pickle(payloads(tmp_path / "m")["nested_attr"], tmp_path / "model.pkl")
    assert _fickling_flags(path) or _picklescan_flags(path)


def test_review_findings_are_clean_refusals(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Found in review: a zero-stride tensor larger than its storage, and an overflowing
    argument of an allowed call, are refused as ModelLoadError, not a hang or a traceback."""
    import pickle as std_pickle
    import zipfile

    from asl_eval.errors import ModelLoadError
    from asl_eval.trust import load_learner_file
    from asl_eval.trust.caps import ResourceLimitError, check_tensor_extent

    class OneElement:
        def size(self) -> int:
            return 1

        def nbytes(self) -> int:
            return 4

    with pytest.raises(ResourceLimitError, match="over a storage of"):
        check_tensor_extent(OneElement(), 0, (2**33,), (0,))

    # re._compile is allowed with an int flag; a huge one overflows inside re
    payload = (
        b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00"  # protocol 4, frame
        b"\x8c\x02re\x94\x8c\x08_compile\x94\x93\x94"  # STACK_GLOBAL re._compile
        b"\x8c\x01a\x94\x8a\x10" + (1 << 120).to_bytes(16, "little") + b"\x86\x94R\x94."
    )
    path = tmp_path / "overflow.pkl"
    path.write_bytes(payload)
    with pytest.raises(ModelLoadError, match="not a well-formed model file"):
        load_learner_file(path)

    # a compressed data record gets no storage budget
    archive = tmp_path / "compressed.pkl"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("m/data.pkl", std_pickle.dumps({"a": 1}))
        zf.writestr("m/data/0", b"\0" * 4096)
    from asl_eval.trust.caps import storage_budget

    assert storage_budget(archive).records == {"0": -1}


def test_argument_checks_share_one_budget_per_load() -> None:
    """Found in review: a small file that passes one large plain list to an allowed call over
    and over made the checks walk it every time (hours). One load shares one budget."""
    import pickle as std_pickle
    import time

    from asl_eval.trust.caps import ResourceLimitError
    from asl_eval.trust.unpickler import restricted_loads

    body = std_pickle.dumps([0] * 194_000, protocol=2)[:-1]  # the list, without STOP
    payload = body + b"q\x01" + b"c__builtin__\nset\nh\x01\x85R0" * 200 + b"h\x01."
    assert len(payload) < 600_000
    start = time.monotonic()
    with pytest.raises(ResourceLimitError, match="inspect more than"):
        restricted_loads(payload)
    assert time.monotonic() - start < 10
