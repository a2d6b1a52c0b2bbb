"""``asl-eval audit``: without --model it stays torch-free; with --model (through the installed
console script, in a fresh process) it predicts the validation split and the --against sets and
adds the embedding analysis to the text and the JSON; an unsafe model file is refused by the
same trust boundary as ``report``."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

CONSOLE = Path(sys.executable).with_name("asl-eval")


def run_console(*arguments: str) -> subprocess.CompletedProcess[str]:
    """The installed ``asl-eval`` console script in a fresh process."""
    return subprocess.run(
        [str(CONSOLE), *arguments], capture_output=True, text=True, timeout=900, check=False
    )


def test_audit_without_a_model_imports_neither_torch_nor_fastai(tiny_data) -> None:  # type: ignore[no-untyped-def]
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from asl_eval.cli import app\n"
        f"result = CliRunner().invoke(app, ['audit', {str(tiny_data.train)!r}, '--json'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print('torch' in sys.modules, 'fastai' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False False"


def test_audit_with_a_model_adds_the_embedding_analysis(tiny_model) -> None:  # type: ignore[no-untyped-def]
    data = tiny_model.data
    result = run_console(
        "audit",
        str(data.train),
        "--model",
        str(tiny_model.path),
        "--against",
        str(data.ood_test),
        "--n-per-class",
        "4",
        "--json",
        "--progress",
    )
    assert result.returncode == 0, result.stderr
    # every long step draws its bar on stderr; stdout is the JSON alone
    for step in ("predicting valid", "predicting test", "hashing train", "features of test"):
        assert step in result.stderr, step
    record = json.loads(result.stdout)
    # the leakage part now has the predictions' accuracy
    sets = {row["set"]: row for row in record["sets"]}
    assert set(sets) == {"valid", "test"}
    assert sets["valid"]["n_evaluated"] == sets["valid"]["n_images"] > 0
    embeddings = record["embeddings"]
    auc = {(row["reference"], row["set"]): row["auc"] for row in embeddings["auc"]}
    assert set(auc) == {("train", "valid"), ("train", "test"), ("valid", "test")}
    # the demo's out-of-domain renderer differs visibly from its training frames
    assert auc[("train", "test")] > auc[("train", "valid")]
    per_set = {row["set"]: row for row in embeddings["sets"]}
    assert per_set["valid"]["n_images"] == sets["valid"]["n_images"]
    assert per_set["test"]["n_images"] == sets["test"]["n_images"]
    bins = [row for row in embeddings["distance_bins"] if row["set"] == "test"]
    assert sum(row["n_images"] for row in bins) == per_set["test"]["n_with_features"]
    assert embeddings["summary"]["n_per_class"] == 4
    assert isinstance(embeddings["suspicious"], list) and isinstance(embeddings["pairs"], list)

    text = run_console(
        "audit", str(data.train), "--model", str(tiny_model.path), "--n-per-class", "4"
    )
    assert text.returncode == 0, text.stderr
    assert "predicting" not in text.stderr  # stderr is not a terminal: no bars unless asked
    assert "valid: " in text.stdout and "leak-adjusted" in text.stdout
    assert "domain AUC valid vs train" in text.stdout
    assert "accuracy by distance bin" in text.stdout and "suspicious labels" in text.stdout


class _Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


def test_an_unsafe_model_file_is_refused(tiny_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = tmp_path / "evil.pkl"
    model.write_bytes(pickle.dumps(_Payload()))
    result = run_console("audit", str(tiny_data.train), "--model", str(model))
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "pwned" not in result.stdout
    assert "--trust-model" in result.stderr or "trust" in result.stderr


def test_usage_errors_exit_2(tiny_data) -> None:  # type: ignore[no-untyped-def]
    result = run_console("audit", str(tiny_data.train), "--n-per-class", "1")
    assert result.returncode == 2
    result = run_console("audit", str(tiny_data.train), "--valid-pct", "1.5")
    assert result.returncode == 2
